#include "commands/tokenizer_source.h"

#include "common/error.h"
#include "common/files.h"
#include "registry/registry.h"

namespace recmodel {

void TokenizerSource::add_options(CLI::App& command, const std::string& group) {
  auto* vocab_option = command.add_option("--vocab", vocab, "WordPiece vocab.txt (uncased unless --cased)")
                           ->type_name("FILE")
                           ->group(group);
  auto* model_option = command.add_option("--model", model,
                                          "Model directory: vocab.txt and tokenizer_config.json settings (or its tokenizer.json)")
                           ->type_name("DIR")
                           ->group(group);
  vocab_option->excludes(model_option);
  command.add_flag("--cased", cased, "With --vocab: keep case and accents (cased BERT vocabularies)")
      ->group(group);
}

tokenizer::BertTokenizer TokenizerSource::load(const std::string& registry) const {
  if (vocab.empty() && model.empty()) fail<UsageError>("give a vocabulary with --vocab FILE or --model DIR");
  if (!model.empty()) {
    if (cased) fail<UsageError>("--cased applies to --vocab; with --model the settings come from tokenizer_config.json");
    fs::path dir = registry::resolve_model(model, registry).path;
    // The message model::open_for_inference gives for a missing --model.
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) fail<NotFoundError>("{}: no such model directory (--model)", dir.string());
    return tokenizer::BertTokenizer::from_model_dir(dir);
  }
  tokenizer::TokenizerConfig config;
  config.do_lower_case = !cased;
  return tokenizer::BertTokenizer::from_vocab_file(vocab, config);
}

}  // namespace recmodel
