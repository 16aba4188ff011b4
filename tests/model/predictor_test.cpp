#include "model/predictor.h"

#include <doctest/doctest.h>

#include "common/error.h"
#include "converters/quantization.h"
#include "tests/converters/model_fixture.h"

namespace t = recmodel::testing;
using namespace recmodel;

namespace {

// Logits of one text alone: batch of one, no padding at all.
torch::Tensor single_logits(model::BertForSequenceClassification& m, const tokenizer::Encoding& e) {
  torch::NoGradGuard no_grad;
  m->eval();
  std::vector<int64_t> ids(e.ids.begin(), e.ids.end()), types(e.type_ids.begin(), e.type_ids.end());
  torch::Tensor input = torch::tensor(ids, torch::kLong).unsqueeze(0);
  torch::Tensor type = torch::tensor(types, torch::kLong).unsqueeze(0);
  return m->forward(input, type, torch::ones_like(input)).squeeze(0);
}

}  // namespace

TEST_CASE("Predictor batches by length, pads per batch and returns rows in input order") {
  auto m = t::fixture_model("tiny", {"a", "b", "c"}, /*seed=*/3, /*initializer_range=*/0.1);
  auto tokenizer = t::fixture_tokenizer();
  std::vector<tokenizer::Encoding> encodings;
  for (const auto& text : t::fixture_texts(23, 9)) encodings.push_back(tokenizer.encode(text, std::nullopt, 128));
  encodings.push_back(tokenizer.encode("red shoe", std::string_view("leather case for phone"), 128));

  for (size_t batch : {1, 4, 64}) {
    CAPTURE(batch);
    model::Predictor predictor(m, tokenizer.pad_id(), {batch, torch::kCPU});
    torch::Tensor logits = predictor.logits(encodings);
    REQUIRE(logits.sizes() == torch::IntArrayRef({24, 3}));
    CHECK(logits.dtype() == torch::kFloat32);
    for (size_t i = 0; i < encodings.size(); ++i) {
      CAPTURE(i);
      CHECK(torch::allclose(logits[static_cast<int64_t>(i)], single_logits(m, encodings[i]), 1e-4, 1e-5));
    }
    uint64_t real = 0;
    for (const auto& e : encodings) real += e.ids.size();
    CHECK(predictor.tokens() == real);
    if (batch == 1) CHECK(predictor.padded_tokens() == real);
    CHECK(predictor.padded_tokens() >= real);
  }
}

TEST_CASE("Predictor sorts by length so the batches of a padded model carry little padding") {
  auto m = t::fixture_model("tiny", {"a", "b"});
  converters::quantize_model(*m, {});  // int8 runs padded (BertModel::runs_unpadded)
  auto tokenizer = t::fixture_tokenizer();
  // Alternating short and long inputs: in input order every batch of two would pad to the long one.
  std::vector<tokenizer::Encoding> encodings;
  for (int i = 0; i < 8; ++i)
    encodings.push_back(tokenizer.encode(i % 2 ? "red" : "red blue green shoe shirt phone case cable lamp desk",
                                         std::nullopt, 128));
  model::Predictor predictor(m, tokenizer.pad_id(), {2, torch::kCPU});
  REQUIRE_FALSE(predictor.runs_unpadded());
  predictor.logits(encodings);
  CHECK(predictor.padded_tokens() == predictor.tokens());
  // One pass of all eight pads every "red" to the long text.
  model::Predictor one_pass(m, tokenizer.pad_id(), {8, torch::kCPU});
  one_pass.logits(encodings);
  CHECK(one_pass.padded_tokens() > one_pass.tokens());
}

TEST_CASE("an fp32 Predictor runs unpadded: one pass of mixed lengths computes its real tokens only") {
  auto m = t::fixture_model("tiny", {"a", "b"});
  auto tokenizer = t::fixture_tokenizer();
  std::vector<tokenizer::Encoding> encodings;
  for (int i = 0; i < 8; ++i)
    encodings.push_back(tokenizer.encode(i % 2 ? "red" : "red blue green shoe shirt phone case cable lamp desk",
                                         std::nullopt, 128));
  // A pass cost would cut a padded model's batch in two; an unpadded one stays one pass.
  model::Predictor predictor(m, tokenizer.pad_id(), {8, torch::kCPU, /*pass_cost_tokens=*/4});
  REQUIRE(predictor.runs_unpadded());
  CHECK_FALSE(predictor.cuts_passes_by_length());
  torch::Tensor logits = predictor.logits(encodings);
  CHECK(predictor.padded_tokens() == predictor.tokens());
  for (size_t i = 0; i < encodings.size(); ++i)
    CHECK(torch::allclose(logits[static_cast<int64_t>(i)], single_logits(m, encodings[i]), 1e-4, 1e-5));
}

TEST_CASE("pass_starts: fixed passes without a pass cost, cuts by length with one") {
  const std::vector<size_t> lengths = {30, 29, 28, 6, 6, 5, 5, 5};
  CHECK(model::pass_starts(lengths, 3, 0) == std::vector<size_t>{0, 3, 6});
  CHECK(model::pass_starts(lengths, 64, 0) == std::vector<size_t>{0});
  // One pass pads 8 x 30 = 240; two cost 3 x 30 + 5 x 6 = 120 plus one more pass.
  CHECK(model::pass_starts(lengths, 64, 32) == std::vector<size_t>{0, 3});
  // A pass costing more than the padding it saves: one pass.
  CHECK(model::pass_starts(lengths, 64, 200) == std::vector<size_t>{0});
  // batch_size still bounds every pass.
  CHECK(model::pass_starts(lengths, 2, 32) == std::vector<size_t>{0, 2, 4, 6});
  CHECK(model::pass_starts({}, 64, 32).empty());
}

TEST_CASE("Predictor refuses sequences the model cannot take") {
  auto m = t::fixture_model("tiny", {"a", "b"});
  model::Predictor predictor(m, 0, {8, torch::kCPU});
  std::vector<int32_t> ids = {2, 5, 3}, types = {0, 0, 0};
  CHECK_THROWS_WITH_AS(predictor.logits(std::vector<model::SequenceView>{{ids.data(), types.data(), 0}}),
                       "sequence 0 is empty; the model needs at least one token", DataError);
  std::vector<int32_t> bad = {2, 100000, 3};
  CHECK_THROWS_WITH_AS(predictor.logits(std::vector<model::SequenceView>{{bad.data(), types.data(), 3}}),
                       doctest::Contains("token id 100000 at position 1 is outside the vocabulary"), DataError);
  std::vector<int32_t> long_ids(129, 5), long_types(129, 0);
  CHECK_THROWS_WITH_AS(
      predictor.logits(std::vector<model::SequenceView>{{long_ids.data(), long_types.data(), 129}}),
      "sequence 0 has 129 tokens, more than the model's max_position_embeddings (128)", DataError);
  CHECK(predictor.logits(std::vector<model::SequenceView>{}).size(0) == 0);
}

TEST_CASE("parse_device accepts auto, cpu and cuda[:N] only") {
  CHECK(model::parse_device("cpu").is_cpu());
  CHECK_NOTHROW(model::parse_device("auto"));
  CHECK_THROWS_WITH_AS(model::parse_device("gpu"), "--device gpu: expected auto, cpu, cuda or cuda:N", UsageError);
  if (!torch::cuda::is_available())
    CHECK_THROWS_WITH_AS(model::parse_device("cuda"), doctest::Contains("no CUDA device is available"), UsageError);
}
