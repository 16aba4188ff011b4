#include "pipeline/config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "common/error.h"
#include "common/files.h"
#include "common/suggest.h"
#include "common/text.h"
#include "metrics/names.h"
#include "storage/manifest.h"

namespace recmodel::pipeline {

namespace {

// Where a value came from, for messages: "intent.toml:12" or "--set train.lr".
struct Locator {
  const fs::path& file;
  const std::map<std::string, std::string>& set_keys;  // dotted key -> "--set ..." for values given on the command line

  std::string at(const toml::node& node, const std::string& dotted) const {
    auto it = set_keys.find(dotted);
    if (it != set_keys.end()) return it->second;
    if (node.source().begin.line > 0) return fmt::format("{}:{}", file.string(), node.source().begin.line);
    return file.string();
  }
};

[[noreturn]] void bad(const Locator& where, const toml::node& node, const std::string& dotted, const std::string& message) {
  fail<DataError>("{}: {}: {}", where.at(node, dotted), dotted, message);
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "true or false";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Refuses keys of `table` that are not in `known`, naming the closest.
void check_keys(const Locator& where, const toml::table& table, const std::string& section,
                const std::vector<std::string>& known) {
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    const std::string hint = closest_match(name, known);
    bad(where, node, section.empty() ? name : section + "." + name,
        fmt::format("unknown key{}; known: {}", hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                    join_names(known)));
  }
}

// A number as recmodel's options read it back exactly (shortest round trip).
std::string number_text(double value) { return fmt::format("{}", value); }

// The text of a scalar for a command-line value; tables and arrays are refused.
std::string scalar_text(const Locator& where, const toml::node& node, const std::string& dotted) {
  if (auto s = node.as_string()) {
    if (has_control_character(s->get())) bad(where, node, dotted, "holds a control character");
    return s->get();
  }
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) {
    if (!std::isfinite(f->get())) bad(where, node, dotted, "must be a finite number");
    return number_text(f->get());
  }
  bad(where, node, dotted, fmt::format("must be a string or a number, not {}", type_name(node)));
}

const toml::table* section_table(const Locator& where, const toml::table& root, const std::string& name) {
  const toml::node* node = root.get(name);
  if (!node) return nullptr;
  if (!node->is_table()) bad(where, *node, name, fmt::format("must be a table ([{}]), not {}", name, type_name(*node)));
  return node->as_table();
}

std::string string_value(const Locator& where, const toml::table& table, const std::string& section, const char* key,
                         std::string fallback = "") {
  const toml::node* node = table.get(key);
  if (!node) return fallback;
  const std::string dotted = section + "." + key;
  if (!node->is_string()) bad(where, *node, dotted, fmt::format("must be a string, not {}", type_name(*node)));
  const std::string& value = node->as_string()->get();
  if (has_control_character(value)) bad(where, *node, dotted, "holds a control character");
  return value;
}

std::optional<double> number_value(const Locator& where, const toml::table& table, const std::string& section,
                                   const char* key) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  const std::string dotted = section + "." + key;
  std::optional<double> value;
  if (auto i = node->as_integer()) value = static_cast<double>(i->get());
  if (auto f = node->as_floating_point()) value = f->get();
  if (!value || !std::isfinite(*value)) bad(where, *node, dotted, fmt::format("must be a number, not {}", type_name(*node)));
  return value;
}

std::optional<bool> bool_value(const Locator& where, const toml::table& table, const std::string& section,
                               const char* key) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  if (!node->is_boolean())
    bad(where, *node, section + "." + key, fmt::format("must be true or false, not {}", type_name(*node)));
  return node->as_boolean()->get();
}

std::optional<int64_t> integer_value(const Locator& where, const toml::table& table, const std::string& section,
                                     const char* key, int64_t low, int64_t high) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  const std::string dotted = section + "." + key;
  if (!node->is_integer()) bad(where, *node, dotted, fmt::format("must be a whole number, not {}", type_name(*node)));
  const int64_t value = node->as_integer()->get();
  if (value < low || value > high) bad(where, *node, dotted, fmt::format("must be in [{}, {}], not {}", low, high, value));
  return value;
}

fs::path resolve_path(const fs::path& base_dir, const std::string& text) {
  fs::path path(text);
  return (path.is_absolute() || base_dir.empty() ? path : base_dir / path).lexically_normal();
}

// A command's options from a table: key k is --k with _ for -, checked against `table`; a flag
// takes true/false, another option a scalar or an array of them (repeated). `paths` are resolved
// against the file's directory and recorded in `files`.
CommandOptions command_options(const Locator& where, const toml::table& table, const std::string& section,
                               const OptionTable& known, const std::set<std::string>& reserved,
                               const std::set<std::string>& extra_keys, const std::set<std::string>& paths,
                               const fs::path& base_dir, std::vector<InputFile>* files) {
  std::vector<std::string> names;
  for (const auto& [name, is_flag] : known) {
    std::string key = name;
    std::replace(key.begin(), key.end(), '-', '_');
    if (!reserved.count(key)) names.push_back(key);
  }
  names.insert(names.end(), extra_keys.begin(), extra_keys.end());
  std::sort(names.begin(), names.end());
  CommandOptions options;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    const std::string dotted = section + "." + name;
    if (extra_keys.count(name)) continue;
    if (reserved.count(name))
      bad(where, node, dotted, fmt::format("is set by the pipeline itself (each stage's {} is its own)", name));
    std::string option = name;
    std::replace(option.begin(), option.end(), '_', '-');
    auto it = known.find(option);
    if (it == known.end() || option.find('-') == 0) {
      const std::string hint = closest_match(name, names);
      bad(where, node, dotted,
          fmt::format("unknown key{}; [{}] takes the long options of recmodel {} with _ for -",
                      hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), section,
                      section == "data" ? "preprocess" : section));
    }
    CommandOption entry{"--" + option, {}};
    if (it->second) {
      if (!node.is_boolean()) bad(where, node, dotted, fmt::format("is a flag: true or false, not {}", type_name(node)));
      if (!node.as_boolean()->get()) continue;
    } else if (const toml::array* array = node.as_array()) {
      if (array->empty()) bad(where, node, dotted, "is an empty array");
      for (const toml::node& item : *array) entry.values.push_back(scalar_text(where, item, dotted));
    } else {
      if (node.is_boolean()) bad(where, node, dotted, "takes a value, not true or false");
      entry.values.push_back(scalar_text(where, node, dotted));
    }
    if (paths.count(name)) {
      for (size_t i = 0; i < entry.values.size(); ++i) {
        const fs::path path = resolve_path(base_dir, entry.values[i]);
        entry.values[i] = path.string();
        if (files)
          files->push_back({entry.values.size() > 1 ? fmt::format("{}.{}[{}]", section, name, i) : dotted, path});
      }
    }
    options.push_back(std::move(entry));
  }
  return options;
}

std::vector<Gate> gates_of(const Locator& where, const toml::table& gates, const char* key, const char* section = "gates") {
  std::vector<Gate> out;
  const toml::node* node = gates.get(key);
  if (!node) return out;
  const std::string dotted = std::string(section) + "." + key;
  const toml::table* table = node->as_table();
  if (!table) bad(where, *node, dotted, fmt::format("must be a table of METRIC = THRESHOLD, not {}", type_name(*node)));
  for (const auto& [metric, value] : *table) {
    const std::string name(metric.str());
    try {
      metrics::require_metric_name(name, dotted);
    } catch (const UsageError& e) {
      bad(where, value, dotted + "." + name, e.what());
    }
    auto threshold = number_value(where, *table, dotted, name.c_str());
    out.push_back({name, *threshold});
  }
  return out;
}

// Applies one --set section.key[.sub]=value to `root`.
void apply_set(toml::table& root, const std::string& assignment, std::map<std::string, std::string>& set_keys) {
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0)
    fail<UsageError>("--set {}: expected SECTION.KEY=VALUE, e.g. --set train.lr=1e-4", quoted_for_message(assignment));
  const std::string dotted = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = dotted.find('.', start);
    parts.push_back(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (parts.size() < 2 || std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); }))
    fail<UsageError>("--set {}: the key must be SECTION.KEY, e.g. train.lr", quoted_for_message(assignment));
  // The value as TOML (1e-4, true, "x", [1, 2], { a = 1 }); anything else is a string.
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + text);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"value", text}};
  }
  toml::table* table = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* node = table->get(parts[i]);
    if (!node) {
      table->insert(parts[i], toml::table{});
      node = table->get(parts[i]);
    }
    if (!node->is_table())
      fail<UsageError>("--set {}: {} is not a table", quoted_for_message(assignment),
                       fmt::format("{}", fmt::join(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i) + 1, ".")));
    table = node->as_table();
  }
  table->insert_or_assign(parts.back(), *parsed.get("value"));
  set_keys[dotted] = "--set " + dotted;
}

nlohmann::json to_json(const toml::node& node) {
  if (auto t = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : *t) out[std::string(key.str())] = to_json(value);
    return out;
  }
  if (auto a = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& value : *a) out.push_back(to_json(value));
    return out;
  }
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return i->get();
  if (auto f = node.as_floating_point()) return f->get();
  if (auto b = node.as_boolean()) return b->get();
  // Dates and times: their TOML text.
  if (auto d = node.as_date()) return fmt::format("{:04}-{:02}-{:02}", d->get().year, d->get().month, d->get().day);
  return nullptr;
}

}  // namespace

void append_options(std::vector<std::string>& argv, const CommandOptions& options) {
  for (const CommandOption& option : options) {
    if (option.values.empty()) argv.push_back(option.name);
    for (const std::string& value : option.values) {
      argv.push_back(option.name);
      argv.push_back(value);
    }
  }
}

Config load_config(const fs::path& file, const std::vector<std::string>& sets, const KnownOptions& known) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    fail<NotFoundError>("{}: no such pipeline file", file.string());
  const std::string text = read_file(file);
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    fail<DataError>("{}:{}:{}: {}", file.string(), e.source().begin.line, e.source().begin.column,
                    std::string(e.description()));
  }
  std::map<std::string, std::string> set_keys;
  for (const std::string& assignment : sets) apply_set(root, assignment, set_keys);
  const Locator where{file, set_keys};

  Config config;
  config.file = fs::absolute(file).lexically_normal();
  config.base_dir = config.file.parent_path();
  config.settings_json = to_json(root).dump();
  check_keys(where, root, "",
             {"pipeline", "data", "model", "train", "gates", "quantize", "export", "register", "promotion", "publish"});
  const toml::table empty;

  const toml::table* pipeline = section_table(where, root, "pipeline");
  if (pipeline) check_keys(where, *pipeline, "pipeline", {"workspace"});
  const std::string workspace = pipeline ? string_value(where, *pipeline, "pipeline", "workspace") : "";
  config.workspace = workspace.empty() ? config.base_dir / (config.file.stem().string() + ".pipeline")
                                       : resolve_path(config.base_dir, workspace);

  const toml::table* data = section_table(where, root, "data");
  if (!data) fail<DataError>("{}: has no [data] table: the files to train on (train/dev/test, or input and split)", file.string());
  // The tokenizer comes from [model]; where the output goes is the pipeline's.
  config.from_remote = string_value(where, *data, "data", "from_remote");
  config.snapshot = string_value(where, *data, "data", "snapshot");
  if (config.from_remote.empty() != config.snapshot.empty())
    fail<DataError>("{}: [data] from_remote and snapshot go together: the remote, and the NAME/VERSION the data "
                    "directory was pushed as",
                    file.string());
  if (!config.snapshot.empty()) {
    const size_t slash = config.snapshot.find('/');
    try {
      if (slash == std::string::npos) throw DataError("is not NAME/VERSION");
      storage::validate_key_part(config.snapshot.substr(0, slash), "the snapshot's name");
      storage::validate_key_part(config.snapshot.substr(slash + 1), "the snapshot's version");
    } catch (const Error& e) {
      bad(where, *data->get("snapshot"), "data.snapshot", fmt::format("'{}' {}", printable(config.snapshot), e.what()));
    }
  }
  // Data from a remote is named relative to the snapshot (resolved once it is pulled).
  const bool local = config.from_remote.empty();
  config.preprocess = command_options(where, *data, "data", known.preprocess,
                                      {"out", "force", "model", "vocab", "cased", "help"}, {"from_remote", "snapshot"},
                                      {"input", "train", "dev", "test"}, local ? config.base_dir : fs::path(),
                                      &config.data_files);
  if (config.data_files.empty())
    fail<DataError>("{}: [data] names no files: give train, dev and test, or input (and split)", file.string());
  for (const InputFile& input : config.data_files) {
    if (!local && (input.path.is_absolute() || input.path.lexically_normal().string().rfind("..", 0) == 0))
      fail<DataError>("{}: {}: '{}' must be a path inside the snapshot {}", file.string(), input.key,
                      printable(input.path.string()), config.snapshot);
    if (local && !fs::is_regular_file(input.path, ec))
      fail<NotFoundError>("{}: {}: no such file: {}", file.string(), input.key, input.path.string());
  }

  const toml::table* model_table = section_table(where, root, "model");
  const toml::table& model = model_table ? *model_table : empty;
  check_keys(where, model, "model", {"base", "preset", "vocab", "seed"});
  config.base = string_value(where, model, "model", "base");
  config.preset = string_value(where, model, "model", "preset");
  const std::string vocab = string_value(where, model, "model", "vocab");
  config.init_seed = integer_value(where, model, "model", "seed", 0, INT64_MAX);
  if (config.base.empty() == config.preset.empty())
    fail<DataError>("{}: [model] needs exactly one of base (a model REF) and preset (tiny, mini, small, base, with vocab)",
                    file.string());
  if (!config.preset.empty()) {
    static const std::vector<std::string> presets = {"tiny", "mini", "small", "base"};
    if (std::find(presets.begin(), presets.end(), config.preset) == presets.end()) {
      const std::string hint = closest_match(config.preset, presets);
      bad(where, *model.get("preset"), "model.preset",
          fmt::format("'{}' is not tiny, mini, small or base{}", config.preset,
                      hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
    if (vocab.empty()) fail<DataError>("{}: [model] preset = \"{}\" needs vocab (a vocab.txt)", file.string(), config.preset);
  }
  if (!vocab.empty()) {
    if (!config.base.empty()) bad(where, *model.get("vocab"), "model.vocab", "goes with preset; a base model brings its own");
    config.vocab = resolve_path(config.base_dir, vocab);
    if (!fs::is_regular_file(config.vocab, ec))
      fail<NotFoundError>("{}: model.vocab: no such file: {}", file.string(), config.vocab.string());
  }
  if (config.init_seed && config.preset.empty()) bad(where, *model.get("seed"), "model.seed", "goes with preset");
  // A base given as a directory is a path relative to the file; a models:/ REF is the registry's.
  if (!config.base.empty() && config.base.rfind("models:/", 0) != 0)
    config.base = resolve_path(config.base_dir, config.base).string();

  if (const toml::table* train = section_table(where, root, "train"))
    config.train = command_options(where, *train, "train", known.train,
                                   {"model", "data", "out", "force", "resume", "work_dir", "register", "keep_checkpoints",
                                    "help"},
                                   {}, {}, config.base_dir, nullptr);

  if (const toml::table* gates = section_table(where, root, "gates")) {
    check_keys(where, *gates, "gates", {"fail_under", "max"});
    config.fail_under = gates_of(where, *gates, "fail_under");
    config.max = gates_of(where, *gates, "max");
  }

  if (const toml::table* quantize = section_table(where, root, "quantize")) {
    check_keys(where, *quantize, "quantize", {"max_drop", "per_tensor", "enabled"});
    config.quantize = bool_value(where, *quantize, "quantize", "enabled").value_or(true);
    if (const toml::node* drop = quantize->get("max_drop")) {
      if (drop->is_table()) {
        config.max_drop = gates_of(where, *quantize, "max_drop", "quantize");
      } else {
        const bool regression = [&] {
          const toml::node* task = data->get("task");
          return task && task->is_string() && task->as_string()->get() == "regression";
        }();
        config.max_drop = {{regression ? "mae" : "accuracy", *number_value(where, *quantize, "quantize", "max_drop")}};
      }
      for (const Gate& gate : config.max_drop)
        if (gate.threshold < 0)
          bad(where, *drop, "quantize.max_drop", fmt::format("{}: must be 0 or more (0.01 = one point)", gate.metric));
    }
    config.quantize_per_tensor = bool_value(where, *quantize, "quantize", "per_tensor").value_or(false);
  }

  if (const toml::table* exported = section_table(where, root, "export")) {
    check_keys(where, *exported, "export", {"int8", "opset", "verify", "enabled"});
    config.export_onnx = bool_value(where, *exported, "export", "enabled").value_or(true);
    config.export_int8 = bool_value(where, *exported, "export", "int8").value_or(false);
    config.opset = integer_value(where, *exported, "export", "opset", 14, 17);
    config.export_verify = bool_value(where, *exported, "export", "verify").value_or(true);
  }

  const toml::table* registration = section_table(where, root, "register");
  if (!registration) fail<DataError>("{}: has no [register] table: the registry name of the trained model", file.string());
  check_keys(where, *registration, "register", {"name", "tags", "classification", "description"});
  config.name = string_value(where, *registration, "register", "name");
  if (config.name.empty()) fail<DataError>("{}: [register] needs name, the model's registry name", file.string());
  if (const toml::node* tags = registration->get("tags")) {
    const toml::table* table = tags->as_table();
    if (!table) bad(where, *tags, "register.tags", fmt::format("must be a table of KEY = \"VALUE\", not {}", type_name(*tags)));
    for (const auto& [key, value] : *table) {
      const std::string name(key.str());
      if (name == "classification") bad(where, value, "register.tags.classification", "is register.classification");
      config.tags[name] = scalar_text(where, value, "register.tags." + name);
    }
  }
  config.classification = string_value(where, *registration, "register", "classification");
  if (!config.classification.empty()) {
    static const std::vector<std::string> classes = {"public", "internal", "private"};
    if (std::find(classes.begin(), classes.end(), config.classification) == classes.end()) {
      const std::string hint = closest_match(config.classification, classes);
      bad(where, *registration->get("classification"), "register.classification",
          fmt::format("'{}' is not public, internal or private{}", config.classification,
                      hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
  }
  config.description = string_value(where, *registration, "register", "description");

  if (const toml::table* promotion = section_table(where, root, "promotion")) {
    check_keys(where, *promotion, "promotion", {"alias", "metric", "min_improvement"});
    config.promotion = true;
    config.alias = string_value(where, *promotion, "promotion", "alias", "production");
    config.metric = string_value(where, *promotion, "promotion", "metric");
    if (!config.metric.empty()) {
      try {
        metrics::require_metric_name(config.metric, "promotion.metric");
      } catch (const UsageError& e) {
        bad(where, *promotion->get("metric"), "promotion.metric", e.what());
      }
    }
    config.min_improvement = number_value(where, *promotion, "promotion", "min_improvement").value_or(0);
    if (config.min_improvement < 0)
      bad(where, *promotion->get("min_improvement"), "promotion.min_improvement", "must be 0 or more");
  }

  if (const toml::table* publish = section_table(where, root, "publish")) {
    check_keys(where, *publish, "publish", {"remotes"});
    if (const toml::node* remotes = publish->get("remotes")) {
      const toml::array* array = remotes->as_array();
      if (!array) bad(where, *remotes, "publish.remotes", fmt::format("must be an array of remote names, not {}", type_name(*remotes)));
      std::set<std::string> seen;
      for (const toml::node& item : *array) {
        if (!item.is_string()) bad(where, item, "publish.remotes", "must hold remote names (strings)");
        const std::string name = item.as_string()->get();
        if (!seen.insert(name).second) bad(where, item, "publish.remotes", fmt::format("names '{}' twice", name));
        config.remotes.push_back(name);
      }
    }
    if (config.remotes.empty() && publish->get("remotes"))
      bad(where, *publish->get("remotes"), "publish.remotes", "is empty: leave [publish] out to publish nowhere");
  }
  return config;
}

}  // namespace recmodel::pipeline
