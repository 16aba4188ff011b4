// "Did you mean ...?" for unknown commands and enum values, and a strict enum validator.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/suggest.h"

namespace recmodel {

// Returns a CLI11 validator accepting exactly one of `values`; the error names them all
// and suggests the closest.
CLI::Validator one_of(std::vector<std::string> values);

// Returns a CLI11 validator for a seed: a whole number of 0 or more, with an example in the error.
CLI::Validator whole_number();

// Returns the options of `command` as their long names (--name), in help order.
std::vector<std::string> long_option_names(const CLI::App& command);

}  // namespace recmodel
