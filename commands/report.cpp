#include "commands/report.h"

#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "commands/evaluate.h"
#include "common/error.h"
#include "common/files.h"
#include "data/prepared_dataset.h"
#include "metrics/evaluation.h"
#include "model/bert_config.h"
#include "model/model_open.h"
#include "model/predictor.h"
#include "model/split_evaluation.h"
#include "registry/registry.h"
#include "report/html_report.h"
#include "report/report_data.h"

namespace recmodel {

namespace {

namespace fs = std::filesystem;

struct ReportOptions : EvaluationSource {
  std::string model;  // REF
  std::string out;
  std::string drift;
};

// Checks the flags together, before any file is read.
void check_options(const ReportOptions& options, bool split_given) {
  const bool files = !options.predictions.empty() || !options.labels.empty();
  if (files && (options.predictions.empty() || options.labels.empty()))
    fail<UsageError>("--predictions and --labels go together: the model's outputs and the true labels, joined on id");
  if (files && !options.data.empty())
    fail<UsageError>("--data scores the model on a prepared split; with --predictions/--labels leave it out");
  if (split_given && options.data.empty())
    fail<UsageError>("--split names a split of --data DIR; give --data too");
  fs::path parent = fs::path(options.out).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail<NotFoundError>("--out {}: the directory {} does not exist", options.out, parent.string());
  if (fs::is_directory(options.out, ec))
    fail<UsageError>("--out {}: is a directory; name the HTML file to write", options.out);
}

// Finds the newest registry version registered from `dir`, if any.
std::optional<registry::VersionInfo> registered_version(registry::Registry& reg, const fs::path& dir) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(dir, ec);
  std::optional<registry::VersionInfo> found;
  for (const auto& model : reg.list_models())
    for (const auto& version : reg.list_versions(model.name))
      if (fs::path(version.source_path) == canonical && (!found || version.created_at >= found->created_at))
        found = version;
  return found;
}

void add_registry_facts(report::ReportInput& input, const ReportOptions& options, const Console& console,
                        const registry::ResolvedModel& resolved) {
  const std::string& flag = console.options().registry;
  std::optional<registry::VersionInfo> version = resolved.version;
  if (!version && flag.empty()) {
    input.registry_missing = fmt::format(
        "{} is a model directory: give it as models:/NAME/VERSION (or pass --registry PATH) to show its registry "
        "lineage and alias history.",
        options.model);
    return;
  }
  registry::Registry reg(registry::registry_path(flag), registry::Registry::Access::read, registry::default_options());
  if (!version) version = registered_version(reg, resolved.path);
  if (!version) {
    input.registry_missing = fmt::format("{} is not registered in {}.", options.model, reg.path().string());
    return;
  }
  report::RegistryFacts facts;
  facts.lineage = reg.lineage(version->ref());
  facts.history = reg.history(version->name);
  input.model.version = version->uri();
  input.registry = std::move(facts);
}

metrics::Evaluation evaluate_on_split(const ReportOptions& options, const Console& console,
                                      const registry::ResolvedModel& resolved) {
  const data::PreparedDataset dataset = data::PreparedDataset::open(options.data);
  data::DatasetSplit split = dataset.require_split(options.split);
  model::OpenedModel opened = model::open_for_inference(
      resolved.path, options.model, [&](const std::string& w) { console.warn("{}", w); }, &dataset);
  model::SplitEvaluationOptions eopts;
  eopts.batch_size = static_cast<size_t>(options.batch_size);
  eopts.device = model::parse_device(options.device);
  ProgressBar progress(console, "evaluate", split.size(), " examples");
  eopts.on_progress = [&](uint64_t scored) { progress.update(scored); };
  metrics::Evaluation result = model::evaluate_split(opened, split, dataset.task, eopts);
  progress.finish();
  return result;
}

void run_report(const ReportOptions& options, const Console& console, bool split_given) {
  check_options(options, split_given);
  const registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
  const fs::path dir = resolved.path;
  std::error_code ec;
  if (!fs::exists(dir / "config.json", ec))
    fail<NotFoundError>("{}: no config.json; REF is a model directory or models:/NAME/VERSION", dir.string());
  const model::BertConfig config = model::BertConfig::from_json_file(dir / "config.json");

  report::ReportInput input;
  input.recmodel_version = RECMODEL_VERSION;
  input.generated_at = registry::format_time(registry::now_ms());
  input.model.reference = options.model;
  input.model.directory = dir.string();
  input.model.task = config.problem_type == model::ProblemType::regression ? "regression" : "classification";
  input.model.labels = config.labels;
  input.model.lineage = model::read_lineage(dir);

  // The cheap files first, so a bad one is reported before the model runs.
  const fs::path log = dir / "train_log.jsonl";
  if (fs::exists(log, ec))
    input.training = report::read_train_log(log);
  else
    input.training_missing = fmt::format("{} has no train_log.jsonl (a model made by `recmodel init` or copied "
                                         "without its log), so there are no training curves.",
                                         dir.string());
  if (!options.drift.empty())
    input.drift = report::read_drift_file(options.drift);
  else
    input.drift_missing = "No drift result: give --drift FILE, the output of `recmodel drift --model REF --input "
                          "LOG --json`, to compare live traffic with the training data.";
  add_registry_facts(input, options, console, resolved);

  if (!options.data.empty()) {
    report::EvaluationFacts facts;
    facts.source = fmt::format("{} ({} split)", options.data, options.split);
    facts.evaluation = evaluate_on_split(options, console, resolved);
    input.evaluation = std::move(facts);
  } else if (!options.predictions.empty()) {
    report::EvaluationFacts facts;
    facts.source = fmt::format("{} against {}", options.predictions, options.labels);
    metrics::FileEvaluationOptions fopts;
    fopts.id_column = options.id_column;
    facts.evaluation = metrics::evaluate_files(options.predictions, options.labels, fopts);
    input.evaluation = std::move(facts);
  } else {
    input.evaluation_missing = "No evaluation: give --data DIR [--split test] to score the model on a prepared split, "
                               "or --predictions FILE --labels FILE.";
  }
  if (input.evaluation)
    for (const std::string& warning : input.evaluation->evaluation.warnings()) console.warn("{}", warning);

  const report::Report page = report::render_report(input);
  write_file_atomic(options.out, page.html);

  nlohmann::ordered_json missing = nlohmann::ordered_json::object();
  const std::pair<const char*, const std::string*> reasons[] = {{"training", &input.training_missing},
                                                                {"evaluation", &input.evaluation_missing},
                                                                {"drift", &input.drift_missing},
                                                                {"registry", &input.registry_missing}};
  for (const auto& [section, reason] : reasons)
    if (!reason->empty()) missing[section] = *reason;
  nlohmann::ordered_json document = {
      {"out", options.out}, {"sections", page.sections}, {"bytes", page.html.size()}, {"missing", missing}};
  // Printed here rather than through Console::result so the keys keep their order.
  const std::string text = console.json() ? document.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                                          : fmt::format("wrote {} ({} KB): {}", options.out,
                                                        (page.html.size() + 1023) / 1024, fmt::join(page.sections, ", "));
  fmt::print(stdout, "{}\n", text);
  std::fflush(stdout);
}

}  // namespace

CommandAction register_report(CLI::App& command, const Console& console) {
  auto options = std::make_shared<ReportOptions>();
  command.footer(
      "\nThe page is one HTML file with inline CSS and SVG: no scripts, no network; it opens from disk and\n"
      "prints. A model without train_log.jsonl, or without --data/--predictions or --drift, gets a note in\n"
      "that section instead. A registry reference (models:/NAME/VERSION or @ALIAS), or --registry PATH with a\n"
      "registered directory, adds the lineage and alias history. Exit codes: 0 written, 2 bad flags,\n"
      "3 malformed file (named with its line), 4 model, dataset or file not found.");
  command.add_option("REF", options->model, "Model directory or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->required();
  command.add_option("--out", options->out, "HTML file to write (replaced atomically)")
      ->type_name("FILE")
      ->required();
  CLI::Option* split =
      add_evaluation_source(command, *options, "Evaluate the model on a prepared split", "Split to score");
  command.add_option("--drift", options->drift, "Drift result to show (recmodel drift --json)")
      ->type_name("FILE")
      ->group("Live traffic");
  return [options, split, &console] { run_report(*options, console, split->count() > 0); };
}

}  // namespace recmodel
