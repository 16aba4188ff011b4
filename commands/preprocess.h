// `recmodel preprocess`: CSV/TSV/JSONL → a cleaned, de-duplicated, label-mapped, split and
// WordPiece-tokenized dataset directory that training memory-maps.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel preprocess` to `command` and returns its action.
CommandAction register_preprocess(CLI::App& command, const Console& console);

}  // namespace recmodel
