#include "commands/drift.h"

#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <regex>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "common/error.h"
#include "common/line_reader.h"
#include "data/prepared_dataset.h"
#include "data/readers.h"
#include "model/batch_predictor.h"
#include "model/model_open.h"
#include "model/prediction_io.h"
#include "model/reference_profile.h"
#include "monitoring/drift.h"
#include "monitoring/traffic.h"
#include "registry/registry.h"

namespace recmodel {

namespace {

namespace fs = std::filesystem;

constexpr size_t kFewInputs = 500;  // below this a drift window mostly measures sampling noise

struct DriftOptions {
  std::string model;
  std::string input;
  std::string format = "auto";
  std::string text_column = "text";
  std::string pair_column;
  size_t window = monitoring::kMaxProfileSamples;
  std::string since;
  std::string served_name;
  bool all_versions = false;
  std::string reference;
  std::string reference_split = "dev";
  std::string fail_over;
  int batch_size = 32;
  std::string device = "auto";
};

// --since: an ISO 8601 time, or a span back from now ("90s", "30m", "6h", "7d").
int64_t parse_since(const std::string& text) {
  static const std::regex span(R"(^(\d+)([smhd])$)");
  std::smatch m;
  if (std::regex_match(text, m, span)) {
    const int64_t n = std::stoll(m[1].str());
    const int64_t unit = m[2] == "s" ? 1000 : m[2] == "m" ? 60000 : m[2] == "h" ? 3600000 : 86400000;
    return registry::now_ms() - n * unit;
  }
  return registry::parse_time(text);
}

// Predicts the texts of `spec` (the last `window` of them) and returns what the model made of them.
monitoring::LiveTraffic predict_texts(model::BatchPredictor& predictor, const model::InputSpec& spec, size_t window,
                                      uint64_t& skipped, uint64_t& dropped, const Console& console) {
  model::InputReader reader(spec);
  std::deque<model::EncodedInput> kept;
  model::InputRecord record;
  while (reader.next(record)) {
    if (!record.error.empty()) {
      if (++skipped <= 10) console.warn("{}:{}: {}; not counted", spec.name(), record.line, record.error);
      continue;
    }
    model::EncodedInput encoded =
        predictor.encode(record.input.text, record.input.pair ? std::optional<std::string_view>(*record.input.pair)
                                                              : std::nullopt);
    if (!encoded.ok()) {
      if (++skipped <= 10) console.warn("{}:{}: {}; not counted", spec.name(), record.line, encoded.error);
      continue;
    }
    kept.push_back(std::move(encoded));
    if (kept.size() > window) {
      kept.pop_front();
      ++dropped;
    }
  }
  std::vector<const model::EncodedInput*> inputs;
  for (const auto& e : kept) inputs.push_back(&e);
  const std::vector<model::Prediction> predictions = predictor.predict(inputs);
  const int32_t unk = predictor.tokenizer().unk_id();
  monitoring::LiveTraffic live;
  std::vector<size_t> order;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const auto& p = predictions[i];
    const auto& ids = kept[i].encoding.ids;
    if (predictor.regression()) {
      live.scores.push_back(p.value());
    } else {
      model::rank_labels(p.scores, order);
      live.labels.push_back(predictor.labels()[order.front()]);
      live.scores.push_back(p.scores[order.front()]);
    }
    live.tokens.push_back(static_cast<double>(ids.size()));
    const auto unknown = static_cast<double>(std::count(ids.begin(), ids.end(), unk));
    live.unk_rates.push_back(ids.empty() ? 0.0 : unknown / static_cast<double>(ids.size()));
    live.truncated += p.truncated > 0 ? 1 : 0;
  }
  return live;
}

model::InputSpec text_spec(const DriftOptions& options) {
  model::InputSpec spec;
  spec.path = options.input;
  spec.text_column = options.text_column;
  spec.pair_column = options.pair_column;
  if (options.format == "lines") return spec;
  if (options.format == "pairs") {
    spec.format = model::InputFormat::pairs;
    return spec;
  }
  std::optional<data::Format> format;
  if (options.format == "csv") format = data::Format::csv;
  if (options.format == "tsv") format = data::Format::tsv;
  if (options.format == "jsonl") format = data::Format::jsonl;
  if (options.format == "auto" && options.input != "-") format = data::format_from_extension(options.input);
  if (format == data::Format::csv) spec.format = model::InputFormat::csv;
  if (format == data::Format::tsv) spec.format = model::InputFormat::tsv;
  if (format == data::Format::jsonl) spec.format = model::InputFormat::jsonl;
  return spec;
}

// The first line that is not blank, to tell a log or predictions file from texts.
std::string first_line_of(const std::string& path) {
  LineReader reader(path);
  std::string line;
  while (reader.next(line))
    if (line.find_first_not_of(" \t") != std::string::npos) return line;
  return "";
}

// Reads the newest profile `evaluate --record` attached to `version`; false when there is none.
bool recorded_profile(const registry::VersionInfo& version, const Console& console,
                      monitoring::ReferenceProfile& profile, std::string& source) {
  registry::Registry reg(registry::registry_path(console.options().registry), registry::Registry::Access::read,
                         registry::default_options());
  const auto evaluations = reg.evaluations(registry::parse_ref(version.uri(), /*allow_bare=*/false));
  for (auto it = evaluations.rbegin(); it != evaluations.rend(); ++it) {
    if (it->profile.is_null()) continue;
    source = fmt::format("registry: evaluate --record of the {} split, {}", it->split, it->at);
    profile = monitoring::ReferenceProfile::from_json(it->profile, fmt::format("{} ({})", version.uri(), source));
    return true;
  }
  return false;
}

std::string format_number(double v) {
  if (v != 0 && std::fabs(v) < 1e-4) return fmt::format("{:.2e}", v);
  return fmt::format("{:.4f}", v);
}

void run_drift(const DriftOptions& options, const Console& console) {
  // Everything that can be wrong with the flags first.
  const monitoring::DriftThresholds thresholds =
      options.fail_over.empty() ? monitoring::DriftThresholds{} : monitoring::parse_thresholds(options.fail_over);
  std::optional<int64_t> since;
  if (!options.since.empty()) since = parse_since(options.since);
  if (options.input != "-") {
    std::error_code ec;
    if (!fs::exists(options.input, ec)) fail<NotFoundError>("{}: no such file (--input)", options.input);
    if (fs::is_directory(options.input, ec)) fail<UsageError>("{}: is a directory; --input takes a file", options.input);
  }
  if (options.input == "-" && options.format == "auto")
    fail<UsageError>("--input - (stdin) needs --format: log, predictions, lines, pairs, csv, tsv or jsonl");

  std::optional<monitoring::TrafficKind> kind;
  if (options.format == "log") kind = monitoring::TrafficKind::log;
  if (options.format == "predictions") kind = monitoring::TrafficKind::predictions;
  if (options.format == "auto") {
    const std::optional<data::Format> by_name = data::format_from_extension(options.input);
    if (!by_name || *by_name == data::Format::jsonl) kind = monitoring::detect_kind(first_line_of(options.input));
  }
  if (!kind && since) fail<UsageError>("--since needs times: texts have none; give serve's --log-predictions file");

  registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
  const auto warn = [&](const std::string& w) { console.warn("{}", w); };

  // The reference: the model's own profile, or one computed now on a prepared split. The
  // weights are read only when something must be scored.
  std::optional<model::OpenedModel> opened;
  monitoring::ReferenceProfile profile;
  std::string reference_source;
  if (!options.reference.empty()) {
    const data::PreparedDataset dataset = data::PreparedDataset::open(options.reference);
    opened = model::open_for_inference(resolved.path, options.model, warn, &dataset);
    console.info("profiling {} on {} ({})", options.model, options.reference, options.reference_split);
    profile = model::profile_split(opened->loaded.model, opened->tokenizer.unk_id(), dataset, options.reference_split,
                                   static_cast<size_t>(options.batch_size), model::parse_device(options.device));
    reference_source = fmt::format("{} ({})", options.reference, options.reference_split);
  } else if (monitoring::read_model_profile(resolved.path.string(), profile)) {
    reference_source = "recmodel.json";
  } else if (resolved.version && recorded_profile(*resolved.version, console, profile, reference_source)) {
    // a version trained before profiles, profiled later by `evaluate --record`
  } else {
    fail<NotFoundError>("{} has no reference profile in recmodel.json (trained before recmodel recorded one); give "
                        "the prepared dataset it was trained on: --reference DATA (or record one for a registry version: recmodel "
                        "evaluate --model REF --data DATA --split dev --record)",
                        options.model);
  }
  if (!profile.regression)  // the model's order, for the bins
    profile.labels = model::BertConfig::from_json_file(resolved.path / "config.json").labels;

  monitoring::TrafficFilter filter;
  filter.window = options.window;
  filter.since_ms = since;
  filter.served_name = options.served_name;
  filter.regression = profile.regression;
  if (resolved.version && !options.all_versions) filter.version = resolved.version->version;
  monitoring::TrafficSummary summary;
  monitoring::LiveTraffic live;
  std::string input_kind;
  if (kind) {
    live = monitoring::read_traffic(options.input, *kind, filter, summary);
    input_kind = *kind == monitoring::TrafficKind::log ? "log" : "predictions";
    if (live.size() == 0) {
      std::string hint;
      if (!summary.other_versions.empty()) {
        for (int64_t v : summary.other_versions) hint += (hint.empty() ? "" : ", ") + std::to_string(v);
        hint = fmt::format(" (it has records of version{} {} of this model; pass --all-versions to count them, or "
                           "name that version)",
                           summary.other_versions.size() == 1 ? "" : "s", hint);
      } else if (!summary.other_models.empty()) {
        for (const auto& n : summary.other_models) hint += (hint.empty() ? "" : ", ") + n;
        hint = fmt::format(" (served names there: {})", hint);
      } else if (since) {
        hint = fmt::format(" since {}", registry::format_time(*since));
      }
      fail<NotFoundError>("{}: no predictions of {} to compare{}", options.input, options.model, hint);
    }
  } else {
    if (!opened) opened = model::open_for_inference(resolved.path, options.model, warn);
    model::BatchPredictorOptions popts;
    popts.device = model::parse_device(options.device);
    popts.batch_size = static_cast<size_t>(options.batch_size);
    model::BatchPredictor predictor(std::move(*opened), popts);
    live = predict_texts(predictor, text_spec(options), options.window, summary.skipped, summary.dropped_by_window,
                         console);
    input_kind = "texts";
    if (live.size() == 0) fail<DataError>("{}: no text that could be scored", options.input);
  }
  if (summary.dropped_by_window > 0)
    console.info("compared the last {} of {} records (--window)", live.size(), live.size() + summary.dropped_by_window);

  if (live.size() < kFewInputs)
    console.warn("only {} live inputs: PSI and JS over {} bins are noisy below about {} (take a longer --since or "
                 "--window)",
                 live.size(), monitoring::kNumericBins, kFewInputs);
  const monitoring::DriftResult result = monitoring::compare(profile, live, thresholds);

  nlohmann::ordered_json document;
  document["model"] = resolved.version ? resolved.version->uri() : options.model;
  document["input"] = options.input;
  document["input_kind"] = input_kind;
  document["reference"] = {{"source", reference_source}, {"split", profile.split}, {"examples", profile.examples}};
  document["window"] = {
      {"records", live.size()},
      {"skipped", summary.skipped},
      {"older", summary.dropped_by_window},
      {"first", summary.first_ms ? nlohmann::ordered_json(registry::format_time(*summary.first_ms)) : nullptr},
      {"last", summary.last_ms ? nlohmann::ordered_json(registry::format_time(*summary.last_ms)) : nullptr}};
  nlohmann::ordered_json limits = {{"psi", thresholds.psi}, {"js", thresholds.js}};
  if (thresholds.p_value) limits["p_value"] = *thresholds.p_value;
  document["thresholds"] = limits;
  document["features"] = monitoring::features_json(result);
  document["truncation_rate"] = {
      {"reference", result.reference_truncation_rate},
      {"live", result.live_truncation_rate ? nlohmann::ordered_json(*result.live_truncation_rate) : nullptr}};
  document["drift"] = result.drift;
  document["drifted"] = result.drifted();

  if (console.json()) {
    std::string text = document.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    fmt::print("{} vs {}: {} live inputs ({}), reference {} inputs ({})\n\n", options.input,
               document["model"].get<std::string>(), live.size(), input_kind, profile.examples, reference_source);
    fmt::print("  {:<16} {:<10} {:>8} {:>8} {:>10} {:<9} {}\n", "feature", "test", "psi", "js", "p-value", "severity",
               "drift");
    for (const auto& f : result.features) {
      if (!f.available) {
        fmt::print("  {:<16} {}\n", f.name, f.reason);
        continue;
      }
      fmt::print("  {:<16} {:<10} {:>8} {:>8} {:>10} {:<9} {}\n", f.name, f.categorical ? "chi-square" : "ks",
                 format_number(f.psi), format_number(f.js), format_number(f.p_value), f.severity(),
                 f.drift ? "DRIFT" : "no");
    }
    if (result.live_truncation_rate)
      fmt::print("\n  truncated: {:.2f}% live, {:.2f}% in the reference\n", 100 * *result.live_truncation_rate,
                 100 * result.reference_truncation_rate);
    fmt::print("\n  rule: drift when psi > {} or js > {}{}; severity by psi: > 0.1 moderate, > 0.25 major\n",
               thresholds.psi, thresholds.js,
               thresholds.p_value ? fmt::format(" or p-value < {}", *thresholds.p_value) : std::string());
  }
  std::fflush(stdout);

  if (!options.fail_over.empty() && result.drift) {
    // One line per drifted feature; the last one is the error the front end prints.
    std::vector<std::string> lines;
    for (const auto& f : result.features)
      if (f.available && f.drift)
        lines.push_back(fmt::format("drift gate failed: {} (psi {}, js {}, p-value {}; --fail-over {})", f.name,
                                    format_number(f.psi), format_number(f.js), format_number(f.p_value),
                                    options.fail_over));
    for (size_t i = 0; i + 1 < lines.size(); ++i) fmt::print(stderr, "recmodel: error: {}\n", lines[i]);
    throw QualityGateError(lines.back());
  }
}

}  // namespace

CommandAction register_drift(CLI::App& command, const Console& console) {
  auto options = std::make_shared<DriftOptions>();
  command.footer(
      "\nFeatures: predicted_label (chi-square), score, tokens and unk_rate (Kolmogorov-Smirnov, exact p-value).\n"
      "PSI = sum((a - e) * ln(a / e)) over the bins' proportions, empty bins at 1e-4; numeric features use 30\n"
      "equal-width bins over the reference and live values together (numpy.histogram_bin_edges). Severity by PSI:\n"
      "> 0.1 moderate, > 0.25 major. Drift when psi > 0.2 or js > 0.1 (or the --fail-over thresholds).\n"
      "The reference is the profile train recorded in recmodel.json; older models: --reference DATA.\n"
      "Exit codes: 0 ok, 1 a --fail-over gate failed, 2 bad flags, 3 bad input, 4 model or file not found.");
  command.add_option("--model", options->model, "Model directory or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->type_name("REF")
      ->required();
  command.add_option("--input", options->input,
                     "serve --log-predictions file, recmodel predict output, or texts (lines, CSV, TSV, JSONL); - is stdin")
      ->type_name("FILE")
      ->required();
  command.add_option("--format", options->format, "What --input holds (auto: by its extension and first line)")
      ->check(one_of({"auto", "log", "predictions", "lines", "pairs", "csv", "tsv", "jsonl"}))
      ->capture_default_str();
  command.add_option("--text-column", options->text_column, "CSV/TSV/JSONL column with the text (texts input)")
      ->capture_default_str();
  command.add_option("--text-pair-column", options->pair_column, "CSV/TSV/JSONL column with the second text of a pair");
  command.add_option("--window", options->window, "Compare the last N records (at most 10000: the exact KS limit)")
      ->check(CLI::Range(size_t{1}, monitoring::kMaxProfileSamples).description(""))
      ->capture_default_str();
  command.add_option("--since", options->since,
                     "Only records at or after TIME (2026-12-04T10:00Z) or this long ago (30m, 6h, 7d); logs only")
      ->type_name("TIME");
  command.add_option("--served-name", options->served_name, "Records of this served model (a log of several)")
      ->type_name("NAME");
  command.add_flag("--all-versions", options->all_versions,
                   "Count records of every registry version, not only the one --model names");
  command.add_option("--reference", options->reference,
                     "Prepared dataset to profile the model on (for models without a profile)")
      ->type_name("DATA");
  command.add_option("--reference-split", options->reference_split, "Split of --reference to profile on")
      ->check(one_of({"train", "dev", "test"}))
      ->capture_default_str();
  command.add_option("--fail-over", options->fail_over, "Exit 1 when a feature drifts: psi=0.2,js=0.1[,p_value=0.01]")
      ->type_name("SPEC");
  command.add_option("--batch-size", options->batch_size, "Texts per forward pass (texts input, --reference)")
      ->check(CLI::Range(1, 65536).description(""))
      ->capture_default_str();
  command.add_option("--device", options->device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  return [options, &console] { run_drift(*options, console); };
}

}  // namespace recmodel
