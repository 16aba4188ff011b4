// Where a command gets its tokenizer from: --vocab FILE [--cased] or --model DIR.
// Shared by tokenize, preprocess and the other commands that encode text.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "tokenizer/bert_tokenizer.h"

namespace recmodel {

struct TokenizerSource {
  std::string vocab;  // a vocab.txt
  std::string model;  // a model directory with vocab.txt and tokenizer_config.json, or a models:/ reference
  bool cased = false; // with --vocab: keep case and accents

  // Adds --vocab, --model and --cased to `command` under `group`.
  void add_options(CLI::App& command, const std::string& group);
  // Loads the tokenizer; throws UsageError unless exactly one of --vocab/--model was given.
  // A models:/ reference in --model is resolved in the registry `registry` (--registry; "" =
  // $RECMODEL_REGISTRY or the default file).
  tokenizer::BertTokenizer load(const std::string& registry = "") const;
  // Returns the vocab.txt path in use (for hashing into manifests).
};

}  // namespace recmodel
