#include "commands/quantize.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "common/error.h"
#include "common/files.h"
#include "converters/quantization.h"
#include "data/prepared_dataset.h"
#include "metrics/gates.h"
#include "metrics/names.h"
#include "model/model_open.h"
#include "registry/registry.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel {

namespace {

struct QuantizeCommandOptions {
  std::string model;
  std::string out;
  std::string data;
  std::string split = "test";
  bool per_tensor = false;
  std::string max_drop = "accuracy=0.01";
  size_t batch_size = 32;
  bool force = false;
  const CLI::Option* max_drop_option = nullptr;
};

// Parses --max-drop with the one gate parser (metrics::parse_gates); a drop is 0 or more.
std::vector<metrics::Gate> parse_max_drop(const std::string& text) {
  std::vector<metrics::Gate> gates = metrics::parse_gates(text, metrics::GateKind::at_most, "--max-drop");
  for (const auto& gate : gates)
    if (gate.threshold < 0)
      fail<UsageError>("--max-drop {}: {} is a negative drop; give the largest allowed loss, such as {}=0.01",
                       gate.metric, gate.threshold, gate.metric);
  return gates;
}

uint64_t directory_weights_bytes(const fs::path& weights_file) {
  std::error_code ec;
  auto bytes = fs::file_size(weights_file, ec);
  return ec ? 0 : static_cast<uint64_t>(bytes);
}

std::string megabytes(uint64_t bytes) { return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6); }

void run_quantize(QuantizeCommandOptions options, const Console& console) {
  const std::string model_name = options.model;  // as given, for messages about the fit
  options.model = registry::resolve_model(options.model, console.options().registry).path.string();
  // Validate the whole command line before loading anything.
  const bool gate_given = options.max_drop_option && options.max_drop_option->count() > 0;
  std::vector<metrics::Gate> gates = parse_max_drop(options.max_drop);
  if (options.data.empty() && gate_given)
    fail<UsageError>("--max-drop needs --data DIR: the accuracy change is measured on a prepared dataset");
  if (!fs::is_directory(options.model)) fail<NotFoundError>("{}: no such model directory (--model)", options.model);
  if (fs::exists(options.out) && !options.force)
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", options.out);
  if (fs::exists(options.out) && fs::equivalent(options.out, options.model))
    fail<UsageError>("--out {} is the model directory itself; write the int8 model to a new directory", options.out);
  std::optional<data::PreparedDataset> dataset;
  std::optional<data::DatasetSplit> split;
  if (!options.data.empty()) {
    dataset = data::PreparedDataset::open(options.data);
    split.emplace(dataset->require_split(options.split));
  }

  model::OpenedModel opened = model::open_for_inference(
      options.model, model_name, [&](const std::string& w) { console.warn("{}", w); }, dataset ? &*dataset : nullptr);
  model::LoadedModel& loaded = opened.loaded;
  const tokenizer::BertTokenizer& tokenizer = opened.tokenizer;
  auto& model = *loaded.model;
  nlohmann::json lineage = model::read_lineage(options.model);  // carried into the int8 model's
  if (!model.int8_modules().empty())
    fail<DataError>("{}: is an int8 model already (recmodel quantize); quantize the fp32 model it came from",
                    options.model);
  const bool regression = model.config.problem_type == model::ProblemType::regression;
  if (dataset) {
    if (regression && gate_given)
      for (const auto& gate : gates)
        if (gate.metric != "mae" && gate.metric != "rmse")
          fail<UsageError>("--max-drop {}: does not apply to a regression model; use mae or rmse", gate.metric);
    if (regression && !gate_given) gates.clear();  // the default gate is on accuracy
  }

  converters::SplitOutputs before, after;
  auto evaluate = [&](const char* what) {
    ProgressBar progress(console, what, split->size(), "ex");
    auto outputs = converters::run_split(model, *split, options.batch_size, [&](uint64_t done) { progress.update(done); });
    progress.finish();
    return outputs;
  };
  if (dataset) {
    console.info("evaluating the fp32 model on {} {} examples", split->size(), options.split);
    before = evaluate("fp32");
  }
  converters::QuantizeOptions quantize;
  quantize.per_channel = !options.per_tensor;
  std::vector<std::string> modules = converters::quantize_model(model, quantize);
  if (dataset) {
    console.info("evaluating the int8 model");
    after = evaluate("int8");
  }

  StagingDir staging(options.out, options.force);
  nlohmann::json scheme = {{"weights", quantize.per_channel ? "int8 symmetric, per output channel" : "int8 symmetric, per tensor"},
                           {"embeddings", "int8 symmetric, per row"},
                           {"activations", "uint8 asymmetric, per tensor, at run time"},
                           {"modules", modules.size()}};

  const uint64_t bytes_before = directory_weights_bytes(loaded.weights_file);
  nlohmann::json report = {{"model", options.model},
                           {"out", options.out},
                           {"scheme", scheme},
                           {"size", {{"before_bytes", bytes_before}}}};
  std::vector<std::string> failures;
  std::optional<converters::QualityComparison> quality;
  if (dataset) {
    quality = converters::compare_quality(before, after, *split, model.config.labels, opened.fit.label_map);
    nlohmann::json metrics_json = nlohmann::json::object();
    std::vector<std::string> shown = regression ? std::vector<std::string>{"mae", "rmse"}
                                                : std::vector<std::string>{"accuracy", "f1_macro", "f1_weighted"};
    for (const auto& gate : gates)
      if (std::find(shown.begin(), shown.end(), gate.metric) == shown.end()) shown.push_back(gate.metric);
    for (const auto& name : shown) {
      auto b = converters::metric_value(*quality, name, false), a = converters::metric_value(*quality, name, true);
      metrics_json[name] = {{"before", b ? nlohmann::json(*b) : nlohmann::json(nullptr)},
                            {"after", a ? nlohmann::json(*a) : nlohmann::json(nullptr)}};
    }
    nlohmann::json gate_json = nlohmann::json::array();
    for (const auto& gate : gates) {
      auto b = converters::metric_value(*quality, gate.metric, false);
      auto a = converters::metric_value(*quality, gate.metric, true);
      if (!a || !b) {
        console.warn("--max-drop {}: not defined on this split; not checked", gate.metric);
        continue;
      }
      double drop = metrics::higher_is_better(gate.metric) ? *b - *a : *a - *b;
      bool passed = drop <= gate.threshold + 1e-12;
      gate_json.push_back({{"metric", gate.metric}, {"drop", drop}, {"max_drop", gate.threshold}, {"passed", passed}});
      if (!passed)
        failures.push_back(fmt::format("{} {} by {:.4f} ({:.4f} -> {:.4f}), more than --max-drop {}={}", gate.metric,
                                       metrics::higher_is_better(gate.metric) ? "dropped" : "rose", drop, *b, *a,
                                       gate.metric, gate.threshold));
    }
    report["data"] = {{"path", options.data}, {"split", options.split}, {"examples", split->size()}};
    report["metrics"] = metrics_json;
    report["max_abs_logit_change"] = quality->max_abs_output_change;
    if (!regression) {
      report["top_label_agreement"] = quality->agreement;
      report["largest_class_drop"] =
          quality->worst_class.empty()
              ? nlohmann::json(nullptr)
              : nlohmann::json({{"label", quality->worst_class},
                                {"metric", "f1"},
                                {"before", quality->worst_class_f1_before},
                                {"after", quality->worst_class_f1_after},
                                {"drop", quality->worst_class_f1_before - quality->worst_class_f1_after}});
    }
    report["gate"] = gate_json;
  }
  lineage["quantization"] = {{"source", options.model},
                             {"source_weights_sha256", sha256_file(loaded.weights_file)},
                             {"scheme", scheme},
                             {"recmodel_version", RECMODEL_VERSION}};
  if (report.contains("metrics")) lineage["quantization"]["report"] = {{"data", report["data"]}, {"metrics", report["metrics"]}};
  model::save_model(staging.path(), loaded.model, tokenizer, lineage);
  const uint64_t bytes_after = directory_weights_bytes(staging.path() / "model.safetensors");
  report["size"]["after_bytes"] = bytes_after;
  report["size"]["ratio"] = bytes_before ? static_cast<double>(bytes_after) / static_cast<double>(bytes_before) : 0.0;
  report["written"] = failures.empty();

  auto print = [&](std::FILE* out) {
    fmt::print(out, "{} {} (int8: {} modules, weights {}; activations quantized at run time)\n",
               failures.empty() ? "wrote" : "did not write", options.out, modules.size(),
               quantize.per_channel ? "per output channel" : "per tensor");
    fmt::print(out, "  size      {:>10} -> {:>10}  ({:.0f}%)\n", megabytes(bytes_before), megabytes(bytes_after),
               100.0 * report["size"]["ratio"].get<double>());
    if (!quality) {
      fmt::print(out, "  accuracy  not measured (give --data DIR to compare on a split and gate the drop)\n");
      return;
    }
    fmt::print(out, "  on {} {} examples of {}:\n", split->size(), options.split, options.data);
    for (const auto& [name, values] : report["metrics"].items()) {
      if (values["before"].is_null() || values["after"].is_null()) continue;
      double b = values["before"].get<double>(), a = values["after"].get<double>();
      fmt::print(out, "  {:<12} {:.4f} -> {:.4f}  ({:+.4f})\n", name, b, a, a - b);
    }
    if (!regression) {
      fmt::print(out, "  top labels agree on {:.2f}% of examples\n", 100 * quality->agreement);
      if (quality->worst_class.empty())
        fmt::print(out, "  no class lost F1\n");
      else
        fmt::print(out, "  largest class drop: '{}' F1 {:.4f} -> {:.4f}\n", quality->worst_class,
                   quality->worst_class_f1_before, quality->worst_class_f1_after);
    }
    for (const auto& gate : report["gate"])
      fmt::print(out, "  gate {} drop {:.4f} <= {}: {}\n", gate["metric"].get<std::string>(),
                 gate["drop"].get<double>(), gate["max_drop"].get<double>(),
                 gate["passed"].get<bool>() ? "passed" : "FAILED");
  };
  console.result(report, print);
  if (!failures.empty())
    fail<QualityGateError>("the int8 model does not meet the gate: {}; {} was not written (raise --max-drop to keep "
                           "it)",
                           fmt::format("{}", fmt::join(failures, "; ")), options.out);
  staging.commit();
}

}  // namespace

CommandAction register_quantize(CLI::App& command, const Console& console) {
  auto options = std::make_shared<QuantizeCommandOptions>();
  command.footer(
      "\nWrites an int8 model directory: the encoder's and pooler's Linear layers and the word embeddings as int8\n"
      "(symmetric; per output channel unless --per-tensor), activations quantized at run time; the classifier\n"
      "stays fp32. recmodel evaluate/predict run it with the same int8 arithmetic as its ONNX export\n"
      "(recmodel export --model OUT writes onnx/model_quantized.onnx).\n"
      "With --data, reports accuracy and F1 before/after on --split, the largest per-class F1 drop and the\n"
      "share of examples whose top label is unchanged; exit 1 when a --max-drop gate fails (nothing written).");
  const char* model_group = "Model";
  command.add_option("--model", options->model, "fp32 model directory, or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->type_name("DIR")
      ->required()
      ->group(model_group);
  command.add_flag("--per-tensor", options->per_tensor,
                   "One scale per weight matrix instead of one per output channel (less accurate)")
      ->group(model_group);
  const char* data_group = "Accuracy check";
  command.add_option("--data", options->data, "Prepared dataset (recmodel preprocess) to compare fp32 and int8 on")
      ->type_name("DIR")
      ->group(data_group);
  command.add_option("--split", options->split, "Split of --data to evaluate")
      ->check(one_of({"train", "dev", "test"}))
      ->capture_default_str()
      ->group(data_group);
  options->max_drop_option =
      command.add_option("--max-drop", options->max_drop,
                         "Largest allowed loss per metric (0.01 = one point; mae/rmse: largest rise); exit 1 beyond")
          ->type_name("LIST")
          ->capture_default_str()
          ->group(data_group);
  command.add_option("--batch-size", options->batch_size, "Examples per forward pass while evaluating")
      ->check(CLI::Range(size_t{1}, size_t{65536}))
      ->capture_default_str()
      ->group(data_group);
  const char* output_group = "Output";
  command.add_option("--out", options->out, "int8 model directory to create")
      ->type_name("DIR")
      ->required()
      ->group(output_group);
  command.add_flag("--force", options->force, "Replace --out if it exists")->group(output_group);
  return [options, &console] { run_quantize(*options, console); };
}

}  // namespace recmodel
