// Small BERT model directories for the converter tests, made in-process (preset + Hugging Face
// initializer + save_model), with a word vocabulary the tests can also write texts in.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/checkpoint.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::testing {

// The words of the fixture vocabulary (after the special tokens).
inline std::vector<std::string> fixture_words() {
  std::vector<std::string> words = {"red", "blue", "green", "shoe", "shoes", "shirt", "phone", "case", "cable",
                                    "lamp", "desk", "chair", "book", "pen", "cheap", "best", "for", "with", "and",
                                    "the", "a", "men", "women", "kids", "usb", "charger", "leather", "wooden"};
  for (int i = 0; i < 200; ++i) words.push_back("w" + std::to_string(i));
  for (const char* piece : {"##s", "##ing", "##ed", "##er"}) words.emplace_back(piece);
  return words;
}

inline tokenizer::BertTokenizer fixture_tokenizer() {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (auto& w : fixture_words()) tokens.push_back(w);
  return tokenizer::BertTokenizer(tokenizer::Vocab::from_tokens(tokens), tokenizer::TokenizerConfig());
}

// Returns a randomly initialized classifier of `preset` over the fixture vocabulary.
// `initializer_range` above BERT's 0.02 gives a random model more decisive logits.
inline model::BertForSequenceClassification fixture_model(const std::string& preset, std::vector<std::string> labels,
                                                          uint64_t seed = 7, double initializer_range = 0.02) {
  model::BertConfig config = model::preset_config(preset);
  config.vocab_size = static_cast<int64_t>(fixture_tokenizer().vocab().size());
  config.max_position_embeddings = 128;
  config.labels = std::move(labels);
  config.initializer_range = initializer_range;
  torch::manual_seed(seed);
  model::BertForSequenceClassification model(config);
  model->initialize_weights();
  return model;
}

// Writes a fixture model directory (config.json, model.safetensors, tokenizer files).
inline void write_fixture_model(const std::filesystem::path& dir, model::BertForSequenceClassification& model) {
  std::filesystem::create_directories(dir);
  model::save_model(dir, model, fixture_tokenizer(), nlohmann::json{{"created_by", "test fixture"}});
}

// Returns `count` distinct texts of 1-12 fixture words, deterministic in `seed`.
inline std::vector<std::string> fixture_texts(size_t count, uint64_t seed) {
  std::vector<std::string> words = fixture_words();
  words.resize(words.size() - 4);  // whole words only
  std::vector<std::string> texts;
  std::set<std::string> seen;
  uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  auto next = [&](uint64_t bound) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % bound;
  };
  while (texts.size() < count) {
    std::string text;
    size_t n = 1 + next(12);
    for (size_t i = 0; i < n; ++i) text += (i ? " " : "") + words[next(words.size())];
    if (seen.insert(text).second) texts.push_back(text);
  }
  return texts;
}

// Returns the fp32 model's top label for each text, as recmodel's tokenizer encodes it.
inline std::vector<std::string> predicted_labels(model::BertForSequenceClassification& model,
                                                 const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto tokenizer = fixture_tokenizer();
  std::vector<std::string> labels;
  for (const auto& text : texts) {
    auto encoding = tokenizer.encode(text, std::nullopt, 128);
    std::vector<int64_t> ids(encoding.ids.begin(), encoding.ids.end());
    torch::Tensor input = torch::tensor(ids, torch::kLong).unsqueeze(0);
    torch::Tensor logits = model->forward(input, torch::zeros_like(input), torch::ones_like(input));
    labels.push_back(model->config.labels[static_cast<size_t>(logits.argmax(1).item<int64_t>())]);
  }
  return labels;
}

// Makes a model whose fp32 answers do not depend on a few weights that are huge: channel 0 of
// each attention output LayerNorm is zeroed, and intermediate.dense reads channel 0 with weight
// 100. Per-tensor int8 then rounds every other weight of those matrices to 0 (a model that
// quantizes badly); per-channel int8 loses only row 0.
inline void add_quantization_outliers(model::BertForSequenceClassification& model) {
  torch::NoGradGuard no_grad;
  for (const auto& module : *model->bert->encoder->layer) {
    auto layer = module->as<model::BertLayer>();
    layer->attention->output->LayerNorm->weight[0] = 0.0;
    layer->attention->output->LayerNorm->bias[0] = 0.0;
    layer->intermediate->dense->weight[0][0] = 100.0;
  }
}

// Writes CSV rows "text,label".
inline std::string csv_of(const std::vector<std::string>& texts, const std::vector<std::string>& labels, size_t from,
                          size_t to) {
  std::string csv = "text,label\n";
  for (size_t i = from; i < to; ++i) csv += texts[i] + "," + labels[i] + "\n";
  return csv;
}

}  // namespace recmodel::testing

// libtorch includes glog, whose CHECK macros replace doctest's when doctest.h came first.
#ifdef DOCTEST_LIBRARY_INCLUDED
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)
#undef CHECK_EQ
#define CHECK_EQ(...) DOCTEST_CHECK_EQ(__VA_ARGS__)
#undef CHECK_NE
#define CHECK_NE(...) DOCTEST_CHECK_NE(__VA_ARGS__)
#undef CHECK_GT
#define CHECK_GT(...) DOCTEST_CHECK_GT(__VA_ARGS__)
#undef CHECK_LT
#define CHECK_LT(...) DOCTEST_CHECK_LT(__VA_ARGS__)
#undef CHECK_GE
#define CHECK_GE(...) DOCTEST_CHECK_GE(__VA_ARGS__)
#undef CHECK_LE
#define CHECK_LE(...) DOCTEST_CHECK_LE(__VA_ARGS__)
#endif
