#include "commands/evaluate.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "common/error.h"
#include "common/files.h"
#include "data/prepared_dataset.h"
#include "metrics/evaluation.h"
#include "metrics/gates.h"
#include "model/model_open.h"
#include "model/predictor.h"
#include "model/reference_profile.h"
#include "model/split_evaluation.h"
#include "registry/registry.h"

namespace recmodel {

namespace {

namespace fs = std::filesystem;
using metrics::Evaluation;

struct EvaluateOptions : EvaluationSource {
  std::string model;
  int top_k = 0;  // 0: 5, or one less than the class count when that is smaller
  std::vector<std::string> fail_under;
  std::vector<std::string> max;
  std::string report;
  bool record = false;
};

// Above this many classes the human output leaves the confusion matrix to --json/--report.
constexpr size_t kMatrixClasses = 20;

std::vector<metrics::Gate> parse_all_gates(const EvaluateOptions& options) {
  std::vector<metrics::Gate> gates;
  for (const auto& spec : options.fail_under)
    for (auto& g : metrics::parse_gates(spec, metrics::GateKind::at_least, "--fail-under")) gates.push_back(g);
  for (const auto& spec : options.max)
    for (auto& g : metrics::parse_gates(spec, metrics::GateKind::at_most, "--max")) gates.push_back(g);
  return gates;
}

// What was evaluated, for the output and the registry record.
struct Subject {
  std::string model;          // as given
  std::string model_dir;
  std::optional<registry::VersionInfo> version;
  std::string split;          // test, dev, train, or the labels file
  std::string data;           // dataset directory or labels file
  std::string dataset_sha256; // manifest.json or labels file
  nlohmann::json profile;     // --record on a split: its reference profile, for `recmodel drift`
};

Evaluation evaluate_model(const EvaluateOptions& options, const Console& console, Subject& subject) {
  registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
  subject.model_dir = resolved.path.string();
  subject.version = resolved.version;
  const data::PreparedDataset dataset = data::PreparedDataset::open(options.data);
  data::DatasetSplit split = dataset.require_split(options.split);
  model::OpenedModel opened = model::open_for_inference(
      resolved.path, options.model, [&](const std::string& w) { console.warn("{}", w); }, &dataset);
  subject.split = options.split;
  subject.data = options.data;
  subject.dataset_sha256 = dataset.manifest_sha256;

  model::SplitEvaluationOptions eopts;
  eopts.batch_size = static_cast<size_t>(options.batch_size);
  eopts.device = model::parse_device(options.device);
  eopts.top_k = options.top_k;
  ProgressBar progress(console, "evaluate", split.size(), " examples");
  eopts.on_progress = [&](uint64_t scored) { progress.update(scored); };
  Evaluation result = model::evaluate_split(opened, split, dataset.task, eopts);
  progress.finish();
  if (options.record)  // a registered directory never changes: the registry keeps the profile
    subject.profile = model::profile_split(opened.loaded.model, opened.tokenizer.unk_id(), dataset, options.split,
                                           eopts.batch_size, eopts.device)
                          .to_json();
  return result;
}

std::string number(double v) { return fmt::format("{:.4f}", v); }

void print_human(std::FILE* out, const Evaluation& e, const Subject& subject) {
  std::string what = subject.model.empty() ? subject.data : fmt::format("{} on {} ({})", subject.model, subject.data, subject.split);
  if (e.task == data::Task::regression) {
    const auto& r = e.regression;
    fmt::print(out, "{}: {} examples, regression\n\n", what, r.examples);
    fmt::print(out, "  mae   {}\n  rmse  {}\n  r2    {}\n", number(r.mae), number(r.rmse), r.r2 ? number(*r.r2) : "undefined");
    return;
  }
  const auto& m = e.classification;
  auto name = [&](int c) { return e.labels[c]; };
  size_t width = 12;
  for (int c : m.labels) width = std::max(width, name(c).size());
  fmt::print(out, "{}: {} examples, {} classes\n\n", what, m.examples, m.num_classes);
  fmt::print(out, "  {:<{}}  {:>9}  {:>9}  {:>9}  {:>8}\n", "class", width, "precision", "recall", "f1", "support");
  for (const auto& s : m.per_class)
    fmt::print(out, "  {:<{}}  {:>9}  {:>9}  {:>9}  {:>8}\n", name(s.label), width, number(s.precision),
               number(s.recall), number(s.f1), s.support);
  fmt::print(out, "\n");
  const std::pair<const char*, metrics::Averages> averages[] = {
      {"macro avg", m.macro}, {"micro avg", m.micro}, {"weighted avg", m.weighted}};
  for (const auto& [label, avg] : averages)
    fmt::print(out, "  {:<{}}  {:>9}  {:>9}  {:>9}  {:>8}\n", label, width, number(avg.precision), number(avg.recall),
               number(avg.f1), m.examples);
  fmt::print(out, "\n  accuracy        {}\n", number(m.accuracy));
  if (m.top_k_accuracy) fmt::print(out, "  top-{} accuracy  {}\n", m.top_k, number(*m.top_k_accuracy));
  if (m.num_classes == 2 && m.has_probabilities) {
    fmt::print(out, "  roc_auc         {}\n", m.roc_auc ? number(*m.roc_auc) : "undefined");
    fmt::print(out, "  pr_auc          {}\n", number(*m.pr_auc));
  }
  if (m.mae) fmt::print(out, "  mae (ordinal)   {}\n", number(*m.mae));
  if (m.labels.size() > kMatrixClasses) {
    fmt::print(out, "\n  confusion matrix: {} classes, see --json or --report\n", m.labels.size());
    return;
  }
  size_t cell = 5;
  for (int c : m.labels) cell = std::max(cell, std::min<size_t>(name(c).size(), 12));
  for (const auto& row : m.confusion)
    for (int64_t v : row) cell = std::max(cell, fmt::format("{}", v).size());
  fmt::print(out, "\n  confusion matrix (rows: truth, columns: predicted)\n  {:<{}}", "", width);
  for (int c : m.labels) fmt::print(out, "  {:>{}}", name(c).substr(0, 12), cell);
  fmt::print(out, "\n");
  for (size_t r = 0; r < m.labels.size(); ++r) {
    fmt::print(out, "  {:<{}}", name(m.labels[r]), width);
    for (int64_t v : m.confusion[r]) fmt::print(out, "  {:>{}}", v, cell);
    fmt::print(out, "\n");
  }
}

void run_evaluate(const EvaluateOptions& options, const Console& console) {
  // Everything that can be wrong with the flags is found before any work.
  const bool files = !options.predictions.empty() || !options.labels.empty();
  if (files) {
    if (options.predictions.empty() || options.labels.empty())
      fail<UsageError>("--predictions and --labels go together: the model's outputs and the true labels, joined on id");
    if (!options.data.empty())
      fail<UsageError>("--data evaluates a model on a prepared split; with --predictions/--labels leave it out");
    if (!options.model.empty() && !options.record)
      fail<UsageError>("--model with --predictions only names the registry version for --record");
  } else if (options.model.empty() || options.data.empty()) {
    fail<UsageError>("give --model REF --data DIR [--split test], or --predictions FILE --labels FILE");
  }
  std::vector<metrics::Gate> gates = parse_all_gates(options);
  std::optional<registry::ModelRef> record_ref;
  if (options.record) {
    if (options.model.empty() || !registry::is_registry_uri(options.model))
      fail<UsageError>("--record attaches the metrics to a registry version: give --model models:/NAME/VERSION "
                       "(or @ALIAS); '{}' is not a registry reference",
                       options.model);
    record_ref = registry::parse_ref(options.model, false);
  }
  if (!options.report.empty()) {
    fs::path parent = fs::path(options.report).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec))
      fail<NotFoundError>("--report {}: the directory {} does not exist", options.report, parent.string());
    if (fs::is_directory(options.report, ec))
      fail<UsageError>("--report {}: is a directory; name the JSON file to write", options.report);
  }

  Subject subject;
  subject.model = options.model;
  Evaluation result;
  if (files) {
    metrics::FileEvaluationOptions fopts;
    fopts.top_k = options.top_k;
    fopts.id_column = options.id_column;
    result = metrics::evaluate_files(options.predictions, options.labels, fopts);
    subject.split = fs::path(options.labels).filename().string();
    subject.data = options.predictions;
    subject.dataset_sha256 = sha256_file(options.labels);
    if (!options.model.empty()) {
      registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
      subject.version = resolved.version;
    }
    subject.model.clear();
  } else {
    result = evaluate_model(options, console, subject);
  }
  // A gate on a metric this task does not have is a usage error, reported before the warnings.
  auto lookup = [&](std::string_view name) { return result.get(name); };
  std::vector<metrics::GateFailure> failed = metrics::check_gates(gates, lookup);
  for (const std::string& warning : result.warnings()) console.warn("{}", warning);

  nlohmann::ordered_json document;
  if (!options.model.empty()) document["model"] = options.model;
  if (subject.version) document["version"] = subject.version->uri();
  if (files) {
    document["predictions"] = options.predictions;
    document["labels"] = options.labels;
  } else {
    document["data"] = options.data;
    document["split"] = options.split;
  }
  const nlohmann::ordered_json metrics_json = result.to_json();
  for (auto& [key, value] : metrics_json.items()) document[key] = value;
  if (!gates.empty()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& gate : gates) {
      metrics::MetricValue v = result.get(gate.metric);
      bool passed = std::none_of(failed.begin(), failed.end(),
                                 [&](const metrics::GateFailure& f) { return f.gate.metric == gate.metric && f.gate.kind == gate.kind; });
      list.push_back({{"metric", gate.metric},
                      {"kind", gate.kind == metrics::GateKind::at_least ? "fail_under" : "max"},
                      {"threshold", gate.threshold},
                      {"value", v.value ? nlohmann::ordered_json(*v.value) : nlohmann::ordered_json()},
                      {"passed", passed}});
    }
    document["gates"] = list;
    document["passed"] = failed.empty();
  }

  if (!options.report.empty()) write_file_atomic(options.report, document.dump(2) + "\n");
  if (record_ref) {
    registry::Registry reg(registry::registry_path(console.options().registry), registry::Registry::Access::write,
                           registry::default_options());
    registry::Evaluation evaluation;
    evaluation.split = subject.split;
    evaluation.dataset_sha256 = subject.dataset_sha256;
    evaluation.metrics = nlohmann::json::parse(metrics_json.dump());
    evaluation.profile = subject.profile;
    // The version resolved at the start, so an alias moved meanwhile does not get these metrics.
    registry::ModelRef exact = subject.version ? registry::parse_ref(subject.version->uri(), false) : *record_ref;
    reg.record_evaluation(exact, evaluation);
    console.info("recorded the metrics on {}", subject.version ? subject.version->uri() : options.model);
  }

  if (console.json()) {
    // Printed here rather than through Console::result so the keys keep their order (labels in
    // label order, metrics before per_class).
    std::string text = document.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  } else {
    print_human(stdout, result, subject);
    std::fflush(stdout);
  }

  if (!failed.empty()) {
    // One line per failed gate; the last one is the error the front end prints.
    for (size_t i = 0; i + 1 < failed.size(); ++i)
      fmt::print(stderr, "recmodel: error: quality gate failed: {}\n", failed[i].describe());
    throw QualityGateError("quality gate failed: " + failed.back().describe());
  }
  if (!gates.empty()) console.info("quality gates passed ({} of {})", gates.size(), gates.size());
}

}  // namespace

CLI::Option* add_evaluation_source(CLI::App& command, EvaluationSource& source, const char* model_group,
                                   const char* split_help) {
  command.add_option("--data", source.data, "Prepared dataset directory (recmodel preprocess)")
      ->type_name("DIR")
      ->group(model_group);
  CLI::Option* split = command.add_option("--split", source.split, split_help)
                           ->check(one_of({"train", "dev", "test"}))
                           ->capture_default_str()
                           ->group(model_group);
  command.add_option("--batch-size", source.batch_size, "Examples per forward pass")
      ->check(CLI::Range(1, 1 << 16).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(model_group);
  command.add_option("--device", source.device, "auto (CUDA when present), cpu, cuda or cuda:N")
      ->capture_default_str()
      ->group(model_group);
  const char* files_group = "Or a predictions file against a labels file";
  command.add_option("--predictions", source.predictions,
                     "JSONL/CSV/TSV with id, label (or value), optional probs {\"label\": p}")
      ->type_name("FILE")
      ->group(files_group);
  command.add_option("--labels", source.labels, "JSONL/CSV/TSV with id, label (or value)")
      ->type_name("FILE")
      ->group(files_group);
  command.add_option("--id-column", source.id_column, "Column joining the two files")
      ->capture_default_str()
      ->group(files_group);
  return split;
}

CommandAction register_evaluate(CLI::App& command, const Console& console) {
  auto options = std::make_shared<EvaluateOptions>();
  command.footer(
      "\nMetrics match scikit-learn (zero division gives 0 with a warning naming the class). Exit codes:\n"
      "0 ok, 1 a quality gate failed (one line per gate), 2 bad flags or unknown metric, 3 bad input,\n"
      "4 model, dataset or file not found. Metric names: accuracy, precision_macro, recall_macro, f1_macro,\n"
      "f1_micro, f1_weighted, precision_micro, recall_micro, precision_weighted, recall_weighted,\n"
      "top_k_accuracy, roc_auc, pr_auc, mae, rmse, r2.");
  const char* model_group = "A model on a prepared split";
  command.add_option("--model", options->model, "Model directory or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->type_name("REF")
      ->group(model_group);
  add_evaluation_source(command, *options, model_group, "Split to evaluate");
  const char* gates_group = "Metrics, quality gates and reports";
  command.add_option("--top-k", options->top_k,
                     "k of top_k_accuracy; 0 = 5, or one less than the number of classes when fewer")
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("K")
      ->group(gates_group);
  command.add_option("--fail-under", options->fail_under,
                     "Exit 1 unless each metric reaches its threshold, e.g. accuracy=0.9,f1_macro=0.85")
      ->type_name("LIST")
      ->allow_extra_args(false)
      ->group(gates_group);
  command.add_option("--max", options->max, "Exit 1 when a metric exceeds its threshold, e.g. mae=0.4")
      ->type_name("LIST")
      ->allow_extra_args(false)
      ->group(gates_group);
  command.add_option("--report", options->report, "Also write the JSON result to FILE")
      ->type_name("FILE")
      ->group(gates_group);
  command.add_flag("--record", options->record, "Attach the metrics to the model's registry version (--model models:/...)")
      ->group(gates_group);
  return [options, &console] { run_evaluate(*options, console); };
}

}  // namespace recmodel
