// `recmodel evaluate`: metrics of a model on a prepared split, or of a predictions file against
// a labels file, identical to scikit-learn's; quality gates (--fail-under, --max) for CI.
#pragma once

#include <string>

#include "commands/command.h"

namespace recmodel {

// What a model is scored on, as evaluate and report take it: a prepared split, or a
// predictions file against a labels file.
struct EvaluationSource {
  std::string data;
  std::string split = "test";
  int batch_size = 64;
  std::string device = "auto";
  std::string predictions;
  std::string labels;
  std::string id_column = "id";
};

// Adds --data, --split (`split_help`), --batch-size and --device (group `model_group`) and
// --predictions, --labels and --id-column to `command`; returns the --split option.
CLI::Option* add_evaluation_source(CLI::App& command, EvaluationSource& source, const char* model_group,
                                   const char* split_help);

// Adds the options of `recmodel evaluate` to `command` and returns its action.
CommandAction register_evaluate(CLI::App& command, const Console& console);

}  // namespace recmodel
