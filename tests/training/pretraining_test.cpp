// Masked-LM pretraining: packing lines into blocks, the held-out share, BERT's masking (whole
// words, 80/10/10, never special tokens), the BertForMaskedLM layout and a few steps that learn.
#include "training/pretrainer.h"

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "tests/support.h"
#include "training/mlm_data.h"
#include "training/trainer.h"

using namespace recmodel;
namespace t = recmodel::testing;

namespace {

tokenizer::BertTokenizer small_tokenizer() {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red",  "blue", "shoe",
                                     "##s",   "run",   "##ning", "bag",  "green",  "size", "42",   "##x"};
  return tokenizer::BertTokenizer(tokenizer::Vocab::from_tokens(tokens), tokenizer::TokenizerConfig{});
}

std::vector<training::TokenBlock> blocks_of(const training::MlmCorpus& corpus, bool held_out) {
  std::vector<training::TokenBlock> out;
  corpus.for_each_block(held_out, [&](const training::TokenBlock& block) {
    out.push_back(block);
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("pretraining corpus: lines packed into [CLS] a [SEP] b [SEP] blocks, long lines cut, empty lines skipped") {
  t::TempDir dir;
  const auto tokenizer = small_tokenizer();
  t::write_text(dir.path() / "a.txt", "red shoes\n\nblue bag\n   \nrunning shoes size 42\n");
  t::write_text(dir.path() / "b.txt", "red red red red red red red red red red red red\ngreen bag");
  training::MlmCorpus corpus({(dir.path() / "a.txt").string(), (dir.path() / "b.txt").string()}, tokenizer, 8, 0.0, 1);
  const auto counts = corpus.count();
  CHECK(counts.lines == 5);
  CHECK(counts.empty_lines == 2);
  CHECK(counts.cut_lines == 1);
  CHECK(counts.eval_blocks == 0);
  auto blocks = blocks_of(corpus, false);
  REQUIRE(blocks.size() == counts.train_blocks);
  // "red shoes" (red shoe ##s) + "blue bag" fit in 8: [CLS] red shoe ##s [SEP] blue bag [SEP].
  CHECK(blocks[0].ids == std::vector<int32_t>{2, 5, 7, 8, 3, 6, 11, 3});
  CHECK(blocks[0].word_start == std::vector<uint8_t>{0, 1, 1, 0, 0, 1, 1, 0});
  CHECK(blocks[0].special == std::vector<uint8_t>{1, 0, 0, 0, 1, 0, 0, 1});
  for (const auto& block : blocks) {
    CHECK(block.ids.size() <= 8);
    CHECK(block.ids.front() == 2);
    CHECK(block.ids.back() == 3);
  }
  // The twelve "red" are cut into pieces of 6 (8 less [CLS] and [SEP]).
  size_t reds = 0;
  for (const auto& block : blocks) reds += std::count(block.ids.begin(), block.ids.end(), 5);
  CHECK(reds == 12 + 1);
}

TEST_CASE("pretraining corpus: the held-out lines are the same at every pass and about the asked share") {
  t::TempDir dir;
  const auto tokenizer = small_tokenizer();
  std::string text;
  for (int i = 0; i < 2000; ++i) text += (i % 2 ? "red shoes\n" : "green bag size 42\n");
  t::write_text(dir.path() / "c.txt", text);
  training::MlmCorpus corpus({(dir.path() / "c.txt").string()}, tokenizer, 128, 0.1, 3);
  const auto counts = corpus.count();
  CHECK(counts.lines == 2000);
  auto first = blocks_of(corpus, true), second = blocks_of(corpus, true);
  REQUIRE(first.size() == second.size());
  for (size_t i = 0; i < first.size(); ++i) CHECK(first[i].ids == second[i].ids);
  // ~200 lines of 4-6 tokens held out: ~8% to 12% of the tokens.
  const double share = static_cast<double>(counts.eval_tokens) / static_cast<double>(counts.eval_tokens + counts.train_tokens);
  CHECK(share > 0.07);
  CHECK(share < 0.13);
}

TEST_CASE("pretraining corpus: a line that is not UTF-8 is refused with its file and line") {
  t::TempDir dir;
  const auto tokenizer = small_tokenizer();
  t::write_text(dir.path() / "bad.txt", "red shoes\nblue \xff bag\n");
  training::MlmCorpus corpus({(dir.path() / "bad.txt").string()}, tokenizer, 32, 0.0, 1);
  CHECK_THROWS_WITH_AS(corpus.count(), doctest::Contains("bad.txt:2: not UTF-8 text"), DataError);
}

TEST_CASE("masking: about 15% of the tokens, whole words together, never [CLS]/[SEP], 80/10/10") {
  training::TokenBlock block;
  block.ids.push_back(2);
  block.word_start.push_back(0);
  block.special.push_back(1);
  for (int i = 0; i < 60; ++i) {  // "running" = run ##ning, 120 tokens
    block.ids.insert(block.ids.end(), {9, 10});
    block.word_start.insert(block.word_start.end(), {1, 0});
    block.special.insert(block.special.end(), {0, 0});
  }
  block.ids.push_back(3);
  block.word_start.push_back(0);
  block.special.push_back(1);
  training::MaskingOptions options;
  options.mask_id = 4;
  options.vocab_size = 16;
  std::map<std::string, size_t> outcome;
  size_t predicted = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    training::SplitMix64 rng(seed);
    std::vector<int32_t> inputs, labels;
    training::mask_block(block, options, rng, inputs, labels);
    REQUIRE(inputs.size() == block.ids.size());
    CHECK(labels.front() == -100);
    CHECK(labels.back() == -100);
    CHECK(inputs.front() == 2);
    size_t here = 0;
    for (size_t i = 1; i + 1 < block.ids.size(); i += 2) {
      // A word is predicted whole or not at all.
      CHECK((labels[i] >= 0) == (labels[i + 1] >= 0));
      for (size_t j : {i, i + 1}) {
        if (labels[j] < 0) {
          CHECK(inputs[j] == block.ids[j]);
          continue;
        }
        CHECK(labels[j] == block.ids[j]);
        ++here;
        outcome[inputs[j] == 4 ? "mask" : inputs[j] == block.ids[j] ? "kept" : "random"]++;
      }
    }
    CHECK(here == 18);  // round(120 * 0.15), in whole words of 2
    predicted += here;
  }
  const double masked = static_cast<double>(outcome["mask"]) / static_cast<double>(predicted);
  CHECK(masked > 0.77);
  CHECK(masked < 0.83);
  // Random tokens can be the original (1 in 16): "kept" is ~10% + ~0.6%.
  CHECK(static_cast<double>(outcome["kept"]) / static_cast<double>(predicted) > 0.08);
  CHECK(static_cast<double>(outcome["random"]) / static_cast<double>(predicted) > 0.07);

  options.whole_word = false;
  training::SplitMix64 rng(5);
  std::vector<int32_t> inputs, labels;
  bool split_word = false;
  for (int round = 0; round < 20 && !split_word; ++round) {
    training::mask_block(block, options, rng, inputs, labels);
    for (size_t i = 1; i + 1 < block.ids.size(); i += 2) split_word |= (labels[i] >= 0) != (labels[i + 1] >= 0);
  }
  CHECK(split_word);  // token masking picks pieces on their own
}

TEST_CASE("BertForMaskedLM: Hugging Face's names, the decoder tied to the word embeddings, no pooler") {
  model::BertConfig config = model::preset_config("tiny");
  config.vocab_size = 16;
  model::BertForMaskedLM mlm(config);
  std::set<std::string> names;
  for (const auto& item : mlm->named_parameters()) names.insert(item.key());
  CHECK(names.count("cls.predictions.bias"));
  CHECK(names.count("cls.predictions.transform.dense.weight"));
  CHECK(names.count("cls.predictions.transform.LayerNorm.weight"));
  CHECK(names.count("bert.embeddings.word_embeddings.weight"));
  CHECK(!names.count("bert.pooler.dense.weight"));
  CHECK(!names.count("cls.predictions.decoder.weight"));
  // Logits of the chosen positions only, over the vocabulary.
  auto ids = torch::randint(5, 16, {2, 6}, torch::kLong);
  auto logits = mlm->forward(ids, torch::zeros_like(ids), torch::ones_like(ids), torch::tensor({0, 7, 11}, torch::kLong));
  CHECK(logits.sizes() == torch::IntArrayRef({3, 16}));
}

TEST_CASE("pretraining learns a corpus, resumes bit-identically, and its folder fine-tunes with a new head") {
  t::TempDir dir;
  const auto tokenizer = small_tokenizer();
  std::string text;
  // Two kinds of line with no word in common: any unmasked word of a line tells the others.
  // In a shuffled order, so a block's layout does not give the answer away.
  uint32_t state = 17;
  for (int i = 0; i < 300; ++i) {
    state = state * 1664525u + 1013904223u;
    text += ((state >> 16) % 2 == 0 ? "red shoes size 42\n" : "blue bag green\n");
  }
  t::write_text(dir.path() / "corpus.txt", text);
  model::BertConfig config = model::preset_config("tiny");
  config.vocab_size = 16;
  training::MlmCorpus corpus({(dir.path() / "corpus.txt").string()}, tokenizer, 32, 0.2, 7);
  training::PretrainConfig settings;
  settings.max_steps = 100;
  settings.batch_size = 8;
  settings.lr = 2e-3;
  settings.device = "cpu";
  settings.checkpoint_every = 1000;
  auto fresh = [&] {
    torch::manual_seed(1);
    model::BertForMaskedLM m(config);
    m->initialize_weights();
    return m;
  };

  model::BertForMaskedLM whole = fresh();
  training::Pretrainer straight(settings, whole, corpus, dir.path() / "w1");
  const nlohmann::json before = straight.evaluate();
  auto result = straight.run(false, {});
  CHECK(result.steps == 100);
  REQUIRE(!result.held_out.is_null());
  // Far better than chance over 16 tokens (a random model's perplexity is about 16).
  CHECK(before["perplexity"].get<double>() > 10);
  INFO("held out: " << result.held_out.dump());
  CHECK(result.held_out["masked_accuracy"].get<double>() > 0.4);
  CHECK(result.held_out["perplexity"].get<double>() < before["perplexity"].get<double>() / 3);

  // Stopped at step 25, then resumed: the same weights as the run that went straight through.
  model::BertForMaskedLM split_run = fresh();
  settings.stop_after = 25;
  training::Pretrainer first(settings, split_run, corpus, dir.path() / "w2");
  CHECK_THROWS_AS(first.run(false, {}), training::Interrupted);
  settings.stop_after = 0;
  model::BertForMaskedLM resumed = fresh();
  training::Pretrainer second(settings, resumed, corpus, dir.path() / "w2");
  auto continued = second.run(true, {});
  CHECK(continued.resumed_from_step == 25);
  CHECK(continued.steps == 100);
  auto a = whole->named_parameters(), b = resumed->named_parameters();
  for (const auto& item : a) CHECK(torch::equal(item.value(), b[item.key()]));

  // Its folder: BertForMaskedLM on disk; a classifier opened on it draws a pooler and a head.
  t::fs::create_directories(dir.path() / "pretrained");
  model::save_masked_lm(dir.path() / "pretrained", whole, tokenizer, nlohmann::json::object());
  const auto stored = model::read_safetensors(dir.path() / "pretrained" / "model.safetensors");
  std::set<std::string> stored_names;
  for (const auto& [name, tensor] : stored) stored_names.insert(name);
  CHECK(stored_names.count("cls.predictions.bias"));
  const std::vector<std::string> labels = {"a", "b", "c"};
  auto classifier = model::load_model(dir.path() / "pretrained", [](const std::string&) {}, &labels);
  std::set<std::string> initialized(classifier.initialized.begin(), classifier.initialized.end());
  CHECK(initialized == std::set<std::string>{"bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias",
                                             "classifier.weight"});
  CHECK(std::count_if(classifier.ignored.begin(), classifier.ignored.end(),
                      [](const std::string& name) { return name.rfind("cls.predictions.", 0) == 0; }) == 5);
  CHECK(torch::equal(classifier.model->bert->embeddings->word_embeddings->weight,
                     whole->bert->embeddings->word_embeddings->weight));
  // And the folder opens again to pretrain further, with nothing added or dropped.
  auto again = model::load_masked_lm(dir.path() / "pretrained");
  CHECK(again.added.empty());
  CHECK(again.dropped.empty());
}
