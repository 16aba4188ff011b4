#include "cli/suggest.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace recmodel {

CLI::Validator one_of(std::vector<std::string> values) {
  std::string description = fmt::format("{{{}}}", fmt::join(values, ","));
  return CLI::Validator(
      [values](std::string& input) -> std::string {
        if (std::find(values.begin(), values.end(), input) != values.end()) return {};
        std::string message = fmt::format("'{}' is not one of {}", input, fmt::join(values, ", "));
        std::string hint = closest_match(input, values);
        if (!hint.empty()) message += fmt::format("; did you mean '{}'?", hint);
        return message;
      },
      description);
}

std::vector<std::string> long_option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

CLI::Validator whole_number() {
  return CLI::Validator(
      [](std::string& value) {
        return !value.empty() && value.size() <= 19 && value.find_first_not_of("0123456789") == std::string::npos
                   ? std::string()
                   : "expected a whole number of 0 or more, such as 42; got " + value;
      },
      "", "seed");
}

}  // namespace recmodel
