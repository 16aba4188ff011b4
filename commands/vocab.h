// `recmodel vocab`: a WordPiece vocabulary (vocab.txt) learned from a text corpus.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "commands/command.h"

namespace recmodel {

struct VocabOptions {
  std::vector<std::string> inputs;  // text files, one document per line; "-" = stdin
  std::string out;                  // the vocab.txt to write
  size_t size = 30522;              // BERT's own vocabulary size
  uint64_t min_frequency = 2;
  size_t limit_alphabet = 0;
  size_t unused = 0;
  bool lowercase = false;
  bool force = false;
};

// Adds the options of `recmodel vocab` to `command` and returns its action.
CommandAction register_vocab(CLI::App& command, const Console& console);

// Learns the vocabulary `options` describe, writes it and reports the result.
void run_vocab(const VocabOptions& options, const Console& console);

}  // namespace recmodel
