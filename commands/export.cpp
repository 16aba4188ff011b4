#include "commands/export.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "common/error.h"
#include "common/files.h"
#include "converters/onnx_export.h"
#include "converters/onnx_runtime.h"
#include "converters/quantization.h"
#include "model/model_open.h"
#include "registry/registry.h"

namespace recmodel {

namespace {

struct ExportOptions {
  std::string model;
  std::string out;  // empty: the model directory itself
  int opset = converters::kDefaultOpset;
  std::string quantize = "none";
  bool per_tensor = false;
  bool verify = false;
  double atol = 1e-4;
  double int8_atol = 0.05;
  int verify_inputs = 32;
  bool external_data = false;
  bool force = false;
};

constexpr const char* kFp32File = "model.onnx";
constexpr const char* kInt8File = "model_quantized.onnx";
// The tokenizer and config files transformers.js and Optimum read beside onnx/.
const std::vector<std::string> kSupportFiles = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                                "special_tokens_map.json", "vocab.txt"};

// Returns the absolute, normalized form of `path` without a trailing separator.
std::string normalized(const fs::path& path) {
  std::string text = fs::weakly_canonical(fs::absolute(path)).lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

// Returns whether `ancestor` is `path` or one of its parent directories.
bool is_ancestor_or_same(const fs::path& ancestor, const fs::path& path) {
  std::string a = normalized(ancestor), p = normalized(path);
  return p == a || p.rfind(a == "/" ? a : a + "/", 0) == 0;
}

// One written ONNX file and what it was checked against.
struct ExportedFile {
  std::string name;       // "onnx/model.onnx"
  std::string precision;  // fp32 or int8
  converters::OnnxFileInfo info;
  std::vector<torch::Tensor> reference;  // recmodel's logits on the verification inputs
  std::optional<converters::OutputComparison> comparison;
};

std::string megabytes(uint64_t bytes) { return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6); }

void run_export(ExportOptions options, const Console& console) {
  const registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
  if (resolved.version && options.out.empty())
    fail<UsageError>("{}: is a registered version, whose files must not change; export it with --out DIR",
                     options.model);
  options.model = resolved.path.string();
  const fs::path model_dir = options.model;
  if (!fs::is_directory(model_dir)) fail<NotFoundError>("{}: no such model directory (--model)", options.model);
  const fs::path out_dir = options.out.empty() ? model_dir : fs::path(options.out);
  const bool in_place = is_ancestor_or_same(out_dir, model_dir) && is_ancestor_or_same(model_dir, out_dir);
  if (!in_place && is_ancestor_or_same(out_dir, model_dir))
    fail<UsageError>("--out {} contains the model directory {}; choose a new directory (or leave --out out to "
                     "write {}/onnx)",
                     out_dir.string(), model_dir.string(), model_dir.string());
  const fs::path onnx_final = out_dir / "onnx";
  // Refuse to overwrite before any work.
  if (in_place) {
    for (const char* name : {kFp32File, kInt8File})
      if (fs::exists(onnx_final / name) && !options.force)
        fail<UsageError>("{}: already exists; pass --force to replace {}", (onnx_final / name).string(),
                         onnx_final.string());
  } else if (fs::exists(out_dir) && !options.force) {
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", out_dir.string());
  }

  // Validate the source: config, weights, tokenizer.
  model::OpenedModel opened =
      model::open_for_inference(model_dir, options.model, [&](const std::string& w) { console.warn("{}", w); });
  model::LoadedModel& loaded = opened.loaded;
  auto& model = *loaded.model;
  const bool source_int8 = !model.int8_modules().empty();
  const bool want_int8 = options.quantize == "int8" || source_int8;
  if (source_int8 && options.quantize == "int8")
    console.info("{} is int8 already; writing its int8 graph as it is", options.model);
  if (source_int8 && options.per_tensor)
    fail<UsageError>("--per-tensor applies when export quantizes; {} is int8 already", options.model);
  if (options.per_tensor && options.quantize != "int8")
    fail<UsageError>("--per-tensor applies to --quantize int8");
  const tokenizer::BertTokenizer& tokenizer = opened.tokenizer;
  model.eval();

  std::vector<converters::TokenBatch> batches;
  if (options.verify)
    batches = converters::verification_batches(model.config, options.verify_inputs, /*batch_size=*/8,
                                               /*max_length=*/128, /*seed=*/20240, tokenizer.cls_id(),
                                               tokenizer.sep_id());

  std::vector<ExportedFile> files;
  std::vector<onnx::ModelProto> graphs;
  if (!source_int8) {
    console.info("building the fp32 graph (opset {})", options.opset);
    graphs.push_back(converters::build_onnx_model(model, options.opset));
    converters::check_onnx_model(graphs.back(), std::string("onnx/") + kFp32File);
    ExportedFile file;
    file.name = std::string("onnx/") + kFp32File;
    file.precision = "fp32";
    if (options.verify) file.reference = converters::model_logits(model, batches);
    files.push_back(std::move(file));
  }
  std::vector<std::string> quantized_modules = model.int8_modules();
  if (want_int8) {
    if (!source_int8) {
      converters::QuantizeOptions quantize;
      quantize.per_channel = !options.per_tensor;
      quantized_modules = converters::quantize_model(model, quantize);
    }
    console.info("building the int8 graph (opset {}, {} int8 modules)", options.opset, quantized_modules.size());
    graphs.push_back(converters::build_onnx_model(model, options.opset));
    converters::check_onnx_model(graphs.back(), std::string("onnx/") + kInt8File);
    ExportedFile file;
    file.name = std::string("onnx/") + kInt8File;
    file.precision = "int8";
    if (options.verify) file.reference = converters::model_logits(model, batches);
    files.push_back(std::move(file));
  }

  // Write into a staging directory; rename into place only after the checks pass.
  std::unique_ptr<StagingDir> staging;
  fs::path staged_root;  // stands for out_dir while staged
  if (in_place) {
    staging = std::make_unique<StagingDir>(onnx_final, options.force);
    staged_root = staging->path().parent_path();
  } else {
    staging = std::make_unique<StagingDir>(out_dir, options.force);
    staged_root = staging->path();
  }
  auto staged = [&](const std::string& relative) {
    return in_place && relative.rfind("onnx/", 0) == 0 ? staging->path() / relative.substr(5) : staged_root / relative;
  };
  // The config and tokenizer files beside onnx/: copied from the model, or written from its
  // tokenizer when missing (transformers.js needs tokenizer.json).
  std::vector<std::pair<std::string, std::string>> support;  // name, contents
  for (const auto& name : kSupportFiles) {
    fs::path source = model_dir / name;
    if (fs::exists(source)) {
      if (!in_place) support.emplace_back(name, read_file(source));
    } else if (name == "tokenizer.json") {
      support.emplace_back(name, tokenizer.tokenizer_json().dump(2) + "\n");
    } else if (name == "tokenizer_config.json") {
      support.emplace_back(name, tokenizer.config().to_json().dump(2) + "\n");
    } else if (name == "special_tokens_map.json") {
      const auto& c = tokenizer.config();
      nlohmann::json special = {{"unk_token", c.unk_token}, {"sep_token", c.sep_token}, {"pad_token", c.pad_token},
                                {"cls_token", c.cls_token}, {"mask_token", c.mask_token}};
      support.emplace_back(name, special.dump(2) + "\n");
    }
  }
  std::vector<std::string> support_written;
  for (const auto& [name, contents] : support) {
    support_written.push_back(name);
    if (!in_place) write_file_atomic(staging->path() / name, contents);
  }
  if (!in_place) fs::create_directories(staging->path() / "onnx");
  for (size_t i = 0; i < files.size(); ++i) {
    files[i].info = converters::write_onnx_model(std::move(graphs[i]), staged(files[i].name), options.external_data);
  }

  // Verify with ONNX Runtime when it is installed.
  nlohmann::json verify = nullptr;
  if (options.verify) {
    converters::OnnxRuntimeNode runtime = converters::find_onnxruntime_node();
    if (!runtime.available) {
      console.warn("--verify skipped: {}", runtime.reason);
      verify = {{"skipped", runtime.reason}};
    } else {
      int shortest = 1 << 30, longest = 0;
      for (const auto& batch : batches) {
        torch::Tensor lengths = batch.attention_mask.sum(1);
        shortest = std::min(shortest, static_cast<int>(lengths.min().item<int64_t>()));
        longest = std::max(longest, static_cast<int>(lengths.max().item<int64_t>()));
      }
      console.info("validating with ONNX Runtime {} (node) on {} inputs of {}-{} tokens", runtime.version,
                   options.verify_inputs, shortest, longest);
      verify = {{"runtime", "onnxruntime-node " + runtime.version},
                {"inputs", options.verify_inputs},
                {"batches", batches.size()},
                {"tokens", {{"min", shortest}, {"max", longest}}},
                {"files", nlohmann::json::array()}};
      for (auto& file : files) {
        auto outputs = converters::run_onnxruntime(staged(file.name), batches, console.threads());
        const double atol = file.precision == "fp32" ? options.atol : options.int8_atol;
        file.comparison = converters::compare_outputs("logits", file.reference, outputs, atol);
        const auto& c = *file.comparison;
        verify["files"].push_back({{"file", file.name},
                                   {"reference", file.precision == "fp32" ? "recmodel fp32 (libtorch)"
                                                                          : "recmodel int8 (libtorch, same arithmetic)"},
                                   {"outputs",
                                    {{"logits",
                                      {{"max_abs_diff", c.max_abs_diff},
                                       {"atol", c.atol},
                                       {"shapes_match", c.shapes_match},
                                       {"top_label_agreement", c.top_label_agreement},
                                       {"ok", c.ok()}}}}}});
      }
    }
  }

  nlohmann::json written = nlohmann::json::array();
  for (const auto& file : files) {
    written.push_back({{"path", file.name},
                       {"precision", file.precision},
                       {"bytes", file.info.bytes},
                       {"external_data", file.info.external_data.empty()
                                             ? nlohmann::json(nullptr)
                                             : nlohmann::json("onnx/" + file.info.external_data.filename().string())}});
  }
  nlohmann::json document = {
      {"model", options.model},
      {"out", out_dir.string()},
      {"opset", options.opset},
      {"inputs", {"input_ids", "attention_mask", "token_type_ids"}},
      {"outputs", {"logits"}},
      {"dynamic_axes", {"batch_size", "sequence_length"}},
      {"files", written},
      {"support_files", support_written},
      {"int8_modules", quantized_modules.size()},
      {"verify", verify},
  };

  auto print = [&](std::FILE* out) {
    fmt::print(out, "exported {} to {}/onnx (opset {}; onnx::checker and shape inference passed)\n", options.model,
               out_dir.string(), options.opset);
    const uint64_t fp32_bytes = files.front().precision == "fp32" ? files.front().info.bytes : 0;
    for (const auto& file : files) {
      std::string ratio = file.precision == "int8" && fp32_bytes
                              ? fmt::format("  ({:.0f}% of fp32)", 100.0 * static_cast<double>(file.info.bytes) /
                                                                       static_cast<double>(fp32_bytes))
                              : "";
      fmt::print(out, "  {:<26} {}  {:>9}{}{}\n", file.name, file.precision, megabytes(file.info.bytes), ratio,
                 file.info.external_data.empty() ? "" : "  (weights in onnx/" + file.info.external_data.filename().string() + ")");
    }
    for (const auto& file : files) {
      if (!file.comparison) continue;
      const auto& c = *file.comparison;
      fmt::print(out, "  validated {:<16} logits: max |diff| {:.2e} {} atol {:.0e}{}  {}\n",
                 file.name.substr(5), c.max_abs_diff, c.ok() ? "<=" : ">", c.atol,
                 file.precision == "int8" ? fmt::format(", top label {:.1f}%", 100 * c.top_label_agreement) : "",
                 c.ok() ? "ok" : "MISMATCH");
    }
    fmt::print(out, "load it with transformers.js: pipeline('text-classification', '{}'{})\n", out_dir.string(),
               want_int8 ? ", { dtype: 'q8' }" : "");
  };

  for (const auto& file : files) {
    if (file.comparison && !file.comparison->ok()) {
      console.result(document, print);
      const auto& c = *file.comparison;
      fail<IntegrityError>("{}: ONNX Runtime's logits differ from recmodel's by up to {:.3g} (atol {:.0e}{}); "
                           "nothing was written (please report this)",
                           file.name, c.max_abs_diff, c.atol, c.shapes_match ? "" : ", shapes differ");
    }
  }
  // In place, the model directory gains only what it lacked, once everything passed.
  if (in_place)
    for (const auto& [name, contents] : support) write_file_atomic(model_dir / name, contents);
  staging->commit();
  if (resolved.version) {  // the registry's lineage lists where a version was exported to
    registry::Registry registry(registry::registry_path(console.options().registry), registry::Registry::Access::write,
                                registry::default_options());
    registry::Location record;
    record.kind = "export";
    record.uri = fs::absolute(out_dir).lexically_normal().string();
    record.details = {{"format", "onnx"}, {"opset", options.opset}, {"files", written}};
    registry.record_location(resolved.version->ref(), record);
  }
  console.result(document, print);
}

}  // namespace

CommandAction register_export(CLI::App& command, const Console& console) {
  auto options = std::make_shared<ExportOptions>();
  command.footer(
      "\nWrites OUT/onnx/model.onnx (fp32) and, with --quantize int8, OUT/onnx/model_quantized.onnx, beside\n"
      "config.json and the tokenizer files: the layout transformers.js (dtype 'fp32' / 'q8') and Optimum load.\n"
      "Inputs input_ids, attention_mask, token_type_ids (int64, dynamic batch_size and sequence_length);\n"
      "output logits. int8: DynamicQuantizeLinear + MatMulInteger, as ONNX Runtime's quantize_dynamic writes.\n"
      "An int8 model directory (recmodel quantize) exports as model_quantized.onnx only.");
  const char* input_group = "Model";
  command.add_option("--model", options->model, "Model directory or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->type_name("DIR")
      ->required()
      ->group(input_group);
  const char* format_group = "ONNX";
  command.add_option("--opset", options->opset, "ONNX opset (17 uses LayerNormalization)")
      ->check(CLI::Range(converters::kMinOpset, converters::kMaxOpset))
      ->capture_default_str()
      ->group(format_group);
  command.add_option("--quantize", options->quantize, "Also write the int8 model: none or int8")
      ->check(one_of({"none", "int8"}))
      ->capture_default_str()
      ->group(format_group);
  command.add_flag("--per-tensor", options->per_tensor,
                   "With --quantize int8: one weight scale per matrix instead of per output channel")
      ->group(format_group);
  command.add_flag("--external-data", options->external_data,
                   "Store the weights in onnx/*.onnx_data beside the graph (automatic above 2 GB)")
      ->group(format_group);
  const char* verify_group = "Verification";
  command.add_flag("--verify", options->verify,
                   "Run the files in ONNX Runtime (node + onnxruntime-node, when installed) and compare with "
                   "recmodel's logits")
      ->group(verify_group);
  command.add_option("--atol", options->atol, "--verify: largest absolute logit difference allowed for fp32")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(verify_group);
  command.add_option("--int8-atol", options->int8_atol,
                     "--verify: the same for int8 (recmodel's int8 arithmetic vs ONNX Runtime's)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(verify_group);
  command.add_option("--verify-inputs", options->verify_inputs, "--verify: number of generated inputs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str()
      ->group(verify_group);
  const char* output_group = "Output";
  command.add_option("--out", options->out,
                     "Directory to write (onnx/ plus config and tokenizer files); default: the model directory")
      ->type_name("DIR")
      ->group(output_group);
  command.add_flag("--force", options->force, "Replace --out (or the model's onnx/ folder) if it exists")
      ->group(output_group);
  return [options, &console] { run_export(*options, console); };
}

}  // namespace recmodel
