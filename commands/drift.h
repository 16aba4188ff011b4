// `recmodel drift`: live traffic (serve's prediction log, a predictions file, or texts predicted
// here) against the model's reference profile: PSI, Jensen-Shannon distance and a chi-square or
// Kolmogorov-Smirnov test per feature; --fail-over gates for cron and CI (exit 1).
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel drift` to `command` and returns its action.
CommandAction register_drift(CLI::App& command, const Console& console);

}  // namespace recmodel
