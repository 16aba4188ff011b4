// int8 models: which modules are quantized, that the int8 directory round-trips through
// save_model/load_model with identical logits, and that broken int8 directories are refused.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "converters/int8.h"
#include "converters/onnx_runtime.h"
#include "converters/quantization.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "tests/converters/model_fixture.h"
#include "tests/support.h"

// After the libtorch headers: glog, which they include, defines its own CHECK.
#include <doctest/doctest.h>

namespace c = recmodel::converters;
namespace m = recmodel::model;
namespace t = recmodel::testing;

namespace {

void no_warnings(const std::string& w) { FAIL("unexpected warning: " << w); }

std::vector<torch::Tensor> logits_of(m::BertForSequenceClassificationImpl& model,
                                     const std::vector<c::TokenBatch>& batches) {
  return c::model_logits(model, batches);
}

}  // namespace

TEST_CASE("quantize_model switches the encoder, pooler and word embeddings to int8, not the classifier") {
  auto model = t::fixture_model("tiny", {"a", "b", "c"});
  auto names = c::quantize_model(*model, {});
  const int64_t layers = model->config.num_hidden_layers;
  CHECK(names.size() == static_cast<size_t>(6 * layers + 2));  // q, k, v, 3 dense per layer; pooler; embeddings
  CHECK(std::find(names.begin(), names.end(), "bert.embeddings.word_embeddings") != names.end());
  CHECK(std::find(names.begin(), names.end(), "bert.pooler.dense") != names.end());
  CHECK(std::find(names.begin(), names.end(), "classifier") == names.end());
  CHECK(model->int8_modules() == names);
  // The fp32 weights of int8 modules are gone from the parameters; the head's is kept.
  auto parameters = model->named_parameters();
  CHECK(parameters.find("bert.encoder.layer.0.attention.self.query.weight") == nullptr);
  CHECK(parameters.find("bert.encoder.layer.0.attention.self.query.bias") != nullptr);
  CHECK(parameters.find("classifier.weight") != nullptr);
  CHECK(model->named_buffers().find("bert.encoder.layer.0.attention.self.query.weight_int8") != nullptr);
  CHECK_THROWS_AS(c::quantize_model(*model, {}), recmodel::DataError);
}

TEST_CASE("an int8 model stays close to its fp32 model") {
  auto model = t::fixture_model("mini", {"a", "b", "c", "d"}, /*seed=*/3, /*initializer_range=*/0.05);
  auto tokenizer = t::fixture_tokenizer();
  auto batches = c::verification_batches(model->config, 64, 16, 64, 1, tokenizer.cls_id(), tokenizer.sep_id());
  auto fp32 = logits_of(*model, batches);
  c::quantize_model(*model, {});
  auto int8 = logits_of(*model, batches);
  auto comparison = c::compare_outputs("logits", fp32, int8, 1.0);
  double spread = 0;
  for (const auto& l : fp32) spread = std::max(spread, l.abs().max().item<double>());
  MESSAGE("int8 vs fp32: max |diff| " << comparison.max_abs_diff << " (largest |logit| " << spread
                                      << "), top label agreement " << comparison.top_label_agreement);
  CHECK(comparison.max_abs_diff < 0.1 * spread);
  CHECK(comparison.top_label_agreement >= 0.9);
}

TEST_CASE("an int8 model directory round-trips with identical logits") {
  t::TempDir dir;
  auto model = t::fixture_model("tiny", {"neg", "pos"});
  c::quantize_model(*model, {});
  t::write_fixture_model(dir / "int8", model);

  auto config = nlohmann::json::parse(t::read_text(dir / "int8" / "config.json"));
  REQUIRE(config.contains("recmodel_quantization"));
  CHECK(config["recmodel_quantization"]["format_version"] == 1);
  CHECK(config["recmodel_quantization"]["method"] == "dynamic-int8");
  CHECK(config["recmodel_quantization"]["modules"].size() == model->int8_modules().size());
  std::map<std::string, torch::Tensor> stored;
  for (auto& [name, tensor] : m::read_safetensors(dir / "int8" / "model.safetensors")) stored[name] = tensor;
  CHECK(stored.count("bert.encoder.layer.1.output.dense.weight") == 0);
  REQUIRE(stored.count("bert.encoder.layer.1.output.dense.weight_int8") == 1);
  CHECK((stored["bert.encoder.layer.1.output.dense.weight_int8"].scalar_type() == torch::kChar));
  CHECK((stored["bert.encoder.layer.1.output.dense.weight_scale"].sizes() == torch::IntArrayRef{128}));
  CHECK(stored.count("classifier.weight") == 1);

  auto loaded = m::load_model(dir / "int8", no_warnings);
  CHECK(loaded.model->int8_modules() == model->int8_modules());
  auto tokenizer = t::fixture_tokenizer();
  auto batches = c::verification_batches(model->config, 20, 5, 40, 9, tokenizer.cls_id(), tokenizer.sep_id());
  auto before = logits_of(*model, batches), after = logits_of(*loaded.model, batches);
  for (size_t i = 0; i < before.size(); ++i) CHECK(torch::equal(before[i], after[i]));
}

TEST_CASE("per-tensor int8 stores one scale per matrix and says so") {
  t::TempDir dir;
  auto model = t::fixture_model("tiny", {"neg", "pos"});
  c::QuantizeOptions options;
  options.per_channel = false;
  c::quantize_model(*model, options);
  t::write_fixture_model(dir / "int8", model);
  auto config = nlohmann::json::parse(t::read_text(dir / "int8" / "config.json"));
  CHECK(config["recmodel_quantization"]["weights"] == "int8 symmetric, per tensor");
  auto loaded = m::load_model(dir / "int8", no_warnings);
  CHECK(loaded.model->bert->pooler->dense->weight_scale.numel() == 1);
}

TEST_CASE("broken int8 directories are refused with the file and tensor named") {
  t::TempDir dir;
  auto model = t::fixture_model("tiny", {"neg", "pos"});
  c::quantize_model(*model, {});
  t::write_fixture_model(dir / "int8", model);
  const auto config_path = dir / "int8" / "config.json";
  const std::string original = t::read_text(config_path);

  SUBCASE("a newer int8 format") {
    auto config = nlohmann::json::parse(original);
    config["recmodel_quantization"]["format_version"] = 2;
    t::write_text(config_path, config.dump());
    CHECK_THROWS_WITH_AS(m::load_model(dir / "int8", no_warnings),
                         doctest::Contains("int8 format version 2 was written by a newer recmodel"), recmodel::DataError);
  }
  SUBCASE("a module that is not in this BERT") {
    auto config = nlohmann::json::parse(original);
    config["recmodel_quantization"]["modules"].push_back("bert.encoder.layer.9.output.dense");
    t::write_text(config_path, config.dump());
    CHECK_THROWS_WITH_AS(m::load_model(dir / "int8", no_warnings),
                         doctest::Contains("bert.encoder.layer.9.output.dense, which is not a Linear"),
                         recmodel::DataError);
  }
  SUBCASE("int8 weights missing from model.safetensors") {
    m::NamedTensors tensors;
    for (auto& item : m::read_safetensors(dir / "int8" / "model.safetensors"))
      if (item.first != "bert.pooler.dense.weight_scale") tensors.push_back(item);
    m::write_safetensors(dir / "int8" / "model.safetensors", tensors);
    CHECK_THROWS_WITH_AS(m::load_model(dir / "int8", no_warnings),
                         doctest::Contains("int8 module bert.pooler.dense has no tensor bert.pooler.dense.weight_scale"),
                         recmodel::DataError);
  }
  SUBCASE("the section removed: the fp32 weights are missing") {
    auto config = nlohmann::json::parse(original);
    config.erase("recmodel_quantization");
    t::write_text(config_path, config.dump());
    CHECK_THROWS_WITH_AS(m::load_model(dir / "int8", no_warnings), doctest::Contains("lacks"), recmodel::DataError);
  }
}

TEST_CASE("an int8 model refuses to train") {
  auto model = t::fixture_model("tiny", {"neg", "pos"});
  c::quantize_model(*model, {});
  model->train();
  auto ids = torch::ones({1, 4}, torch::kLong);
  CHECK_THROWS_WITH_AS(model->forward(ids, torch::zeros_like(ids), torch::ones_like(ids)),
                       doctest::Contains("int8 model (recmodel quantize), which runs inference only"),
                       recmodel::DataError);
}
