#include "commands/predict.h"

#include <chrono>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "common/error.h"
#include "data/readers.h"
#include "model/batch_predictor.h"
#include "model/model_open.h"
#include "model/prediction_io.h"
#include "model/predictor.h"
#include "registry/registry.h"

namespace recmodel {

namespace {

namespace fs = std::filesystem;

struct PredictOptions {
  std::string model;
  std::string input = "-";
  std::string format = "auto";
  bool pair = false;
  std::string text_column = "text";
  std::string pair_column;
  std::string id_column = "id";
  int top_k = 3;
  bool logits = false;
  bool probs = false;
  int batch_size = 32;
  int max_length = 0;  // 0: the model's limit
  std::string device = "auto";
  bool strict = false;
};

// Maps --format, --pair and the column options to where the inputs come from.
model::InputSpec input_spec(const PredictOptions& options, bool text_column_given) {
  model::InputSpec spec;
  spec.path = options.input;
  spec.text_column = options.text_column;
  spec.pair_column = options.pair_column;
  spec.id_column = options.id_column;
  if (options.pair) {
    if (options.format != "auto" && options.format != "lines")
      fail<UsageError>("--pair reads TAB-separated text pairs; it does not combine with --format {} (use "
                       "--text-pair-column for CSV/TSV/JSONL)",
                       options.format);
    spec.format = model::InputFormat::pairs;
    return spec;
  }
  if (options.format == "lines") spec.format = model::InputFormat::lines;
  if (options.format == "csv") spec.format = model::InputFormat::csv;
  if (options.format == "tsv") spec.format = model::InputFormat::tsv;
  if (options.format == "jsonl") spec.format = model::InputFormat::jsonl;
  if (options.format != "auto") return spec;
  std::optional<data::Format> by_name;
  if (options.input != "-") by_name = data::format_from_extension(options.input);
  if (!by_name) {
    if (text_column_given || !options.pair_column.empty())
      fail<UsageError>("--text-column reads CSV, TSV or JSONL; say which with --format (the input {} has no such "
                       "extension)",
                       options.input == "-" ? "on stdin" : options.input);
    spec.format = model::InputFormat::lines;
    return spec;
  }
  switch (*by_name) {
    case data::Format::csv: spec.format = model::InputFormat::csv; break;
    case data::Format::tsv: spec.format = model::InputFormat::tsv; break;
    case data::Format::jsonl: spec.format = model::InputFormat::jsonl; break;
  }
  return spec;
}

void run_predict(const PredictOptions& options, const Console& console, bool text_column_given) {
  const model::InputSpec spec = input_spec(options, text_column_given);
  if (options.input != "-") {
    std::error_code ec;
    if (!fs::exists(options.input, ec)) fail<NotFoundError>("{}: no such file (--input)", options.input);
    if (fs::is_directory(options.input, ec)) fail<UsageError>("{}: is a directory; --input takes a file", options.input);
  }
  model::BatchPredictorOptions popts;
  popts.device = model::parse_device(options.device);
  popts.batch_size = static_cast<size_t>(options.batch_size);
  popts.max_length = static_cast<size_t>(options.max_length);

  registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
  model::BatchPredictor predictor(
      model::open_for_inference(resolved.path, options.model, [&](const std::string& w) { console.warn("{}", w); }),
      popts);

  model::StreamOptions sopts;
  sopts.output.top_k = static_cast<size_t>(options.top_k);
  sopts.output.probs = options.probs;
  sopts.output.logits = options.logits;
  auto on_bad = [&](uint64_t line, const std::string& error, uint64_t nth) {
    if (options.strict)
      fail<DataError>("{}:{}: {} (--strict stops at the first bad input)", spec.name(), line, error);
    if (nth <= 10) console.warn("{}:{}: {}; its output line holds the error", spec.name(), line, error);
  };
  const auto start = std::chrono::steady_clock::now();
  const model::StreamSummary summary = model::predict_stream(predictor, spec, stdout, "stdout", sopts, on_bad);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (summary.truncated > 0)
    console.warn("{} of {} texts were longer than {} tokens and truncated (longest first for pairs); see "
                 "\"truncated\" in their output",
                 summary.truncated, summary.scored, predictor.max_length());
  if (summary.bad > 0) {
    std::string list;
    for (size_t i = 0; i < summary.bad_lines.size(); ++i) list += (i ? ", " : "") + std::to_string(summary.bad_lines[i]);
    if (summary.bad > summary.bad_lines.size()) list += ", ...";
    console.warn("{} input{} not scored ({} {}): their output lines hold \"error\"", summary.bad,
                 summary.bad == 1 ? " was" : "s were", summary.bad == 1 ? "line" : "lines", list);
  }
  console.info("predicted {} texts in {:.2f} s ({:.1f} texts/s, {} threads, batch {})", summary.scored, seconds,
               seconds > 0 ? static_cast<double>(summary.scored) / seconds : 0.0, console.threads(),
               options.batch_size);
}

}  // namespace

CommandAction register_predict(CLI::App& command, const Console& console) {
  auto options = std::make_shared<PredictOptions>();
  command.footer(
      "\nOutput: one JSON object per input line or record, in input order, written as soon as it is scored:\n"
      "  {\"id\": ..., \"label\": ..., \"score\": p, \"top_k\": [[label, p], ...]}   (\"value\" for regression)\n"
      "with \"probs\" ({label: p}, ready for 'recmodel evaluate --predictions') and \"logits\" on request.\n"
      "An input that cannot be scored (empty text, invalid UTF-8, bad JSON, missing column) gets\n"
      "{\"line\": N, \"error\": ...} and a warning naming the line; --strict stops there (exit 3) instead.\n"
      "Texts longer than --max-length tokens are truncated; they carry \"truncated\": tokens dropped.");
  const char* model_group = "Model";
  command.add_option("--model", options->model, "Model directory or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->type_name("REF")
      ->required()
      ->group(model_group);
  command.add_option("--device", options->device, "auto (CUDA when present), cpu, cuda or cuda:N")
      ->capture_default_str()
      ->group(model_group);
  command.add_option("--batch-size", options->batch_size, "Texts per forward pass (batched by length)")
      ->check(CLI::Range(1, 1 << 16).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(model_group);
  command.add_option("--max-length", options->max_length,
                     "Truncate texts to N tokens; 0 = the model's limit (max_position_embeddings)")
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(model_group);
  const char* input_group = "Input";
  command.add_option("--input", options->input, "Text file; - reads stdin")
      ->type_name("FILE")
      ->capture_default_str()
      ->group(input_group);
  command.add_option("--format", options->format,
                     "lines (one text per line), csv, tsv or jsonl; auto = from the file extension, else lines")
      ->check(one_of({"auto", "lines", "csv", "tsv", "jsonl"}))
      ->capture_default_str()
      ->group(input_group);
  command.add_flag("--pair", options->pair, "Each line is two texts separated by a TAB (query, title)")
      ->group(input_group);
  auto* text_column = command.add_option("--text-column", options->text_column, "CSV/TSV/JSONL column with the text")
                          ->capture_default_str()
                          ->group(input_group);
  command.add_option("--text-pair-column", options->pair_column,
                     "CSV/TSV/JSONL column with the second text of a pair (e.g. the product title)")
      ->group(input_group);
  command.add_option("--id-column", options->id_column, "CSV/TSV/JSONL column echoed as \"id\" when present")
      ->capture_default_str()
      ->group(input_group);
  command.add_flag("--strict", options->strict, "Stop at the first input that cannot be scored (exit 3)")
      ->group(input_group);
  const char* output_group = "Output";
  command.add_option("--top-k", options->top_k, "The K most likely labels with probabilities; 0 = leave out")
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("K")
      ->group(output_group);
  command.add_flag("--probs", options->probs, "Add every label's probability as \"probs\": {label: p}")
      ->group(output_group);
  command.add_flag("--logits", options->logits, "Add the raw logits as \"logits\": [...]")->group(output_group);
  return [options, &console, text_column] { run_predict(*options, console, text_column->count() > 0); };
}

}  // namespace recmodel
