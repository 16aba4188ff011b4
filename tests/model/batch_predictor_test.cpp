// The batching predictor `predict` and `serve` share: batches of mixed lengths and pairs score as
// each input alone, results come back in input order, tokenizing is separate (and thread-safe),
// and inputs that cannot be scored are named by index.
#include "model/batch_predictor.h"

#include <doctest/doctest.h>

#include <thread>

#include "common/error.h"
#include "tests/converters/model_fixture.h"

namespace t = recmodel::testing;
using namespace recmodel;

namespace {

model::BatchPredictor make_predictor(size_t batch_size, size_t max_length = 0) {
  auto m = t::fixture_model("tiny", {"books", "electronics", "toys"}, /*seed=*/5, /*initializer_range=*/0.1);
  model::BatchPredictorOptions options;
  options.batch_size = batch_size;
  options.max_length = max_length;
  return model::BatchPredictor(m, t::fixture_tokenizer(), options);
}

// Texts of 1-12 words and a few pairs, in no order of length.
std::vector<model::TextInput> mixed_inputs() {
  std::vector<model::TextInput> inputs;
  for (const auto& text : t::fixture_texts(21, 4)) inputs.push_back({text, std::nullopt});
  inputs.push_back({"red shoe", std::string("leather shoes for men")});
  inputs.push_back({"usb cable charger for phone", std::string("cable")});
  inputs.insert(inputs.begin() + 3, {"lamp", std::string("wooden desk lamp with usb charger and cable")});
  return inputs;
}

void check_close(const model::Prediction& a, const model::Prediction& b) {
  REQUIRE(a.logits.size() == b.logits.size());
  REQUIRE(a.scores.size() == b.scores.size());
  for (size_t c = 0; c < a.logits.size(); ++c) CHECK(a.logits[c] == doctest::Approx(b.logits[c]).epsilon(1e-5));
  for (size_t c = 0; c < a.scores.size(); ++c) CHECK(std::abs(a.scores[c] - b.scores[c]) <= 1e-5);
  CHECK(a.tokens == b.tokens);
  CHECK(a.truncated == b.truncated);
}

}  // namespace

TEST_CASE("BatchPredictor: a batch of mixed lengths and pairs scores as each input alone") {
  const auto inputs = mixed_inputs();
  auto alone = make_predictor(1);
  for (size_t batch : {1, 3, 64}) {
    CAPTURE(batch);
    auto predictor = make_predictor(batch);
    const auto together = predictor.predict(inputs);
    REQUIRE(together.size() == inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      CAPTURE(i);
      const auto single = alone.predict(std::vector<model::TextInput>{inputs[i]});
      REQUIRE(single.size() == 1);
      check_close(together[i], single[0]);
      const auto encoded =
          predictor.encode(inputs[i].text, inputs[i].pair ? std::optional<std::string_view>(*inputs[i].pair) : std::nullopt);
      CHECK(together[i].tokens == encoded.tokens());
      float sum = 0;
      for (float p : together[i].scores) sum += p;
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
    }
  }
}

TEST_CASE("BatchPredictor scores a pair as [CLS] a [SEP] b [SEP] with token types 0 then 1") {
  auto predictor = make_predictor(8);
  auto m = t::fixture_model("tiny", {"books", "electronics", "toys"}, /*seed=*/5, /*initializer_range=*/0.1);
  m->eval();
  const auto encoded = predictor.encode("red shoe", std::string_view("leather shoes"));
  REQUIRE(encoded.ok());
  const auto tokenizer = t::fixture_tokenizer();
  CHECK(encoded.encoding.ids == tokenizer.encode("red shoe", std::string_view("leather shoes"), 128).ids);
  CHECK(encoded.encoding.type_ids == std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1});

  const auto p = predictor.predict(std::vector<model::EncodedInput>{encoded});
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids(encoded.encoding.ids.begin(), encoded.encoding.ids.end());
  std::vector<int64_t> types(encoded.encoding.type_ids.begin(), encoded.encoding.type_ids.end());
  torch::Tensor input = torch::tensor(ids, torch::kLong).unsqueeze(0);
  torch::Tensor logits = m->forward(input, torch::tensor(types, torch::kLong).unsqueeze(0), torch::ones_like(input));
  for (int64_t c = 0; c < 3; ++c)
    CHECK(p[0].logits[static_cast<size_t>(c)] == doctest::Approx(logits[0][c].item<float>()).epsilon(1e-5));
  // The pair is not the same input as its texts run together.
  const auto joined = predictor.predict(std::vector<model::TextInput>{{"red shoe leather shoes", std::nullopt}});
  CHECK(joined[0].logits != p[0].logits);
}

TEST_CASE("BatchPredictor returns results in input order whatever the order of lengths") {
  auto inputs = mixed_inputs();
  auto predictor = make_predictor(4);
  const auto forward = predictor.predict(inputs);
  std::vector<model::TextInput> reversed(inputs.rbegin(), inputs.rend());
  const auto backward = predictor.predict(reversed);
  REQUIRE(backward.size() == forward.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    CAPTURE(i);
    check_close(forward[i], backward[inputs.size() - 1 - i]);
  }
  // The inputs are not in order of length, so sorting by length really reorders the batch.
  bool unsorted = false;
  for (size_t i = 0; i + 1 < forward.size(); ++i) unsorted = unsorted || forward[i].tokens < forward[i + 1].tokens;
  CHECK(unsorted);
}

TEST_CASE("BatchPredictor gives bit-identical scores to the Predictor and softmax predict always ran") {
  const auto inputs = mixed_inputs();
  auto predictor = make_predictor(4);
  const auto results = predictor.predict(inputs);

  auto m = t::fixture_model("tiny", {"books", "electronics", "toys"}, /*seed=*/5, /*initializer_range=*/0.1);
  const auto tokenizer = t::fixture_tokenizer();
  std::vector<tokenizer::Encoding> encodings;
  for (const auto& in : inputs)
    encodings.push_back(tokenizer.encode(in.text, in.pair ? std::optional<std::string_view>(*in.pair) : std::nullopt, 128));
  model::Predictor reference(m, tokenizer.pad_id(), {4, torch::kCPU});
  torch::Tensor logits = reference.logits(encodings);
  torch::Tensor probs = torch::softmax(logits, 1).contiguous();
  for (size_t i = 0; i < inputs.size(); ++i) {
    CAPTURE(i);
    for (size_t c = 0; c < 3; ++c) {
      CHECK(results[i].logits[c] == logits[static_cast<int64_t>(i)][static_cast<int64_t>(c)].item<float>());
      CHECK(results[i].scores[c] == probs[static_cast<int64_t>(i)][static_cast<int64_t>(c)].item<float>());
    }
  }
  CHECK(predictor.tokens() == reference.tokens());
  CHECK(predictor.padded_tokens() == reference.padded_tokens());
}

TEST_CASE("BatchPredictor names the input index of an input it cannot score") {
  auto predictor = make_predictor(8);
  using Inputs = std::vector<model::TextInput>;
  CHECK_THROWS_WITH_AS(predictor.predict(Inputs{{"red shoe", std::nullopt}, {"  \t", std::nullopt}}),
                       "input 1: empty text", DataError);
  CHECK_THROWS_WITH_AS(predictor.predict(Inputs{{"red", std::nullopt}, {"a", std::nullopt}, {"lamp", std::string(" ")}}),
                       "input 2: empty text in the pair", DataError);
  CHECK_THROWS_WITH_AS(predictor.predict(Inputs{{"re\xff shoe", std::nullopt}}), "input 0: invalid UTF-8 at byte 3",
                       DataError);
  CHECK_THROWS_WITH_AS(predictor.predict(Inputs{{"red", std::string("ab\xc3")}}),
                       "input 0: invalid UTF-8 at byte 3 of the second text", DataError);

  // encode() reports instead of throwing, so a server can answer each input on its own.
  std::vector<model::EncodedInput> encoded = {predictor.encode("red"), predictor.encode(""), predictor.encode("lamp")};
  CHECK(encoded[0].ok());
  CHECK(encoded[1].error == "empty text");
  CHECK(encoded[1].tokens() == 0);
  CHECK_THROWS_WITH_AS(predictor.predict(encoded), "input 1: empty text", DataError);
  CHECK(predictor.predict(std::vector<model::EncodedInput>{}).empty());
  CHECK(predictor.tokens() == 0);  // nothing was scored
}

TEST_CASE("BatchPredictor truncates to max_length and says how many tokens it dropped") {
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "red ";
  auto predictor = make_predictor(8, /*max_length=*/16);
  CHECK(predictor.max_length() == 16);
  const auto encoded = predictor.encode(long_text);
  CHECK(encoded.tokens() == 16);
  CHECK(encoded.truncated() == 300 - 14);
  CHECK(encoded.tokens() + encoded.truncated() == 302);
  const auto p = predictor.predict(std::vector<model::TextInput>{{long_text, std::nullopt}, {"red", std::nullopt}});
  CHECK(p[0].tokens == 16);
  CHECK(p[0].truncated == 286);
  CHECK(p[1].truncated == 0);

  CHECK(make_predictor(8).max_length() == 128);  // the model's positions
  CHECK_THROWS_WITH_AS(make_predictor(8, 129), "--max-length 129 is more than the model takes (128 positions)",
                       UsageError);
  CHECK_THROWS_WITH_AS(make_predictor(8, 3), "--max-length 3 leaves no room for text; use at least 4", UsageError);
  CHECK_THROWS_WITH_AS(make_predictor(0), "--batch-size must be 1 or more", UsageError);
}

TEST_CASE("BatchPredictor encodes on several threads at once as on one") {
  auto predictor = make_predictor(8);
  const auto texts = t::fixture_texts(400, 11);
  std::vector<model::EncodedInput> serial, parallel(texts.size());
  for (const auto& text : texts) serial.push_back(predictor.encode(text));
  std::vector<std::thread> threads;
  for (size_t w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (size_t i = w; i < texts.size(); i += 4) parallel[i] = predictor.encode(texts[i]);
    });
  for (auto& thread : threads) thread.join();
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    CHECK(parallel[i].encoding.ids == serial[i].encoding.ids);
    CHECK(parallel[i].encoding.type_ids == serial[i].encoding.type_ids);
  }
}

TEST_CASE("BatchPredictor answers a regression model with its value and no scores") {
  model::BertConfig config = model::preset_config("tiny");
  config.vocab_size = static_cast<int64_t>(t::fixture_tokenizer().vocab().size());
  config.max_position_embeddings = 128;
  config.labels = {"LABEL_0"};
  config.problem_type = model::ProblemType::regression;
  torch::manual_seed(3);
  model::BertForSequenceClassification m(config);
  m->initialize_weights();
  model::BatchPredictor predictor(m, t::fixture_tokenizer(), {});
  CHECK(predictor.regression());
  const auto p = predictor.predict(std::vector<model::TextInput>{{"red shoe", std::nullopt}, {"lamp", std::nullopt}});
  REQUIRE(p.size() == 2);
  CHECK(p[0].logits.size() == 1);
  CHECK(p[0].scores.empty());
  CHECK(p[0].value() == p[0].logits[0]);
  CHECK(p[0].value() != p[1].value());
}

TEST_CASE("rank_labels puts the highest score first and keeps ties in label order") {
  std::vector<size_t> order = {9, 9, 9, 9, 9, 9};
  model::rank_labels({0.2f, 0.3f, 0.3f, 0.1f, 0.1f}, order);
  CHECK(order == std::vector<size_t>{1, 2, 0, 3, 4});
  model::rank_labels({}, order);
  CHECK(order.empty());
}
