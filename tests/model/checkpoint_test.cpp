// The checkpoint loader and the forward pass against an independent reference: checkpoints
// written by PyTorch (torch.save) and by a safetensors writer made from the spec, logits from a
// BERT built of torch.nn.TransformerEncoderLayer (tests/model/reference_bert.py).
#include "model/checkpoint.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "tests/support.h"

using namespace recmodel;
namespace t = recmodel::testing;

namespace {

const t::fs::path kSource = RECMODEL_SOURCE_DIR;

// Runs the reference script once per test process and returns its output directory.
const t::fs::path& reference_dir() {
  static t::TempDir dir;
  static bool made = false;
  if (!made) {
    std::string command = "/usr/bin/python3 " + (kSource / "tests/model/reference_bert.py").string() + " " +
                          dir.path().string() + " 2>&1";
    REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "reference_bert.py failed: " << command);
    made = true;
  }
  return dir.path();
}

torch::Tensor tensor_of(const nlohmann::json& rows) {
  std::vector<int64_t> flat;
  for (const auto& row : rows)
    for (const auto& v : row) flat.push_back(v.get<int64_t>());
  return torch::tensor(flat, torch::kLong).view({static_cast<int64_t>(rows.size()), -1});
}

torch::Tensor floats_of(const nlohmann::json& rows) {
  std::vector<float> flat;
  for (const auto& row : rows)
    for (const auto& v : row) flat.push_back(v.get<float>());
  return torch::tensor(flat).view({static_cast<int64_t>(rows.size()), -1});
}

std::string load_error(const t::fs::path& dir) {
  try {
    model::load_model(dir, [](const std::string&) {});
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    return e.what();
  }
  return "";
}

// Copies a reference variant to a scratch folder the test may damage.
t::fs::path scratch_copy(const t::TempDir& tmp, const std::string& variant) {
  auto target = tmp.path() / variant;
  t::fs::copy(reference_dir() / variant, target, t::fs::copy_options::recursive);
  return target;
}

}  // namespace

TEST_CASE("logits match the torch.nn reference within 1e-5 for every checkpoint format, single and pair batches") {
  auto cases = nlohmann::json::parse(t::read_text(reference_dir() / "cases.json"));
  for (const auto& [variant, entry] : cases["variants"].items()) {
    if (!entry["has_head"].get<bool>()) continue;
    CAPTURE(variant);
    std::vector<std::string> warnings;
    auto loaded = model::load_model(reference_dir() / entry["dir"].get<std::string>(),
                                    [&](const std::string& w) { warnings.push_back(w); });
    CHECK(warnings.empty());
    CHECK(loaded.initialized.empty());
    loaded.model->eval();
    torch::NoGradGuard no_grad;
    for (const auto& [name, batch] : cases["batches"].items()) {
      CAPTURE(name);
      auto logits = loaded.model->forward(tensor_of(batch["input_ids"]), tensor_of(batch["token_type_ids"]),
                                          tensor_of(batch["attention_mask"]));
      auto expected = floats_of(entry["logits"][name]);
      REQUIRE(logits.sizes() == expected.sizes());
      double diff = (logits - expected).abs().max().item<double>();
      CHECK(diff <= 1e-5);
    }
  }
}

TEST_CASE("padding does not change a row's logits") {
  auto cases = nlohmann::json::parse(t::read_text(reference_dir() / "cases.json"));
  auto loaded = model::load_model(reference_dir() / "safetensors_f32", [](const std::string&) {});
  loaded.model->eval();
  torch::NoGradGuard no_grad;
  const auto& batch = cases["batches"]["single"];
  auto ids = tensor_of(batch["input_ids"]), types = tensor_of(batch["token_type_ids"]),
       mask = tensor_of(batch["attention_mask"]);
  auto batched = loaded.model->forward(ids, types, mask);
  for (int64_t row = 0; row < ids.size(0); ++row) {
    int64_t length = mask[row].sum().item<int64_t>();
    using torch::indexing::Slice;
    auto alone = loaded.model->forward(ids.index({Slice(row, row + 1), Slice(0, length)}),
                                       types.index({Slice(row, row + 1), Slice(0, length)}),
                                       mask.index({Slice(row, row + 1), Slice(0, length)}));
    CHECK((alone[0] - batched[row]).abs().max().item<double>() <= 1e-5);
  }
}

TEST_CASE("in eval mode the unpadded forward pass gives the padded pass's logits, pairs and holes in the mask too") {
  auto cases = nlohmann::json::parse(t::read_text(reference_dir() / "cases.json"));
  auto loaded = model::load_model(reference_dir() / "safetensors_f32", [](const std::string&) {});
  loaded.model->eval();
  REQUIRE(loaded.model->bert->runs_unpadded());
  torch::NoGradGuard no_grad;
  const auto padded = [&](const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask) {
    auto& bert = *loaded.model->bert;
    return loaded.model->classifier(bert.pooler(bert.encode(ids, types, mask)));
  };
  for (const auto& [name, batch] : cases["batches"].items()) {
    CAPTURE(name);
    auto ids = tensor_of(batch["input_ids"]), types = tensor_of(batch["token_type_ids"]),
         mask = tensor_of(batch["attention_mask"]);
    REQUIRE(mask.eq(0).any().item<bool>());  // the batch really has padding
    auto expected = padded(ids, types, mask);
    CHECK((loaded.model->forward(ids, types, mask) - expected).abs().max().item<double>() <= 1e-5);
    // A hole inside a sequence is masked out of attention the same way on both paths.
    auto holed = mask.clone();
    holed.index_put_({0, 1}, 0);
    CHECK((loaded.model->forward(ids, types, holed) - padded(ids, types, holed)).abs().max().item<double>() <= 1e-5);
    // A mask that skips a first token takes the padded path: the same numbers exactly.
    auto unfirst = mask.clone();
    unfirst.index_put_({0, 0}, 0);
    CHECK(torch::equal(loaded.model->forward(ids, types, unfirst), padded(ids, types, unfirst)));
  }
}

TEST_CASE("a bare encoder loads with a new head and a warning naming it") {
  std::vector<std::string> warnings;
  auto loaded = model::load_model(reference_dir() / "bare_encoder", [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("classifier.weight") != std::string::npos);
  CHECK(warnings[0].find("classifier.bias") != std::string::npos);
  CHECK(loaded.initialized.size() == 2);
  // The encoder came from the file: its embeddings equal the f32 variant's.
  auto full = model::load_model(reference_dir() / "safetensors_f32", [](const std::string&) {});
  CHECK(torch::equal(loaded.model->bert->embeddings->word_embeddings->weight,
                     full.model->bert->embeddings->word_embeddings->weight));
}

TEST_CASE("a sharded checkpoint (model.safetensors.index.json) loads like the whole file") {
  t::TempDir tmp;
  auto dir = scratch_copy(tmp, "safetensors_f32");
  auto tensors = model::read_safetensors(dir / "model.safetensors");
  t::fs::remove(dir / "model.safetensors");
  const size_t half = tensors.size() / 2;
  model::NamedTensors first(tensors.begin(), tensors.begin() + static_cast<std::ptrdiff_t>(half));
  model::NamedTensors second(tensors.begin() + static_cast<std::ptrdiff_t>(half), tensors.end());
  model::write_safetensors(dir / "model-00001-of-00002.safetensors", first);
  model::write_safetensors(dir / "model-00002-of-00002.safetensors", second);
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, tensor] : first) index["weight_map"][name] = "model-00001-of-00002.safetensors";
  for (const auto& [name, tensor] : second) index["weight_map"][name] = "model-00002-of-00002.safetensors";
  t::write_text(dir / "model.safetensors.index.json", index.dump());

  auto sharded = model::load_model(dir, [](const std::string&) {});
  auto whole = model::load_model(reference_dir() / "safetensors_f32", [](const std::string&) {});
  CHECK(sharded.initialized.empty());
  CHECK(sharded.weights_file == dir / "model.safetensors.index.json");
  CHECK(torch::equal(sharded.model->classifier->weight, whole.model->classifier->weight));
  CHECK(torch::equal(sharded.model->bert->embeddings->word_embeddings->weight,
                     whole.model->bert->embeddings->word_embeddings->weight));

  t::fs::remove(dir / "model-00002-of-00002.safetensors");
  auto message = load_error(dir);
  CHECK(message.find("names shard model-00002-of-00002.safetensors, which is missing") != std::string::npos);
}

TEST_CASE("damaged checkpoints are refused naming the file and tensor") {
  t::TempDir tmp;
  SUBCASE("truncated safetensors") {
    auto dir = scratch_copy(tmp, "safetensors_f32");
    auto file = dir / "model.safetensors";
    t::fs::resize_file(file, t::fs::file_size(file) - 100);
    auto message = load_error(dir);
    CHECK(message.find(file.string()) != std::string::npos);
    CHECK(message.find("truncated") != std::string::npos);
  }
  SUBCASE("truncated pytorch_model.bin") {
    auto dir = scratch_copy(tmp, "bin");
    auto file = dir / "pytorch_model.bin";
    t::fs::resize_file(file, t::fs::file_size(file) / 2);
    auto message = load_error(dir);
    CHECK(message.find(file.string()) != std::string::npos);
  }
  SUBCASE("shapes that disagree with config.json") {
    auto dir = scratch_copy(tmp, "safetensors_f32");
    auto config = nlohmann::json::parse(t::read_text(dir / "config.json"));
    config["intermediate_size"] = 96;
    t::write_text(dir / "config.json", config.dump());
    auto message = load_error(dir);
    // Refused before the model is allocated: the field, its value and the tensor that fixes it.
    CHECK(message == (dir / "config.json").string() +
                         ": intermediate_size 96 does not match the weights "
                         "(bert.encoder.layer.0.intermediate.dense.weight in " +
                         (dir / "model.safetensors").string() + " has 80 rows)");
  }
  SUBCASE("a tensor whose shape no config field fixes") {
    auto dir = scratch_copy(tmp, "safetensors_f32");
    auto tensors = model::read_safetensors(dir / "model.safetensors");
    for (auto& [name, tensor] : tensors)
      if (name == "bert.pooler.dense.bias") tensor = torch::zeros({5});
    model::write_safetensors(dir / "model.safetensors", tensors);
    // The first tensor read that disagrees is named, with both shapes.
    CHECK(load_error(dir).find("bert.pooler.dense.bias has shape [5], config.json implies [") != std::string::npos);
  }
  SUBCASE("a vocabulary larger than vocab_size") {
    auto dir = scratch_copy(tmp, "safetensors_f32");
    std::ofstream(dir / "vocab.txt", std::ios::app) << "extra1\nextra2\n";
    auto message = load_error(dir);
    CHECK(message.find("vocab.txt has 99 entries but config.json's vocab_size is 97") != std::string::npos);
  }
  SUBCASE("NaN weights") {
    auto dir = scratch_copy(tmp, "safetensors_f32");
    auto tensors = model::read_safetensors(dir / "model.safetensors");
    for (auto& [name, tensor] : tensors)
      if (name == "bert.pooler.dense.bias") tensor[3] = std::nanf("");
    model::write_safetensors(dir / "model.safetensors", tensors);
    auto message = load_error(dir);
    CHECK(message.find("bert.pooler.dense.bias holds NaN or infinite values") != std::string::npos);
  }
  SUBCASE("another model type or activation") {
    auto dir = scratch_copy(tmp, "safetensors_f32");
    auto config = nlohmann::json::parse(t::read_text(dir / "config.json"));
    config["model_type"] = "roberta";
    t::write_text(dir / "config.json", config.dump());
    CHECK(load_error(dir).find("model_type is \"roberta\"") != std::string::npos);
    config["model_type"] = "bert";
    config["hidden_act"] = "relu";
    t::write_text(dir / "config.json", config.dump());
    CHECK(load_error(dir).find("hidden_act is \"relu\"") != std::string::npos);
    config["hidden_act"] = "gelu";
    config["position_embedding_type"] = "relative_key";
    t::write_text(dir / "config.json", config.dump());
    CHECK(load_error(dir).find("position_embedding_type is \"relative_key\"") != std::string::npos);
  }
}

TEST_CASE("what save_model writes loads back to the same logits") {
  t::TempDir tmp;
  auto loaded = model::load_model(reference_dir() / "safetensors_f32", [](const std::string&) {});
  auto tokenizer = tokenizer::BertTokenizer::from_vocab_file(reference_dir() / "safetensors_f32" / "vocab.txt", {});
  auto out = tmp.path() / "saved";
  t::fs::create_directories(out);
  model::save_model(out, loaded.model, tokenizer, {{"created_by", "test"}});
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                           "special_tokens_map.json", "tokenizer.json", "recmodel.json"})
    CHECK_MESSAGE(t::fs::exists(out / file), file);
  auto config = nlohmann::json::parse(t::read_text(out / "config.json"));
  CHECK(config["id2label"]["2"] == "pos");
  CHECK(config["label2id"]["neg"] == 0);
  CHECK(config["problem_type"] == "single_label_classification");
  auto again = model::load_model(out, [](const std::string&) {});
  loaded.model->eval();
  again.model->eval();
  torch::NoGradGuard no_grad;
  auto ids = torch::tensor({2, 10, 11, 12, 3}, torch::kLong).view({1, 5});
  auto zeros = torch::zeros_like(ids), ones = torch::ones_like(ids);
  CHECK(torch::equal(loaded.model->forward(ids, zeros, ones), again.model->forward(ids, zeros, ones)));
}
