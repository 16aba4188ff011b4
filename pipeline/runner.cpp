#include "pipeline/runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "common/subprocess.h"
#include "common/text.h"
#include "metrics/names.h"
#include "registry/reference.h"
#include "registry/registry.h"
#include "storage/manifest.h"
#include "storage/remote_config.h"

namespace recmodel::pipeline {

namespace {

constexpr int kStateFormatVersion = 1;
constexpr const char* kStateFormat = "recmodel-pipeline-stage";

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The content of a directory as one digest: every file's relative path, size and SHA-256.
std::string directory_sha256(const fs::path& dir) {
  const storage::Manifest manifest = storage::build_manifest(dir, 2);
  std::string lines;
  for (const auto& file : manifest.files) lines += fmt::format("{}\t{}\t{}\n", file.path, file.size, file.sha256);
  return sha256_hex(lines);
}

// The first place where two JSON documents differ, as a dotted path ("settings.--lr").
std::string first_difference(const json& before, const json& now, const std::string& prefix = "") {
  if (before.is_object() && now.is_object()) {
    std::set<std::string> keys;
    for (auto it = before.begin(); it != before.end(); ++it) keys.insert(it.key());
    for (auto it = now.begin(); it != now.end(); ++it) keys.insert(it.key());
    for (const std::string& key : keys) {
      const std::string path = prefix.empty() ? key : prefix + "." + key;
      if (!before.contains(key) || !now.contains(key)) return path;
      std::string inner = first_difference(before[key], now[key], path);
      if (!inner.empty()) return inner;
    }
    return "";
  }
  return before == now ? "" : (prefix.empty() ? "inputs" : prefix);
}

std::string utc_now() { return registry::format_time(registry::now_ms()); }

// A run's id: its start time and 4 random hex digits, sortable and unique enough per workspace.
std::string new_run_id() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device random;
  return fmt::format("{}-{:04x}", stamp, random() & 0xffff);
}

// The last "recmodel: error: ..." line of a command's log, without the prefix.
std::string error_line(const fs::path& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind("recmodel: error: ", 0) == 0) last = line.substr(17);
  return last;
}

// Copies `from` into `to` (a new directory), hard-linking files where the filesystem allows: the
// release directory a registry version points at must outlive the stage outputs it came from.
void link_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& entry : fs::recursive_directory_iterator(from)) {
    const fs::path target = to / fs::relative(entry.path(), from);
    if (entry.is_directory()) {
      fs::create_directories(target);
    } else if (entry.is_regular_file()) {
      std::error_code ec;
      fs::create_hard_link(entry.path(), target, ec);
      if (ec) fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing);
    }
  }
}

// One stage's saved state: its key, the inputs that made it, and what it produced.
struct StageState {
  std::string key;
  json inputs;
  json outputs;
};

class Pipeline {
 public:
  Pipeline(const Config& config, const RunOptions& options, bool execute)
      : config_(config), options_(options), execute_(execute), stages_dir_(config.workspace / "stages") {}

  RunResult run();

 private:
  // --- the stages
  void preprocess();
  void train();
  void evaluate();
  void quantize();
  void export_onnx();
  void register_version();
  void promote();
  void publish();

  // --- helpers
  fs::path stage_dir(const std::string& stage) const { return stages_dir_ / stage; }
  std::optional<StageState> read_state(const std::string& stage) const;
  void write_state(const std::string& stage, const StageState& state) const;
  void forget_state(const std::string& stage) const;
  // Decides whether `report` (its key inputs given) runs; fills status and reason. True: run it.
  bool decide(StageReport& report, const json& inputs, const std::function<std::string()>& outputs_missing = {});
  // Runs one recmodel command for the current stage; returns its exit code (0 = ok).
  int command(StageReport& report, const std::vector<std::string>& args);
  // Runs it and fails the stage with the command's own error line (after `context`) when it fails.
  void run_command(StageReport& report, const std::vector<std::string>& args, const std::string& context = "");
  // False (and the report says why) when an optional stage is off or a stage it needs has not run.
  bool ready(StageReport& report, bool enabled, const char* table, const std::vector<std::string>& needs);
  // Forgets the stage's record and removes `output`, before the stage runs again.
  void begin(StageReport& report, const fs::path& output);
  // Records a stage that ran: its key, the inputs that made it and what it produced.
  void finish(StageReport& report, const json& inputs, const json& outputs);
  [[noreturn]] void stage_failed(StageReport& report, int code, const std::string& message);
  StageReport& report(const std::string& stage);
  json base_identity();
  std::string output_of(const std::string& stage, const char* field);
  std::string registry_flag() const { return options_.registry_flag; }

  const Config& config_;
  const RunOptions& options_;
  const bool execute_;
  const fs::path stages_dir_;
  fs::path logs_dir_;
  std::vector<StageReport> reports_;
  std::map<std::string, json> outputs_;  // per stage, once known (ran or cached)
  bool forcing_ = false;
  std::optional<json> base_identity_;
  int exit_code_ = 0;
  std::string message_;
  json run_details_ = json::object();
};

// A stage's failure: stops the run with its exit code.
struct StageFailure {
  int code;
  std::string message;
};

std::optional<StageState> Pipeline::read_state(const std::string& stage) const {
  const fs::path file = stage_dir(stage) / "stage.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  json doc;
  try {
    doc = json::parse(read_file(file));
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged record only costs a re-run
  }
  if (!doc.is_object() || doc.value("format", "") != kStateFormat) return std::nullopt;
  if (doc.value("format_version", 0) != kStateFormatVersion) return std::nullopt;
  StageState state;
  state.key = doc.value("key", "");
  state.inputs = doc.value("inputs", json::object());
  state.outputs = doc.value("outputs", json::object());
  return state;
}

void Pipeline::write_state(const std::string& stage, const StageState& state) const {
  const json doc = {{"format", kStateFormat}, {"format_version", kStateFormatVersion}, {"stage", stage},
                    {"key", state.key},       {"inputs", state.inputs},                {"outputs", state.outputs},
                    {"finished", utc_now()}};
  fs::create_directories(stage_dir(stage));
  write_file_atomic(stage_dir(stage) / "stage.json", doc.dump(2) + "\n");
}

void Pipeline::forget_state(const std::string& stage) const {
  std::error_code ec;
  fs::remove(stage_dir(stage) / "stage.json", ec);
}

StageReport& Pipeline::report(const std::string& stage) {
  for (StageReport& r : reports_)
    if (r.name == stage) return r;
  throw Error(ExitCode::internal, "no stage " + stage);
}

bool Pipeline::decide(StageReport& report, const json& inputs, const std::function<std::string()>& outputs_missing) {
  report.key = sha256_hex(inputs.dump());
  if (!options_.force_from.empty() && options_.force_from == report.name) forcing_ = true;
  const std::optional<StageState> state = read_state(report.name);
  std::string reason;
  if (forcing_) {
    reason = fmt::format("--force {}", options_.force_from);
  } else if (!state) {
    reason = "no finished run of it";
  } else if (state->key != report.key) {
    const std::string changed = first_difference(state->inputs, inputs);
    reason = changed.empty() ? "its inputs changed" : fmt::format("changed: {}", changed);
  } else if (outputs_missing) {
    reason = outputs_missing();
  }
  if (reason.empty() && state) {
    report.status = StageStatus::cached;
    report.reason = "unchanged";
    report.details = state->outputs;
    outputs_[report.name] = state->outputs;
    return false;
  }
  report.reason = reason;
  return true;
}

int Pipeline::command(StageReport& report, const std::vector<std::string>& args) {
  ChildProcess child;
  child.argv.push_back(options_.recmodel.string());
  child.argv.insert(child.argv.end(), options_.global_args.begin(), options_.global_args.end());
  child.argv.insert(child.argv.end(), args.begin(), args.end());
  child.stdout_file = child.stderr_file = logs_dir_ / (report.name + ".log");
  {
    std::ofstream log(child.stdout_file, std::ios::app);
    log << "$";
    // A registry URL may carry its password; the log never does.
    for (const auto& arg : child.argv) log << ' ' << registry::registry_display_name(arg);
    log << "\n";
  }
  return run_child(child);
}

void Pipeline::stage_failed(StageReport& report, int code, const std::string& message) {
  report.status = StageStatus::failed;
  report.exit_code = code;
  report.reason = message;
  throw StageFailure{code, fmt::format("stage {}: {}", report.name, message)};
}

void Pipeline::run_command(StageReport& report, const std::vector<std::string>& args, const std::string& context) {
  if (int code = command(report, args))
    stage_failed(report, code, context + error_line(logs_dir_ / (report.name + ".log")));
}

bool Pipeline::ready(StageReport& report, bool enabled, const char* table, const std::vector<std::string>& needs) {
  if (!enabled) {
    report.status = StageStatus::skipped;
    report.reason = fmt::format("no [{}] in the pipeline file", table);
    return false;
  }
  for (const std::string& stage : needs) {
    if (!outputs_.count(stage)) {
      report.reason = "after " + stage;
      return false;
    }
  }
  return true;
}

void Pipeline::begin(StageReport& report, const fs::path& output) {
  forget_state(report.name);
  std::error_code ec;
  if (!output.empty()) fs::remove_all(output, ec);
  fs::create_directories(stage_dir(report.name));
}

void Pipeline::finish(StageReport& report, const json& inputs, const json& outputs) {
  write_state(report.name, {report.key, inputs, outputs});
  outputs_[report.name] = outputs;
  report.details = outputs;
  report.status = StageStatus::ran;
}

// Returns the check that a stage's output is still where it was made.
std::function<std::string()> output_present(const fs::path& file) {
  return [file] {
    std::error_code ec;
    return fs::exists(file, ec) ? std::string() : "its output is gone: " + file.string();
  };
}

// What the trained model starts from, for the keys: a registry version (the alias resolved now),
// or a directory's content, or a preset drawn from a seed over a vocabulary.
json Pipeline::base_identity() {
  if (base_identity_) return *base_identity_;
  json id;
  if (!config_.preset.empty()) {
    id = {{"preset", config_.preset}, {"vocab_sha256", sha256_file(config_.vocab)},
          {"seed", config_.init_seed ? json(*config_.init_seed) : json(nullptr)}};
  } else if (registry::is_registry_uri(config_.base)) {
    const registry::ResolvedModel resolved = registry::resolve_model(config_.base, registry_flag());
    id = {{"ref", config_.base}};
    if (resolved.version) {
      id["version"] = resolved.version->uri();
      id["manifest_sha256"] = resolved.version->manifest_sha256;
    }
  } else {
    std::error_code ec;
    if (!fs::is_directory(config_.base, ec))
      fail<NotFoundError>("{}: model.base: no such model directory: {}", config_.file.string(), config_.base);
    id = {{"directory_sha256", directory_sha256(config_.base)}};
  }
  base_identity_ = id;
  return id;
}

std::string Pipeline::output_of(const std::string& stage, const char* field) {
  auto it = outputs_.find(stage);
  if (it == outputs_.end() || !it->second.contains(field)) return "";
  return it->second[field].get<std::string>();
}

// --- preprocess --------------------------------------------------------------------------------

void Pipeline::preprocess() {
  StageReport& r = report("preprocess");
  static const std::set<std::string> path_options = {"--input", "--train", "--dev", "--test"};
  // Data from a remote: the snapshot NAME/VERSION, pulled once (versions on a remote are immutable).
  fs::path data_root;
  json snapshot = nullptr;
  if (!config_.from_remote.empty()) {
    data_root = config_.workspace / "snapshots" / config_.snapshot;
    snapshot = {{"remote", config_.from_remote}, {"snapshot", config_.snapshot}};
    std::error_code ec;
    if (!fs::is_directory(data_root, ec)) {
      if (!execute_) {
        r.reason = fmt::format("the data snapshot {} is not pulled from '{}' yet", config_.snapshot, config_.from_remote);
        return;
      }
      fs::create_directories(data_root.parent_path());
      std::vector<std::string> args = {"pull", config_.snapshot, "--from", config_.from_remote, "--out", data_root.string()};
      if (!options_.config_flag.empty()) args.insert(args.end(), {"--config", options_.config_flag});
      run_command(r, args, "pulling the data snapshot: ");
    }
  }
  const auto located = [&](const std::string& path) { return data_root.empty() ? fs::path(path) : data_root / path; };
  json settings = json::object();
  json files = json::object();
  for (const InputFile& input : config_.data_files) {
    const fs::path path = located(input.path.string());
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      fail<NotFoundError>("{}: {}: no such file: {}", config_.file.string(), input.key, path.string());
    files[input.key] = {{"path", data_root.empty() ? fs::relative(path, config_.base_dir).generic_string()
                                                   : input.path.generic_string()},
                        {"sha256", sha256_file(path)}};
  }
  CommandOptions options = config_.preprocess;
  for (CommandOption& option : options) {
    if (!path_options.count(option.name)) settings[option.name] = option.values;
    else
      for (std::string& value : option.values) value = located(value).string();
  }
  json tokenizer = config_.preset.empty() ? base_identity() : json{{"vocab_sha256", sha256_file(config_.vocab)}};
  const json inputs = {{"settings", settings}, {"files", files}, {"tokenizer", tokenizer}, {"snapshot", snapshot}};
  const fs::path data = stage_dir("preprocess") / "data";
  if (!decide(r, inputs, output_present(data / "manifest.json")) || !execute_) return;
  begin(r, data);
  std::vector<std::string> args = {"preprocess", "--out", data.string()};
  append_options(args, options);
  if (config_.preset.empty()) {
    args.insert(args.end(), {"--model", config_.base});
  } else {
    args.insert(args.end(), {"--vocab", config_.vocab.string()});
  }
  run_command(r, args);
  finish(r, inputs, {{"data", data.string()}, {"sha256", directory_sha256(data)}});
}

// --- train ---------------------------------------------------------------------------------------

void Pipeline::train() {
  StageReport& r = report("train");
  if (!ready(r, true, "train", {"preprocess"})) return;
  const std::string dataset = output_of("preprocess", "sha256");
  json settings = json::object();
  // --stop-after only interrupts (exit 130, a checkpoint): the run that continues it is the same run.
  for (const CommandOption& option : config_.train)
    if (option.name != "--stop-after") settings[option.name] = option.values;
  const json inputs = {{"settings", settings}, {"dataset", dataset}, {"base", base_identity()}};
  const fs::path model = stage_dir("train") / "model";
  const fs::path work = stage_dir("train") / "work";
  if (!decide(r, inputs, output_present(model / "config.json"))) return;
  // An interrupted train stage with the same key continues from its checkpoint.
  std::error_code ec;
  const fs::path work_key = stage_dir("train") / "work.key";
  const bool resumable = !forcing_ && fs::is_regular_file(work / "checkpoint" / "state.json", ec) &&
                         fs::is_regular_file(work_key, ec) && read_file(work_key) == r.key;
  if (resumable) r.reason += "; resuming its checkpoint";
  if (!execute_) return;
  begin(r, model);
  if (!resumable) fs::remove_all(work, ec);
  write_file_atomic(work_key, r.key);
  std::string base = config_.base;
  const fs::path data = output_of("preprocess", "data");
  if (!config_.preset.empty()) {
    const fs::path initial = stage_dir("train") / "base";
    if (!resumable) {
      fs::remove_all(initial, ec);
      // The prepared dataset brings the tokenizer (from model.vocab) and the labels.
      std::vector<std::string> args = {"init", "--preset", config_.preset, "--data", data.string(), "--out",
                                       initial.string()};
      if (config_.init_seed) args.insert(args.end(), {"--seed", std::to_string(*config_.init_seed)});
      run_command(r, args);
    }
    base = initial.string();
  }
  std::vector<std::string> args = {"train", "--model", base, "--data", data.string(), "--out", model.string(),
                                   "--work-dir", work.string()};
  if (resumable) args.push_back("--resume");
  append_options(args, config_.train);
  if (int code = command(r, args)) {
    std::string message = error_line(logs_dir_ / "train.log");
    if (code == 130) message += "; run the pipeline again to continue from the checkpoint";
    stage_failed(r, code, message);
  }
  fs::remove(work_key, ec);
  const json out = {{"model", model.string()}, {"sha256", directory_sha256(model)}};
  finish(r, inputs, out);
}

// --- evaluate (the gates) ------------------------------------------------------------------------------

std::string gate_list(const std::vector<Gate>& gates) {
  std::string out;
  for (const Gate& gate : gates) out += fmt::format("{}{}={}", out.empty() ? "" : ",", gate.metric, gate.threshold);
  return out;
}

// The scalar metrics of an evaluate --report (the top-level numbers).
json scalar_metrics(const json& report) {
  json out = json::object();
  for (const std::string& name : metrics::metric_names())
    if (report.contains(name) && report[name].is_number()) out[name] = report[name];
  return out;
}

void Pipeline::evaluate() {
  StageReport& r = report("evaluate");
  if (!ready(r, true, "evaluate", {"train"})) return;
  const json inputs = {{"model", output_of("train", "sha256")}, {"dataset", output_of("preprocess", "sha256")},
                       {"fail_under", gate_list(config_.fail_under)}, {"max", gate_list(config_.max)}};
  const fs::path report_file = stage_dir("evaluate") / "report.json";
  if (!decide(r, inputs) || !execute_) return;
  begin(r, report_file);
  std::error_code ec;
  std::vector<std::string> args = {"evaluate", "--model", output_of("train", "model"), "--data",
                                   output_of("preprocess", "data"), "--split", "test", "--report", report_file.string()};
  if (!config_.fail_under.empty()) args.insert(args.end(), {"--fail-under", gate_list(config_.fail_under)});
  if (!config_.max.empty()) args.insert(args.end(), {"--max", gate_list(config_.max)});
  const int code = command(r, args);
  json doc = json::object();
  if (fs::is_regular_file(report_file, ec)) doc = json::parse(read_file(report_file));
  r.details = {{"metrics", scalar_metrics(doc)}};
  if (doc.contains("gates")) r.details["gates"] = doc["gates"];
  if (code) stage_failed(r, code, error_line(logs_dir_ / "evaluate.log"));
  json out = r.details;
  out["report"] = report_file.string();
  finish(r, inputs, out);
}

// --- quantize --------------------------------------------------------------------------------------------

void Pipeline::quantize() {
  StageReport& r = report("quantize");
  if (!ready(r, config_.quantize, "quantize", {"train", "evaluate"})) return;
  const json inputs = {{"model", output_of("train", "sha256")}, {"dataset", output_of("preprocess", "sha256")},
                       {"max_drop", gate_list(config_.max_drop)},
                       {"per_tensor", config_.quantize_per_tensor}};
  const fs::path out_dir = stage_dir("quantize") / "model";
  if (!decide(r, inputs, output_present(out_dir / "config.json")) || !execute_) return;
  begin(r, out_dir);
  std::vector<std::string> args = {"quantize", "--model", output_of("train", "model"), "--data",
                                   output_of("preprocess", "data"), "--split", "test", "--out", out_dir.string()};
  if (!config_.max_drop.empty()) args.insert(args.end(), {"--max-drop", gate_list(config_.max_drop)});
  if (config_.quantize_per_tensor) args.push_back("--per-tensor");
  run_command(r, args);
  // The int8 model is what gets registered: its own test metrics go with it (and into promotion).
  const fs::path report_file = stage_dir("quantize") / "report.json";
  run_command(r, {"evaluate", "--model", out_dir.string(), "--data", output_of("preprocess", "data"), "--split", "test",
                  "--report", report_file.string()});
  finish(r, inputs,
         {{"model", out_dir.string()},
          {"sha256", directory_sha256(out_dir)},
          {"metrics", scalar_metrics(json::parse(read_file(report_file)))}});
}

// --- export ------------------------------------------------------------------------------------------------

void Pipeline::export_onnx() {
  StageReport& r = report("export");
  if (!ready(r, config_.export_onnx, "export", {"train", "evaluate"})) return;
  const json inputs = {{"model", output_of("train", "sha256")}, {"int8", config_.export_int8},
                       {"opset", config_.opset ? json(*config_.opset) : json(nullptr)}, {"verify", config_.export_verify}};
  // The layout ONNX Runtime, Optimum and transformers.js load: tokenizer files and onnx/model.onnx.
  const fs::path out_dir = stage_dir("export") / "model";
  if (!decide(r, inputs, output_present(out_dir / "onnx" / "model.onnx")) || !execute_) return;
  begin(r, out_dir);
  std::vector<std::string> args = {"export", "--model", output_of("train", "model"), "--out", out_dir.string()};
  if (config_.export_int8) args.insert(args.end(), {"--quantize", "int8"});
  if (config_.opset) args.insert(args.end(), {"--opset", std::to_string(*config_.opset)});
  if (config_.export_verify) args.push_back("--verify");
  run_command(r, args);
  finish(r, inputs, {{"onnx", out_dir.string()}, {"sha256", directory_sha256(out_dir)}});
}

// --- register --------------------------------------------------------------------------------------------

// The champion: the version the promotion alias points at now, if any.
std::optional<registry::VersionInfo> champion_of(const Config& config, const std::string& registry_flag) {
  if (!config.promotion) return std::nullopt;
  const fs::path path = registry::registry_path(registry_flag);
  if (!registry::registry_exists(path)) return std::nullopt;
  registry::Registry reg(path, registry::Registry::Access::read, registry::default_options());
  registry::ModelRef ref;
  ref.kind = registry::ModelRef::Kind::alias;
  ref.name = config.name;
  ref.alias = config.alias;
  try {
    return reg.version(ref);
  } catch (const NotFoundError&) {
    return std::nullopt;
  }
}

void Pipeline::register_version() {
  StageReport& r = report("register");
  const bool quantized = config_.quantize;
  const std::string model_stage = quantized ? "quantize" : "train";
  const std::string model = output_of(model_stage, "sha256");
  if (model.empty() || !outputs_.count("evaluate") || (config_.export_onnx && !outputs_.count("export"))) {
    r.reason = config_.export_onnx ? "after export" : fmt::format("after {}", quantized ? "quantize" : "evaluate");
    return;
  }
  json tags = config_.tags;
  if (!config_.classification.empty()) tags["classification"] = config_.classification;
  const json inputs = {{"model", model},
                       {"onnx", config_.export_onnx ? json(output_of("export", "sha256")) : json(nullptr)},
                       {"name", config_.name},
                       {"tags", tags},
                       {"description", config_.description},
                       {"metrics", outputs_[model_stage].value("metrics", outputs_["evaluate"].value("metrics", json::object()))}};
  const bool run = decide(r, inputs, [&]() -> std::string {
    // The version must still be in the registry, with the same files.
    const std::optional<StageState> state = read_state("register");
    const std::string uri = state ? state->outputs.value("version", "") : "";
    try {
      registry::resolve_model(uri, registry_flag());
      return "";
    } catch (const Error&) {
      return fmt::format("{} is no longer in the registry as it was registered", uri.empty() ? "the version" : uri);
    }
  });
  if (!run || !execute_) return;
  begin(r, {});
  // The directory a version points at is never touched again: named by its key, kept across runs.
  const fs::path release = config_.workspace / "releases" / r.key.substr(0, 16);
  std::error_code ec;
  if (!fs::is_directory(release, ec)) {
    const fs::path staging = config_.workspace / "releases" / (".tmp-" + r.key.substr(0, 16));
    fs::remove_all(staging, ec);
    link_tree(output_of(model_stage, "model"), staging);
    if (config_.export_onnx) link_tree(fs::path(output_of("export", "onnx")) / "onnx", staging / "onnx");
    fs::rename(staging, release);
  }
  registry::RegisterRequest extras;
  extras.description = config_.description;
  for (auto it = tags.begin(); it != tags.end(); ++it) extras.tags[it.key()] = it.value().get<std::string>();
  extras.metrics = inputs["metrics"];
  const std::optional<registry::VersionInfo> champion = champion_of(config_, registry_flag());
  if (champion) extras.parent = registry::parse_ref(champion->uri(), false);
  registry::VersionInfo version;
  try {
    version = registry::register_directory(release, config_.name, registry_flag(), extras, 2);
  } catch (const Error& e) {
    stage_failed(r, static_cast<int>(e.code()), e.what());
  }
  json out = {{"version", version.uri()}, {"path", release.string()}, {"metrics", inputs["metrics"]},
              {"parent", champion ? json(champion->uri()) : json(nullptr)}};
  finish(r, inputs, out);
}

// --- promote (champion / challenger) ---------------------------------------------------------------------

void Pipeline::promote() {
  StageReport& r = report("promote");
  if (!ready(r, config_.promotion, "promotion", {"register"})) return;
  const std::string challenger = output_of("register", "version");
  const json challenger_metrics = outputs_["register"].value("metrics", json::object());
  std::string metric = config_.metric;
  if (metric.empty()) metric = challenger_metrics.contains("accuracy") ? "accuracy" : "mae";
  const std::optional<registry::VersionInfo> champion = champion_of(config_, registry_flag());
  const json inputs = {{"challenger", challenger},
                       {"champion", champion ? json(champion->uri()) : json(nullptr)},
                       {"alias", config_.alias},
                       {"metric", metric},
                       {"min_improvement", config_.min_improvement},
                       {"dataset", output_of("preprocess", "sha256")}};
  if (champion && champion->uri() == challenger && options_.force_from != "promote") {
    r.key = sha256_hex(inputs.dump());
    r.status = StageStatus::cached;
    r.reason = fmt::format("{} is {} already", challenger, config_.alias);
    r.details = {{"promoted", true}, {"version", challenger}, {"alias", config_.alias}};
    outputs_["promote"] = r.details;
    return;
  }
  if (!decide(r, inputs)) {
    // A cached "not better" still fails the run (status only says what it would do).
    if (execute_ && !r.details.value("promoted", false)) {
      exit_code_ = 1;
      message_ = r.details.value("message", "not promoted");
    }
    return;
  }
  if (!execute_) return;
  const fs::path champion_report = stage_dir("promote") / "champion.json";
  begin(r, champion_report);
  if (!challenger_metrics.contains(metric))
    stage_failed(r, 3, fmt::format("the test evaluation has no {} (promotion.metric) for this task", metric));
  const double challenger_value = challenger_metrics[metric].get<double>();
  json out = {{"metric", metric}, {"alias", config_.alias}, {"challenger", {{"version", challenger}, {"value", challenger_value}}}};
  const bool higher = metrics::higher_is_better(metric);
  bool better = true;
  std::string because = fmt::format("no {} version yet", config_.alias);
  if (champion) {
    // The champion is scored on the same test split, by the same command.
    run_command(r, {"evaluate", "--model", champion->uri(), "--data", output_of("preprocess", "data"), "--split", "test",
                    "--report", champion_report.string()},
                fmt::format("evaluating the champion {}: ", champion->uri()));
    const json champion_metrics = scalar_metrics(json::parse(read_file(champion_report)));
    if (!champion_metrics.contains(metric))
      stage_failed(r, 3, fmt::format("the champion {} has no {} on the test split", champion->uri(), metric));
    const double champion_value = champion_metrics[metric].get<double>();
    out["champion"] = {{"version", champion->uri()}, {"value", champion_value}};
    const double improvement = higher ? challenger_value - champion_value : champion_value - challenger_value;
    better = improvement > 0 && improvement + 1e-12 >= config_.min_improvement;
    because = fmt::format("{} {:.6g} vs {:.6g}", metric, challenger_value, champion_value);
    if (!better) {
      out["promoted"] = false;
      out["message"] = fmt::format("not better than {}: {}{}", config_.alias, because,
                                   config_.min_improvement > 0 ? fmt::format(" (needs +{:.6g})", config_.min_improvement) : "");
    }
  }
  if (better) {
    try {
      registry::Registry reg(registry::registry_path(registry_flag()), registry::Registry::Access::write,
                             registry::default_options());
      reg.promote(registry::parse_ref(challenger, false), config_.alias, "recmodel pipeline: " + because,
                  champion ? std::optional<int64_t>(champion->version) : std::optional<int64_t>(0));
    } catch (const Error& e) {
      stage_failed(r, static_cast<int>(e.code()), e.what());
    }
    out["promoted"] = true;
  }
  finish(r, inputs, out);
  if (!better) {
    exit_code_ = 1;
    message_ = out["message"].get<std::string>();
  }
}

// --- publish ---------------------------------------------------------------------------------------------

void Pipeline::publish() {
  StageReport& r = report("publish");
  const std::vector<std::string> needs = config_.promotion ? std::vector<std::string>{"register", "promote"}
                                                          : std::vector<std::string>{"register"};
  if (!ready(r, !config_.remotes.empty(), "publish", needs)) return;
  const std::string version = output_of("register", "version");
  if (config_.promotion && !outputs_["promote"].value("promoted", false)) {
    r.status = StageStatus::skipped;
    r.reason = "the challenger was not promoted";
    return;
  }
  const fs::path remotes_file = options_.config_flag.empty() ? storage::config_file_path() : fs::path(options_.config_flag);
  const std::vector<storage::RemoteSpec> remotes = storage::load_remotes(remotes_file);
  json targets = json::array();
  std::vector<storage::RemoteSpec> chosen;
  for (const std::string& name : config_.remotes) {
    chosen.push_back(storage::find_remote(remotes, name, remotes_file));
    targets.push_back({{"name", name}, {"url", chosen.back().url}, {"public", chosen.back().is_public}});
  }
  const json inputs = {{"version", version}, {"remotes", targets}, {"classification", config_.classification}};
  if (!decide(r, inputs) || !execute_) return;
  begin(r, {});
  // Residency first, for every remote: a private version goes nowhere if one target is public.
  for (const storage::RemoteSpec& remote : chosen)
    if (config_.classification == "private" && remote.is_public)
      stage_failed(r, static_cast<int>(ExitCode::remote),
                   fmt::format("refusing to publish {} to '{}': it is classified private (register.classification) and "
                               "'{}' is a public remote; nothing was published",
                               version, remote.name, remote.name));
  json pushed = json::array();
  for (const storage::RemoteSpec& remote : chosen) {
    std::vector<std::string> args = {"push", version, "--to", remote.name};
    if (!options_.config_flag.empty()) args.insert(args.end(), {"--config", options_.config_flag});
    run_command(r, args, fmt::format("pushing to '{}': ", remote.name));
    pushed.push_back(remote.name);
  }
  const json out = {{"version", version}, {"remotes", pushed}};
  finish(r, inputs, out);
}

// --- the run ------------------------------------------------------------------------------------------------

std::string markdown_summary(const json& record) {
  std::string md = fmt::format("# recmodel pipeline run {}\n\n", record.value("id", ""));
  md += fmt::format("- file: `{}`\n- started: {}\n- finished: {}\n- result: {}\n\n", record.value("file", ""),
                    record.value("started", ""), record.value("finished", ""),
                    record.value("exit_code", 0) == 0 ? std::string("ok")
                                                      : fmt::format("exit {}: {}", record.value("exit_code", 0),
                                                                    record.value("message", "")));
  md += "| stage | status | seconds | why |\n| --- | --- | ---: | --- |\n";
  for (const auto& [name, stage] : record["stages"].items()) {
    std::string why = stage.value("reason", "");
    std::replace(why.begin(), why.end(), '|', '/');
    md += fmt::format("| {} | {} | {:.1f} | {} |\n", name, stage.value("status", ""), stage.value("seconds", 0.0), why);
  }
  if (record.contains("metrics") && !record["metrics"].empty()) {
    md += "\n## Test metrics\n\n| metric | value |\n| --- | ---: |\n";
    for (const auto& [name, value] : record["metrics"].items()) md += fmt::format("| {} | {:.4f} |\n", name, value.get<double>());
  }
  if (record.contains("promotion")) {
    const json& p = record["promotion"];
    md += "\n## Champion / challenger\n\n";
    if (p.contains("challenger"))
      md += fmt::format("- challenger: {} ({} {:.4f})\n", p["challenger"].value("version", ""), p.value("metric", ""),
                        p["challenger"].value("value", 0.0));
    if (p.contains("champion"))
      md += fmt::format("- champion: {} ({} {:.4f})\n", p["champion"].value("version", ""), p.value("metric", ""),
                        p["champion"].value("value", 0.0));
    md += fmt::format("- promoted to {}: {}\n", p.value("alias", ""), p.value("promoted", false) ? "yes" : "no");
  }
  if (record.contains("version")) md += fmt::format("\nVersion: `{}`\n", record["version"].get<std::string>());
  if (record.contains("artifacts") && !record["artifacts"].empty()) {
    md += "\n## Artifacts\n\n";
    for (const auto& [name, path] : record["artifacts"].items()) md += fmt::format("- {}: `{}`\n", name, path.get<std::string>());
  }
  if (record.contains("published") && !record["published"].empty())
    md += fmt::format("Published to: {}\n", record["published"].dump());
  return md;
}

RunResult Pipeline::run() {
  RunResult result;
  const auto started_at = utc_now();
  for (const std::string& name : stage_names()) {
    StageReport stage;
    stage.name = name;
    reports_.push_back(stage);
  }
  if (!options_.force_from.empty() &&
      std::find(stage_names().begin(), stage_names().end(), options_.force_from) == stage_names().end())
    fail<UsageError>("--force {}: not a stage; the stages are preprocess, train, evaluate, quantize, export, register, "
                     "promote, publish",
                     quoted_for_message(options_.force_from));
  if (execute_) {
    result.id = new_run_id();
    result.record_dir = config_.workspace / "runs" / result.id;
    logs_dir_ = result.record_dir / "logs";
    fs::create_directories(logs_dir_);
  }
  using StageFn = void (Pipeline::*)();
  const std::vector<std::pair<std::string, StageFn>> order = {
      {"preprocess", &Pipeline::preprocess}, {"train", &Pipeline::train},     {"evaluate", &Pipeline::evaluate},
      {"quantize", &Pipeline::quantize},     {"export", &Pipeline::export_onnx}, {"register", &Pipeline::register_version},
      {"promote", &Pipeline::promote},       {"publish", &Pipeline::publish}};
  bool stopped = false;
  for (const auto& [name, fn] : order) {
    StageReport& r = report(name);
    if (stopped) {
      r.status = StageStatus::skipped;
      r.reason = "a stage before it failed";
      continue;
    }
    const auto start = Clock::now();
    if (options_.on_stage_start) options_.on_stage_start(r);
    try {
      (this->*fn)();
    } catch (const StageFailure& failure) {
      exit_code_ = failure.code;
      message_ = failure.message;
      stopped = true;
    } catch (const Error& e) {
      // A stage's own setup (a base model that cannot be resolved, a remote that is not configured).
      r.status = StageStatus::failed;
      r.exit_code = static_cast<int>(e.code());
      r.reason = e.what();
      exit_code_ = r.exit_code;
      message_ = fmt::format("stage {}: {}", name, e.what());
      stopped = true;
    }
    r.seconds = seconds_since(start);
    if (options_.on_stage_end) options_.on_stage_end(r);
  }

  json stages = json::object();
  for (const StageReport& r : reports_) {
    json entry = {{"status", status_name(r.status)}, {"reason", r.reason}, {"seconds", r.seconds}};
    if (!r.key.empty()) entry["cache_key"] = r.key;
    if (r.exit_code) entry["exit_code"] = r.exit_code;
    if (!r.details.empty()) entry["details"] = r.details;
    stages[r.name] = entry;
  }
  json record = {{"format", "recmodel-pipeline-run"}, {"format_version", 1}};
  if (!result.id.empty()) record["id"] = result.id;
  record["file"] = config_.file.string();
  record["workspace"] = config_.workspace.string();
  record["started"] = started_at;
  record["finished"] = utc_now();
  record["exit_code"] = exit_code_;
  if (!message_.empty()) record["message"] = message_;
  record["stages"] = stages;
  if (outputs_.count("evaluate")) record["metrics"] = outputs_["evaluate"].value("metrics", json::object());
  if (outputs_.count("promote")) record["promotion"] = outputs_["promote"];
  if (outputs_.count("register")) record["version"] = outputs_["register"]["version"];
  json artifacts = json::object();
  if (outputs_.count("train")) artifacts["model"] = outputs_["train"]["model"];
  if (outputs_.count("quantize")) artifacts["int8_model"] = outputs_["quantize"]["model"];
  if (outputs_.count("export")) artifacts["onnx"] = outputs_["export"]["onnx"];
  if (outputs_.count("register")) artifacts["release"] = outputs_["register"]["path"];
  record["artifacts"] = artifacts;
  if (outputs_.count("publish")) record["published"] = outputs_["publish"]["remotes"];
  record["settings"] = json::parse(config_.settings_json);
  if (execute_) {
    write_file_atomic(result.record_dir / "run.json", record.dump(2) + "\n");
    write_file_atomic(result.record_dir / "summary.md", markdown_summary(record));
    record["record"] = (result.record_dir / "run.json").string();
  }
  result.stages = reports_;
  result.exit_code = exit_code_;
  result.message = message_;
  result.record = record;
  return result;
}

// The workspace lock: flock on <workspace>/lock, which names its holder for the second run.
class WorkspaceLock {
 public:
  explicit WorkspaceLock(const fs::path& workspace) : path_(workspace / "lock") {
    fs::create_directories(workspace);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail<DataError>("{}: cannot open the workspace lock: {}", path_.string(), std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::string holder = read_file(path_);
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\r')) holder.pop_back();
      ::close(fd_);
      fail<IntegrityError>("{}: another pipeline run holds this workspace ({}); wait for it to finish",
                           workspace.string(), holder.empty() ? "holder unknown" : printable(holder, 200));
    }
    char host[256] = "?";
    ::gethostname(host, sizeof host - 1);
    const std::string holder = fmt::format("pid {} on {} since {}\n", ::getpid(), host, utc_now());
    if (::ftruncate(fd_, 0) == 0) {
      [[maybe_unused]] const ssize_t written = ::pwrite(fd_, holder.data(), holder.size(), 0);
    }
  }
  ~WorkspaceLock() {
    [[maybe_unused]] const int truncated = ::ftruncate(fd_, 0);
    ::close(fd_);
  }
  WorkspaceLock(const WorkspaceLock&) = delete;
  WorkspaceLock& operator=(const WorkspaceLock&) = delete;

 private:
  fs::path path_;
  int fd_ = -1;
};

}  // namespace

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names = {"preprocess", "train",    "evaluate", "quantize",
                                                 "export",     "register", "promote",  "publish"};
  return names;
}

const char* status_name(StageStatus status) {
  switch (status) {
    case StageStatus::ran: return "ran";
    case StageStatus::cached: return "cached";
    case StageStatus::failed: return "failed";
    case StageStatus::skipped: return "skipped";
    case StageStatus::pending: return "pending";
  }
  return "pending";
}

RunResult run_pipeline(const Config& config, const RunOptions& options) {
  if (options.dry_run) return pipeline_status(config, options);
  WorkspaceLock lock(config.workspace);
  return Pipeline(config, options, /*execute=*/true).run();
}

RunResult pipeline_status(const Config& config, const RunOptions& options) {
  return Pipeline(config, options, /*execute=*/false).run();
}

}  // namespace recmodel::pipeline
