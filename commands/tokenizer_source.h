// Where a command gets its tokenizer from: --vocab FILE [--cased] or --model DIR.
// Shared by tokenize, preprocess and the other commands that encode text.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "tokenizer/bert_tokenizer.h"

namespace recmodel {

struct TokenizerSource {
  std::string vocab;  // a vocab.txt
  std::string model;  // a model directory with vocab.txt and tokenizer_config.json
  bool cased = false; // with --vocab: keep case and accents

  // Adds --vocab, --model and --cased to `command` under `group`.
  void add_options(CLI::App& command, const std::string& group);
  // Loads the tokenizer; throws UsageError unless exactly one of --vocab/--model was given.
  tokenizer::BertTokenizer load() const;
  // Returns the vocab.txt path in use (for hashing into manifests).
  std::string vocab_path() const;
};

}  // namespace recmodel
