#include "commands/registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "common/error.h"
#include "common/json.h"
#include "common/files.h"
#include "registry/migrate.h"
#include "registry/registry.h"
#include "registry/schema.h"

namespace recmodel {

namespace {

using registry::ModelRef;
using registry::Registry;
using registry::VersionInfo;

// Options every registry subcommand shares.
struct SharedOptions {
  double lock_timeout = -1;  // seconds; < 0 = $RECMODEL_REGISTRY_TIMEOUT or 30
};

struct RegisterOptions {
  std::string name;
  std::string path;
  std::vector<std::string> tags;
  std::string description;
  std::string parent;
  std::string dataset;
  std::string base_checkpoint;
  std::vector<std::string> metrics;
  std::vector<std::string> params;
  std::string manifest;
};

struct ListOptions {
  std::string name;
  std::string tag;
  std::string alias;
  std::string status = "all";
  int64_t limit = 0;
};

struct PromoteOptions {
  std::string ref;
  std::string alias;
  std::string reason;
  std::string expect;
};

struct TagOptions {
  std::string ref;
  std::vector<std::string> set;
  std::vector<std::string> remove;
  std::string description;
  bool has_description = false;
};

struct HistoryOptions {
  std::string ref;
  std::string at;
};

struct StatusOptions {
  std::string ref;
  bool restore = false;
  bool force = false;
  std::string reason;
};

// ---------------------------------------------------------------------------------------------
// Helpers

Registry open_registry(const Console& console, const SharedOptions& shared, Registry::Access access) {
  registry::RegistryOptions options = registry::default_options();
  if (shared.lock_timeout >= 0) options.lock_timeout_ms = static_cast<int>(std::lround(shared.lock_timeout * 1000));
  const std::string& flag = console.options().registry;
  Registry opened(registry::registry_path(flag), access, options, registry::is_default_registry_path(flag));
  if (!opened.migration_backup().empty())
    console.info("migrated {} to registry schema version {}; the old file is kept as {}", opened.path().string(),
                 registry::migrations().size(), opened.migration_backup());
  return opened;
}

std::pair<std::string, std::string> split_key_value(const std::string& text, const char* option) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    fail<UsageError>("{} {}: expected KEY=VALUE (e.g. {} team=search)", option, text, option);
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::string human_size(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

// "2025-05-03T14:00:00.123Z" → "2025-05-03 14:00:00Z" for tables.
std::string short_time(const std::string& iso) {
  if (iso.size() < 19) return iso;
  std::string out = iso.substr(0, 19) + "Z";
  out[10] = ' ';
  return out;
}

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string tags_text(const registry::Tags& tags) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : tags) parts.push_back(key + "=" + value);
  return join(parts, " ");
}

std::string version_text(const std::optional<int64_t>& version) {
  return version ? std::to_string(*version) : std::string("-");
}

std::string json_scalar_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return fmt::format("{:.6g}", value.get<double>());
  return value.dump();
}

// Prints rows as columns separated by two spaces; the last column is not padded.
void print_table(std::FILE* out, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print(out, "{}\n", line);
  }
}

nlohmann::json optional_json(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json optional_json(const std::optional<int64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json version_json(const VersionInfo& info, bool with_files) {
  nlohmann::json document = {
      {"uri", info.uri()},
      {"name", info.name},
      {"version", info.version},
      {"status", info.status},
      {"aliases", info.aliases},
      {"source_path", info.source_path},
      {"created_at", info.created_at},
      {"created_by", info.created_by},
      {"description", info.description},
      {"manifest_sha256", info.manifest_sha256},
      {"file_count", info.file_count},
      {"total_size", info.total_size},
      {"metrics", info.metrics},
      {"params", info.params},
      {"dataset_sha256", optional_json(info.dataset_sha256)},
      {"parent", optional_json(info.parent)},
      {"base_checkpoint", optional_json(info.base_checkpoint)},
      {"tags", info.tags},
  };
  if (with_files) document["files"] = registry::manifest_to_json(info.manifest)["files"];
  return document;
}

nlohmann::json model_json(const registry::ModelInfo& info) {
  return {{"uri", std::string(registry::kScheme) + info.name},
          {"name", info.name},
          {"description", info.description},
          {"created_at", info.created_at},
          {"created_by", info.created_by},
          {"updated_at", info.updated_at},
          {"versions", info.version_count},
          {"latest", optional_json(info.latest)},
          {"aliases", info.aliases},
          {"tags", info.tags}};
}

nlohmann::json move_json(const registry::AliasMove& move) {
  return {{"model", move.name},       {"alias", move.alias}, {"from", optional_json(move.from)},
          {"to", optional_json(move.to)}, {"at", move.at},       {"by", move.by},
          {"reason", move.reason}};
}

nlohmann::json evaluation_json(const registry::Evaluation& evaluation) {
  return {{"split", evaluation.split},
          {"dataset_sha256", optional_json(evaluation.dataset_sha256)},
          {"metrics", evaluation.metrics},
          {"at", evaluation.at},
          {"by", evaluation.by}};
}

// Returns the numeric and text leaves of `value` by dotted name (per_class.shoes.f1); arrays are left out.
void flatten(const nlohmann::json& value, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (!value.is_array() && !value.is_null() && !prefix.empty()) {
    out[prefix] = value;
  }
}

// Returns a version's metrics: its own, then those of the newest evaluation of each split as "split.metric".
std::map<std::string, nlohmann::json> all_metrics(const VersionInfo& info,
                                                  const std::vector<registry::Evaluation>& evaluations) {
  std::map<std::string, nlohmann::json> out;
  flatten(info.metrics, "", out);
  for (const auto& evaluation : evaluations) flatten(evaluation.metrics, evaluation.split, out);  // newest wins
  return out;
}

ModelRef parse_version_ref(const std::string& text) {
  ModelRef ref = registry::parse_ref(text, true);
  if (!ref.names_version())
    fail<UsageError>("{} names a model; give one version: {}/VERSION, {}@ALIAS or {}/latest", ref.uri(), ref.uri(),
                     ref.uri(), ref.uri());
  return ref;
}

ModelRef parse_alias_ref(const std::string& text, const char* command) {
  ModelRef ref = registry::parse_ref(text, true);
  if (ref.kind != ModelRef::Kind::alias)
    fail<UsageError>("registry {} takes an alias reference such as models:/{}@production; got {}", command, ref.name,
                     text);
  return ref;
}

// ---------------------------------------------------------------------------------------------
// register

void run_register(const RegisterOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef model = registry::parse_ref(options.name, true);  // "intent" or "models:/intent"
  if (model.names_version())
    fail<UsageError>("registry register takes a model name ({}); the version number is assigned", model.name);
  registry::RegisterRequest request;
  request.name = model.name;
  request.description = options.description;
  for (const auto& text : options.tags) {
    auto [key, value] = split_key_value(text, "--tag");
    registry::validate_tag_key(key);
    registry::validate_tag_value(key, value);
    request.tags[key] = value;
  }
  nlohmann::json metric_overrides = nlohmann::json::object(), param_overrides = nlohmann::json::object();
  for (const auto& text : options.metrics) {
    auto [key, value] = split_key_value(text, "--metric");
    char* end = nullptr;
    double number = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(number))
      fail<UsageError>("--metric {}: '{}' is not a number (e.g. --metric accuracy=0.91)", text, value);
    metric_overrides[key] = number;
  }
  for (const auto& text : options.params) {
    auto [key, value] = split_key_value(text, "--param");
    std::string why;
    auto parsed = try_parse_json(value, why);
    param_overrides[key] = !parsed.is_discarded() && (parsed.is_number() || parsed.is_boolean()) ? parsed
                                                                                                 : nlohmann::json(value);
  }
  if (!options.parent.empty()) {
    bool number = options.parent.find_first_not_of("0123456789") == std::string::npos;
    request.parent = number ? registry::parse_ref(model.name + "/" + options.parent, true)
                            : parse_version_ref(options.parent);
  }
  if (!options.dataset.empty()) {
    std::error_code ec;
    if (registry::is_sha256(options.dataset)) {
      request.dataset_sha256 = options.dataset;
    } else if (fs::is_directory(options.dataset, ec)) {
      fs::path manifest = fs::path(options.dataset) / "manifest.json";
      if (!fs::exists(manifest, ec))
        fail<NotFoundError>("{}: no manifest.json; --dataset takes a prepared dataset directory, its manifest file "
                            "or its SHA-256",
                            options.dataset);
      request.dataset_sha256 = sha256_file(manifest);
    } else if (fs::exists(options.dataset, ec)) {
      request.dataset_sha256 = sha256_file(options.dataset);
    } else {
      fail<NotFoundError>("{}: no such dataset directory or file, and not a SHA-256 (--dataset)", options.dataset);
    }
  }
  if (!options.base_checkpoint.empty()) request.base_checkpoint = options.base_checkpoint;

  std::error_code ec;
  if (!fs::exists(options.path, ec)) fail<NotFoundError>("{}: no such directory (--path)", options.path);
  if (!fs::is_directory(options.path, ec))
    fail<DataError>("{}: is not a directory; --path takes a model directory", options.path);
  request.path = fs::canonical(options.path, ec);
  if (ec) fail<DataError>("{}: cannot resolve the path: {}", options.path, ec.message());

  // Everything that can fail cheaply is checked before hashing (which takes a while on big models):
  // the registry opens (and migrates) here too.
  Registry opened = open_registry(console, shared, Registry::Access::write);
  registry::read_lineage_file(request.path, request);
  for (auto it = metric_overrides.begin(); it != metric_overrides.end(); ++it) request.metrics[it.key()] = it.value();
  for (auto it = param_overrides.begin(); it != param_overrides.end(); ++it) request.params[it.key()] = it.value();

  if (!options.manifest.empty()) {
    auto document = read_json_file(options.manifest);
    request.manifest = registry::manifest_from_json(document, options.manifest);
    registry::check_manifest_sizes(request.path, request.manifest, options.manifest);
  } else {
    ProgressBar progress(console, "hash", 0, "B");
    request.manifest = registry::compute_manifest(request.path, console.threads(),
                                                  [&](uint64_t bytes) { progress.update(bytes); });
    progress.finish();
  }
  VersionInfo info = opened.register_version(request);
  console.result(version_json(info, false), [&](std::FILE* out) {
    fmt::print(out, "registered {} ({} file{}, {}, manifest {})\n", info.uri(), info.file_count,
               info.file_count == 1 ? "" : "s", human_size(info.total_size), info.manifest_sha256.substr(0, 12));
    if (info.parent) fmt::print(out, "parent: {}\n", *info.parent);
  });
}

// ---------------------------------------------------------------------------------------------
// list

void run_list(const ListOptions& options, const SharedOptions& shared, const Console& console) {
  registry::VersionFilter filter;
  if (!options.tag.empty()) {
    size_t eq = options.tag.find('=');
    std::string key = options.tag.substr(0, eq);
    registry::validate_tag_key(key);
    filter.tag = {key, eq == std::string::npos ? std::nullopt : std::optional<std::string>(options.tag.substr(eq + 1))};
  }
  if (!options.alias.empty()) {
    registry::validate_alias(options.alias);
    filter.alias = options.alias;
  }
  if (options.status != "all") filter.status = options.status;
  filter.limit = options.limit;
  Registry opened = open_registry(console, shared, Registry::Access::read);

  if (options.name.empty()) {
    if (filter.status || filter.limit)
      fail<UsageError>("--status and --limit filter the versions of one model; give its name (registry list NAME)");
    auto models = opened.list_models(filter);
    nlohmann::json list = nlohmann::json::array();
    for (const auto& model : models) list.push_back(model_json(model));
    console.result({{"registry", opened.path().string()}, {"models", list}}, [&](std::FILE* out) {
      if (models.empty()) {
        fmt::print(out, "no models{} in {}\n", filter.tag || filter.alias ? " match" : "", opened.path().string());
        return;
      }
      std::vector<std::vector<std::string>> rows = {{"NAME", "VERSIONS", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"}};
      for (const auto& model : models) {
        std::vector<std::string> aliases;
        for (const auto& [alias, version] : model.aliases) aliases.push_back(fmt::format("{}={}", alias, version));
        rows.push_back({model.name, std::to_string(model.version_count), version_text(model.latest),
                        aliases.empty() ? "-" : join(aliases, " "), short_time(model.updated_at), model.description});
      }
      print_table(out, rows);
    });
    return;
  }

  ModelRef ref = registry::parse_ref(options.name, true);
  if (ref.names_version())
    fail<UsageError>("registry list takes a model name ({}); 'registry show {}' shows one version", ref.name,
                     options.name);
  auto versions = opened.list_versions(ref.name, filter);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& version : versions) list.push_back(version_json(version, false));
  console.result({{"registry", opened.path().string()}, {"model", ref.name}, {"versions", list}}, [&](std::FILE* out) {
    if (versions.empty()) {
      fmt::print(out, "{} has no versions{}\n", ref.name,
                 filter.tag || filter.alias || filter.status ? " that match" : "");
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"VERSION", "STATUS", "ALIASES", "CREATED", "BY", "FILES", "SIZE", "TAGS", "DESCRIPTION"}};
    for (const auto& version : versions)
      rows.push_back({std::to_string(version.version), version.status,
                      version.aliases.empty() ? "-" : join(version.aliases, ","), short_time(version.created_at),
                      version.created_by, std::to_string(version.file_count), human_size(version.total_size),
                      version.tags.empty() ? "-" : tags_text(version.tags), version.description});
    print_table(out, rows);
  });
}

// ---------------------------------------------------------------------------------------------
// show

std::string metrics_text(const nlohmann::json& metrics) {
  std::map<std::string, nlohmann::json> flat;
  flatten(metrics, "", flat);
  std::vector<std::string> parts;
  for (const auto& [key, value] : flat) parts.push_back(key + "=" + json_scalar_text(value));
  return parts.empty() ? "-" : join(parts, " ");
}

void run_show(const std::string& text, const SharedOptions& shared, const Console& console) {
  ModelRef ref = registry::parse_ref(text, true);
  Registry opened = open_registry(console, shared, Registry::Access::read);
  if (!ref.names_version()) {
    registry::ModelInfo model = opened.model(ref.name);
    console.result(model_json(model), [&](std::FILE* out) {
      fmt::print(out, "{}{}\n", ref.uri(), model.description.empty() ? "" : "  " + model.description);
      std::vector<std::string> aliases;
      for (const auto& [alias, version] : model.aliases) aliases.push_back(fmt::format("{} -> {}", alias, version));
      print_table(out, {{"  versions:", fmt::format("{} (latest active: {})", model.version_count,
                                                    version_text(model.latest))},
                        {"  aliases:", aliases.empty() ? "-" : join(aliases)},
                        {"  tags:", model.tags.empty() ? "-" : tags_text(model.tags)},
                        {"  created:", fmt::format("{} by {}", short_time(model.created_at), model.created_by)},
                        {"  updated:", short_time(model.updated_at)}});
    });
    return;
  }
  VersionInfo info = opened.version(ref, true);
  auto evaluations = opened.evaluations(ref);
  nlohmann::json document = version_json(info, true);
  document["evaluations"] = nlohmann::json::array();
  for (const auto& evaluation : evaluations) document["evaluations"].push_back(evaluation_json(evaluation));
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "{}{}\n", info.uri(), ref.kind == ModelRef::Kind::version ? "" : fmt::format(" ({})", ref.uri()));
    std::vector<std::vector<std::string>> rows = {
        {"  status:", info.status},
        {"  aliases:", info.aliases.empty() ? "-" : join(info.aliases)},
        {"  source:", info.source_path},
        {"  created:", fmt::format("{} by {}", short_time(info.created_at), info.created_by)},
        {"  files:", fmt::format("{}, {}, manifest sha256 {}", info.file_count, human_size(info.total_size),
                                 info.manifest_sha256)},
        {"  dataset:", info.dataset_sha256 ? "sha256 " + *info.dataset_sha256 : "-"},
        {"  parent:", info.parent.value_or("-")},
        {"  base:", info.base_checkpoint.value_or("-")},
        {"  tags:", info.tags.empty() ? "-" : tags_text(info.tags)},
        {"  metrics:", metrics_text(info.metrics)},
        {"  params:", metrics_text(info.params)}};
    if (!info.description.empty()) rows.insert(rows.begin() + 1, {"  description:", info.description});
    for (const auto& evaluation : evaluations)
      rows.push_back({"  evaluated:", fmt::format("{} on {} by {}: {}", evaluation.split, short_time(evaluation.at),
                                                  evaluation.by, metrics_text(evaluation.metrics))});
    print_table(out, rows);
    std::vector<std::vector<std::string>> files = {{"  SIZE", "SHA256", "PATH"}};
    for (const auto& file : info.manifest.files)
      files.push_back({"  " + human_size(static_cast<int64_t>(file.size)), file.sha256, file.path});
    print_table(out, files);
  });
}

// ---------------------------------------------------------------------------------------------
// promote, unalias, rollback, history

void print_move(std::FILE* out, const registry::AliasMove& move) {
  auto side = [&](const std::optional<int64_t>& version) {
    return version ? registry::version_uri(move.name, *version) : std::string("(none)");
  };
  fmt::print(out, "{}@{}: {} -> {}\n", move.name, move.alias, side(move.from), side(move.to));
}

void run_promote(const PromoteOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = parse_version_ref(options.ref);
  registry::validate_alias(options.alias);
  std::optional<int64_t> expect;
  if (!options.expect.empty()) {
    if (options.expect == "none") {
      expect = 0;
    } else if (options.expect.find_first_not_of("0123456789") == std::string::npos && options.expect.size() < 19 &&
               options.expect[0] != '0') {
      expect = std::stoll(options.expect);
    } else {
      fail<UsageError>("--expect {}: expected a version number, or none for an alias that must not exist yet",
                       options.expect);
    }
  }
  Registry opened = open_registry(console, shared, Registry::Access::write);
  registry::AliasMove move = opened.promote(ref, options.alias, options.reason, expect);
  bool moved = move.from != move.to;
  nlohmann::json document = move_json(move);
  document["moved"] = moved;
  console.result(document, [&](std::FILE* out) {
    if (!moved) {
      fmt::print(out, "{}@{} already points at {}; nothing changed\n", move.name, move.alias,
                 registry::version_uri(move.name, *move.to));
      return;
    }
    print_move(out, move);
  });
}

void run_unalias(const PromoteOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = parse_alias_ref(options.ref, "unalias");
  Registry opened = open_registry(console, shared, Registry::Access::write);
  registry::AliasMove move = opened.remove_alias(ref.name, ref.alias, options.reason);
  console.result(move_json(move), [&](std::FILE* out) { print_move(out, move); });
}

void run_rollback(const PromoteOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = parse_alias_ref(options.ref, "rollback");
  Registry opened = open_registry(console, shared, Registry::Access::write);
  registry::AliasMove move = opened.rollback(ref.name, ref.alias, options.reason);
  console.result(move_json(move), [&](std::FILE* out) { print_move(out, move); });
}

void run_history(const HistoryOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = registry::parse_ref(options.ref, true);
  if (ref.kind == ModelRef::Kind::version || ref.kind == ModelRef::Kind::latest)
    fail<UsageError>("registry history takes models:/NAME@ALIAS (one alias) or models:/NAME (all its aliases); got {}",
                     options.ref);
  std::optional<std::string> alias;
  if (ref.kind == ModelRef::Kind::alias) alias = ref.alias;
  Registry opened = open_registry(console, shared, Registry::Access::read);
  auto moves = opened.history(ref.name, alias);

  if (!options.at.empty()) {
    int64_t at_ms = registry::parse_time(options.at);
    std::vector<std::string> aliases;
    if (alias) {
      aliases.push_back(*alias);
    } else {
      std::set<std::string> seen;
      for (const auto& move : moves)
        if (seen.insert(move.alias).second) aliases.push_back(move.alias);
    }
    nlohmann::json states = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows = {{"ALIAS", "VERSION"}};
    for (const auto& name : aliases) {
      auto version = opened.alias_at(ref.name, name, at_ms);
      states.push_back({{"alias", name}, {"version", optional_json(version)},
                        {"uri", version ? nlohmann::json(registry::version_uri(ref.name, *version)) : nlohmann::json()}});
      rows.push_back({name, version ? registry::version_uri(ref.name, *version) : std::string("(none)")});
    }
    std::string at_text = registry::format_time(at_ms);
    console.result({{"model", ref.name}, {"at", at_text}, {"aliases", states}}, [&](std::FILE* out) {
      if (alias) {
        const auto& state = states[0];
        fmt::print(out, "at {}, {}@{} pointed at {}\n", at_text, ref.name, *alias,
                   state["uri"].is_null() ? std::string("nothing (it did not exist yet, or was removed)")
                                          : state["uri"].get<std::string>());
        return;
      }
      fmt::print(out, "aliases of {} at {}:\n", ref.name, at_text);
      if (aliases.empty()) fmt::print(out, "  (none: no alias was ever set)\n");
      else print_table(out, rows);
    });
    return;
  }

  nlohmann::json list = nlohmann::json::array();
  for (const auto& move : moves) list.push_back(move_json(move));
  console.result({{"model", ref.name}, {"alias", alias ? nlohmann::json(*alias) : nlohmann::json()}, {"moves", list}},
                 [&](std::FILE* out) {
                   if (moves.empty()) {
                     fmt::print(out, "{} has no alias history yet\n", ref.name);
                     return;
                   }
                   std::vector<std::vector<std::string>> rows = {{"WHEN", "ALIAS", "FROM", "TO", "BY", "REASON"}};
                   for (const auto& move : moves)
                     rows.push_back({move.at, move.alias, version_text(move.from), version_text(move.to), move.by,
                                     move.reason});
                   print_table(out, rows);
                 });
}

// ---------------------------------------------------------------------------------------------
// tag

void run_tag(const TagOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = registry::parse_ref(options.ref, true);
  registry::Tags set;
  for (const auto& text : options.set) {
    auto [key, value] = split_key_value(text, "tag");
    set[key] = value;
  }
  if (set.empty() && options.remove.empty() && !options.has_description)
    fail<UsageError>("nothing to do: give KEY=VALUE tags, --remove KEY or --description TEXT");
  Registry opened = open_registry(console, shared, Registry::Access::write);
  if (!set.empty() || !options.remove.empty()) opened.tag(ref, set, options.remove);
  if (options.has_description) {
    if (ref.names_version())
      fail<UsageError>("--description on a version is set when registering it; here it describes the model: give "
                       "models:/{}",
                       ref.name);
    opened.set_model_description(ref.name, options.description);
  }
  nlohmann::json document = {{"uri", ref.uri()}, {"set", set}, {"removed", options.remove}};
  if (options.has_description) document["description"] = options.description;
  console.result(document, [&](std::FILE* out) {
    std::vector<std::string> parts;
    if (!set.empty()) parts.push_back("set " + tags_text(set));
    if (!options.remove.empty()) parts.push_back("removed " + join(options.remove, " "));
    if (options.has_description) parts.push_back("description updated");
    fmt::print(out, "{}: {}\n", ref.uri(), join(parts, "; "));
  });
}

// ---------------------------------------------------------------------------------------------
// compare

void run_compare(const std::vector<std::string>& refs, const SharedOptions& shared, const Console& console) {
  ModelRef a_ref = parse_version_ref(refs.at(0));
  ModelRef b_ref = parse_version_ref(refs.at(1));
  Registry opened = open_registry(console, shared, Registry::Access::read);
  VersionInfo a = opened.version(a_ref, true), b = opened.version(b_ref, true);
  auto a_metrics = all_metrics(a, opened.evaluations(a_ref));
  auto b_metrics = all_metrics(b, opened.evaluations(b_ref));

  std::set<std::string> metric_names;
  for (const auto& [key, value] : a_metrics) metric_names.insert(key);
  for (const auto& [key, value] : b_metrics) metric_names.insert(key);
  nlohmann::json metrics = nlohmann::json::array();
  std::vector<std::vector<std::string>> metric_rows = {{"METRIC", a.uri(), b.uri(), "DELTA"}};
  for (const auto& name : metric_names) {
    nlohmann::json av = a_metrics.count(name) ? a_metrics[name] : nlohmann::json();
    nlohmann::json bv = b_metrics.count(name) ? b_metrics[name] : nlohmann::json();
    nlohmann::json delta;
    if (av.is_number() && bv.is_number()) delta = bv.get<double>() - av.get<double>();
    metrics.push_back({{"name", name}, {"a", av}, {"b", bv}, {"delta", delta}});
    metric_rows.push_back({name, av.is_null() ? "-" : json_scalar_text(av), bv.is_null() ? "-" : json_scalar_text(bv),
                           delta.is_null() ? "" : fmt::format("{:+.6g}", delta.get<double>())});
  }

  std::map<std::string, nlohmann::json> a_params, b_params;
  flatten(a.params, "", a_params);
  flatten(b.params, "", b_params);
  std::set<std::string> param_names;
  for (const auto& [key, value] : a_params) param_names.insert(key);
  for (const auto& [key, value] : b_params) param_names.insert(key);
  nlohmann::json params = nlohmann::json::array();
  std::vector<std::vector<std::string>> param_rows = {{"PARAMETER", a.uri(), b.uri()}};
  for (const auto& name : param_names) {
    nlohmann::json av = a_params.count(name) ? a_params[name] : nlohmann::json();
    nlohmann::json bv = b_params.count(name) ? b_params[name] : nlohmann::json();
    if (av == bv) continue;
    params.push_back({{"name", name}, {"a", av}, {"b", bv}});
    param_rows.push_back({name, av.is_null() ? "-" : json_scalar_text(av), bv.is_null() ? "-" : json_scalar_text(bv)});
  }

  std::vector<std::string> added, removed, changed;
  size_t unchanged = 0;
  for (const auto& file : b.manifest.files) {
    const registry::FileEntry* old = a.manifest.find(file.path);
    if (!old) added.push_back(file.path);
    else if (old->sha256 != file.sha256) changed.push_back(file.path);
    else ++unchanged;
  }
  for (const auto& file : a.manifest.files)
    if (!b.manifest.find(file.path)) removed.push_back(file.path);

  nlohmann::json document = {
      {"a", a.uri()},
      {"b", b.uri()},
      {"metrics", metrics},
      {"params", params},
      {"files", {{"added", added}, {"removed", removed}, {"changed", changed}, {"unchanged", unchanged}}},
      {"same_files", a.manifest_sha256 == b.manifest_sha256},
      {"dataset", {{"a", optional_json(a.dataset_sha256)}, {"b", optional_json(b.dataset_sha256)},
                   {"same", a.dataset_sha256 == b.dataset_sha256}}},
  };
  console.result(document, [&](std::FILE* out) {
    if (metric_rows.size() > 1) print_table(out, metric_rows);
    else fmt::print(out, "no metrics recorded on either version\n");
    fmt::print(out, "\n");
    if (param_rows.size() > 1) print_table(out, param_rows);
    else fmt::print(out, "parameters: the same\n");
    fmt::print(out, "\nfiles: {} changed{}, {} added{}, {} removed{}, {} unchanged\n", changed.size(),
               changed.empty() ? "" : " (" + join(changed) + ")", added.size(),
               added.empty() ? "" : " (" + join(added) + ")", removed.size(),
               removed.empty() ? "" : " (" + join(removed) + ")", unchanged);
    fmt::print(out, "dataset: {}\n",
               a.dataset_sha256 == b.dataset_sha256
                   ? std::string(a.dataset_sha256 ? "the same" : "not recorded")
                   : fmt::format("{} -> {}", a.dataset_sha256.value_or("-").substr(0, 12),
                                 b.dataset_sha256.value_or("-").substr(0, 12)));
  });
}

// ---------------------------------------------------------------------------------------------
// lineage

void run_lineage(const std::string& text, const SharedOptions& shared, const Console& console) {
  ModelRef ref = parse_version_ref(text);
  Registry opened = open_registry(console, shared, Registry::Access::read);
  registry::Lineage lineage = opened.lineage(ref);
  const VersionInfo& info = lineage.version;
  nlohmann::json onnx = nlohmann::json::array(), exports = nlohmann::json::array(), remotes = nlohmann::json::array();
  for (const auto& file : info.manifest.files)
    if (file.path.size() > 5 && file.path.compare(file.path.size() - 5, 5, ".onnx") == 0)
      onnx.push_back({{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
  for (const auto& location : lineage.locations) {
    nlohmann::json entry = {{"uri", location.uri}, {"details", location.details}, {"at", location.at}, {"by", location.by}};
    (location.kind == "export" ? exports : remotes).push_back(entry);
  }
  nlohmann::json evaluations = nlohmann::json::array();
  for (const auto& evaluation : lineage.evaluations) evaluations.push_back(evaluation_json(evaluation));
  nlohmann::json document = {
      {"uri", info.uri()},
      {"parent", optional_json(info.parent)},
      {"ancestors", lineage.ancestors},
      {"missing_ancestor", optional_json(lineage.missing_ancestor)},
      {"children", lineage.children},
      {"dataset_sha256", optional_json(info.dataset_sha256)},
      {"base_checkpoint", optional_json(info.base_checkpoint)},
      {"source_path", info.source_path},
      {"onnx_files", onnx},
      {"exports", exports},
      {"remotes", remotes},
      {"evaluations", evaluations},
  };
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "{}\n", info.uri());
    std::string parents = join(lineage.ancestors, " <- ");
    if (lineage.missing_ancestor)
      parents += (parents.empty() ? "" : " <- ") + *lineage.missing_ancestor + " (deleted)";
    std::vector<std::string> onnx_text, export_text, remote_text, evaluation_text;
    for (const auto& file : onnx) onnx_text.push_back(file["path"].get<std::string>());
    for (const auto& entry : exports) export_text.push_back(entry["uri"].get<std::string>());
    for (const auto& entry : remotes) remote_text.push_back(entry["uri"].get<std::string>());
    for (const auto& evaluation : lineage.evaluations)
      evaluation_text.push_back(fmt::format("{} ({})", evaluation.split, short_time(evaluation.at)));
    print_table(out, {{"  parents:", parents.empty() ? "-" : parents},
                      {"  children:", lineage.children.empty() ? "-" : join(lineage.children)},
                      {"  dataset:", info.dataset_sha256 ? "sha256 " + *info.dataset_sha256 : "-"},
                      {"  base:", info.base_checkpoint.value_or("-")},
                      {"  source:", info.source_path},
                      {"  onnx:", onnx_text.empty() ? "-" : join(onnx_text)},
                      {"  exports:", export_text.empty() ? "-" : join(export_text)},
                      {"  remotes:", remote_text.empty() ? "-" : join(remote_text)},
                      {"  evaluated:", evaluation_text.empty() ? "-" : join(evaluation_text)}});
  });
}

// ---------------------------------------------------------------------------------------------
// verify, archive, delete

void run_verify(const std::string& text, const SharedOptions& shared, const Console& console) {
  ModelRef ref = parse_version_ref(text);
  Registry opened = open_registry(console, shared, Registry::Access::read);
  VersionInfo info = opened.version(ref, true);
  ProgressBar progress(console, "verify", static_cast<uint64_t>(info.total_size), "B");
  registry::VerifyReport report = registry::verify_manifest(info.source_path, info.manifest, console.threads(),
                                                            [&](uint64_t bytes) { progress.update(bytes); });
  progress.finish();
  nlohmann::json document = {{"uri", info.uri()},
                             {"source_path", info.source_path},
                             {"ok", report.ok()},
                             {"files", info.manifest.files.size()},
                             {"checked", report.checked},
                             {"missing", report.missing},
                             {"changed", report.changed},
                             {"untracked", report.untracked},
                             {"directory_missing", report.directory_missing}};
  console.result(document, [&](std::FILE* out) {
    if (report.ok())
      fmt::print(out, "{}: all {} files match the manifest ({} re-hashed)\n", info.uri(), info.manifest.files.size(),
                 human_size(info.total_size));
    for (const auto& path : report.changed) fmt::print(out, "changed    {}\n", path);
    if (!report.directory_missing)
      for (const auto& path : report.missing) fmt::print(out, "missing    {}\n", path);
    for (const auto& path : report.untracked) fmt::print(out, "untracked  {}\n", path);
  });
  if (report.directory_missing)
    fail<IntegrityError>("{}: its directory {} is gone; none of its {} files can be checked (restore or pull them)",
                         info.uri(), info.source_path, info.manifest.files.size());
  if (!report.ok()) {
    std::vector<std::string> parts;
    for (const auto& path : report.changed) parts.push_back(path + " (changed)");
    for (const auto& path : report.missing) parts.push_back(path + " (missing)");
    if (parts.size() > 5) {
      size_t more = parts.size() - 4;
      parts.resize(4);
      parts.push_back(fmt::format("{} more", more));
    }
    fail<IntegrityError>("{}: {} of {} files differ from the manifest in {}: {}", info.uri(),
                         report.changed.size() + report.missing.size(), info.manifest.files.size(), info.source_path,
                         join(parts));
  }
}

void run_migrate(const std::string& to, const SharedOptions& shared, const Console& console) {
  Registry source = open_registry(console, shared, Registry::Access::read);
  registry::RegistryOptions options = registry::default_options();
  if (shared.lock_timeout >= 0) options.lock_timeout_ms = static_cast<int>(std::lround(shared.lock_timeout * 1000));
  const bool new_file = !registry::is_postgresql_url(to) && !fs::exists(to);
  std::vector<registry::TableCopy> copies;
  std::string target_name;
  try {
    Registry target(to, Registry::Access::write, options);
    target_name = target.path().string();
    copies = registry::migrate_registry(source, target);
  } catch (...) {
    // A file made for the copy goes again: no empty or partial registry is left behind.
    if (new_file)
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(to + suffix);
    throw;
  }
  nlohmann::json tables = nlohmann::json::object();
  for (const auto& copy : copies) tables[copy.table] = copy.rows;
  console.result({{"from", source.path().string()}, {"to", target_name}, {"verified", true}, {"tables", tables}},
                 [&](std::FILE* out) {
                   fmt::print(out, "copied {} to {}, every row verified:\n", source.path().string(), target_name);
                   for (const auto& copy : copies) fmt::print(out, "  {:<14} {}\n", copy.table, copy.rows);
                 });
}

void run_archive(const StatusOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = parse_version_ref(options.ref);
  Registry opened = open_registry(console, shared, Registry::Access::write);
  std::string status = options.restore ? "active" : "archived";
  // Resolved once: after archiving, models:/NAME/latest names another version.
  VersionInfo info = opened.version(ref);
  ModelRef exact = info.ref();
  std::vector<std::string> aliases = opened.set_status(exact, status, options.force);
  console.result({{"uri", info.uri()}, {"status", status}, {"aliases", aliases}}, [&](std::FILE* out) {
    fmt::print(out, "{}: {}{}\n", info.uri(), options.restore ? "restored (active)" : "archived",
               aliases.empty() ? "" : fmt::format("; alias {} still points at it", join(aliases)));
  });
}

void run_delete(const StatusOptions& options, const SharedOptions& shared, const Console& console) {
  ModelRef ref = registry::parse_ref(options.ref, true);
  Registry opened = open_registry(console, shared, Registry::Access::write);
  if (!ref.names_version()) {
    int64_t versions = opened.delete_model(ref.name, options.force);
    console.result({{"uri", ref.uri()}, {"deleted_versions", versions}}, [&](std::FILE* out) {
      fmt::print(out, "deleted {} and its {} version{} (the files on disk were not touched)\n", ref.uri(), versions,
                 versions == 1 ? "" : "s");
    });
    return;
  }
  VersionInfo info = opened.version(ref);
  auto moves = opened.delete_version(info.ref(), options.force);
  nlohmann::json removed = nlohmann::json::array();
  for (const auto& move : moves) removed.push_back(move_json(move));
  console.result({{"uri", info.uri()}, {"removed_aliases", removed}, {"source_path", info.source_path}},
                 [&](std::FILE* out) {
                   fmt::print(out, "deleted {} (its files in {} were not touched)\n", info.uri(), info.source_path);
                   for (const auto& move : moves) fmt::print(out, "removed alias {}@{}\n", move.name, move.alias);
                 });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Registration

CommandAction register_registry(CLI::App& command, const Console& console) {
  auto shared = std::make_shared<SharedOptions>();
  command.require_subcommand(1);
  command.fallthrough();
  command.footer(
      "\nReferences: models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest, models:/NAME (the\n"
      "models:/ prefix is optional here). The registry is --registry, else $RECMODEL_REGISTRY, else\n"
      "~/.local/share/recmodel/registry.db: an SQLite file, or postgresql://USER@HOST:PORT/DB?sslmode=...\n"
      "(password from PGPASSWORD or ~/.pgpass). Run 'recmodel registry COMMAND --help' for one command.");
  command.add_option("--lock-timeout", shared->lock_timeout,
                     "Seconds to wait while another process writes the registry (default: "
                     "$RECMODEL_REGISTRY_TIMEOUT, else 30)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 86400.0).description(""));

  std::vector<std::pair<CLI::App*, CommandAction>> actions;
  auto add = [&](const char* name, const char* summary) {
    CLI::App* sub = command.add_subcommand(name, summary);
    sub->fallthrough();
    return sub;
  };

  {
    auto options = std::make_shared<RegisterOptions>();
    CLI::App* sub = add("register", "Record a model directory as the next version of NAME (hashes every file)");
    sub->add_option("NAME", options->name, "Model name (created on first use), e.g. query-intent")->required();
    sub->add_option("--path", options->path, "The model directory to register")->type_name("DIR")->required();
    sub->add_option("--tag", options->tags, "Version tag KEY=VALUE (repeatable)")->type_name("KEY=VALUE");
    sub->add_option("--description", options->description, "What this version is");
    sub->add_option("--parent", options->parent, "The version this one was trained from: REF, or a number of NAME")
        ->type_name("REF");
    sub->add_option("--dataset", options->dataset,
                    "Prepared dataset it was trained on: directory, manifest file or SHA-256 "
                    "(default: from recmodel.json)")
        ->type_name("DIR");
    sub->add_option("--base-checkpoint", options->base_checkpoint,
                    "Checkpoint it was fine-tuned from (default: from recmodel.json)")
        ->type_name("REF");
    sub->add_option("--metric", options->metrics, "Metric NAME=NUMBER, over recmodel.json's (repeatable)")
        ->type_name("NAME=NUMBER");
    sub->add_option("--param", options->params, "Parameter NAME=VALUE, over recmodel.json's (repeatable)")
        ->type_name("NAME=VALUE");
    sub->add_option("--manifest", options->manifest,
                    "Pre-hashed manifest JSON ({\"files\": [{path, size, sha256}]}): skip hashing, check sizes")
        ->type_name("FILE");
    actions.emplace_back(sub, [options, shared, &console] { run_register(*options, *shared, console); });
  }
  {
    auto options = std::make_shared<ListOptions>();
    CLI::App* sub = add("list", "List the models, or the versions of one model (newest first)");
    sub->add_option("NAME", options->name, "A model: list its versions");
    sub->add_option("--tag", options->tag, "Only with this tag (KEY or KEY=VALUE)")->type_name("KEY=VALUE");
    sub->add_option("--alias", options->alias, "Only the version (or models) with this alias")->type_name("ALIAS");
    sub->add_option("--status", options->status, "Versions by status")
        ->check(one_of({"active", "archived", "all"}));
    sub->add_option("--limit", options->limit, "Only the newest N versions; 0 = all")
        ->type_name("N")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""));
    actions.emplace_back(sub, [options, shared, &console] { run_list(*options, *shared, console); });
  }
  {
    auto ref = std::make_shared<std::string>();
    CLI::App* sub = add("show", "Show one version (files, metrics, lineage fields) or one model");
    sub->add_option("REF", *ref, "models:/NAME/VERSION, @ALIAS, /latest, or models:/NAME")->required();
    actions.emplace_back(sub, [ref, shared, &console] { run_show(*ref, *shared, console); });
  }
  {
    auto options = std::make_shared<PromoteOptions>();
    CLI::App* sub = add("promote", "Point an alias (production, staging, ...) at a version, atomically");
    sub->add_option("REF", options->ref, "The version: models:/NAME/VERSION, @ALIAS or /latest")->required();
    sub->add_option("--alias", options->alias, "The alias to move or create")->type_name("ALIAS")->required();
    sub->add_option("--reason", options->reason, "Why, for the alias history");
    sub->add_option("--expect", options->expect,
                    "Only if the alias points at this version now (none = it must not exist); else exit 6")
        ->type_name("VERSION");
    actions.emplace_back(sub, [options, shared, &console] { run_promote(*options, *shared, console); });
  }
  {
    auto options = std::make_shared<PromoteOptions>();
    CLI::App* sub = add("unalias", "Remove an alias (recorded in its history)");
    sub->add_option("REF", options->ref, "models:/NAME@ALIAS")->required();
    sub->add_option("--reason", options->reason, "Why, for the alias history");
    actions.emplace_back(sub, [options, shared, &console] { run_unalias(*options, *shared, console); });
  }
  {
    auto options = std::make_shared<TagOptions>();
    CLI::App* sub = add("tag", "Set or remove tags of a model (models:/NAME) or a version");
    sub->add_option("REF", options->ref, "models:/NAME or a version reference")->required();
    sub->add_option("TAGS", options->set, "KEY=VALUE tags to set");
    sub->add_option("--remove", options->remove, "Remove the tag KEY (repeatable)")->type_name("KEY");
    sub->add_option("--description", options->description, "Set the model's description")
        ->each([options](const std::string&) { options->has_description = true; });
    actions.emplace_back(sub, [options, shared, &console] { run_tag(*options, *shared, console); });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    CLI::App* sub = add("compare", "Metric and parameter deltas and changed files between two versions");
    sub->add_option("REFS", *refs, "Two versions: A B (deltas are B - A)")->required()->expected(2);
    actions.emplace_back(sub, [refs, shared, &console] { run_compare(*refs, *shared, console); });
  }
  {
    auto ref = std::make_shared<std::string>();
    CLI::App* sub = add("lineage", "Parents, children, dataset, base checkpoint, exports and remote copies");
    sub->add_option("REF", *ref, "A version reference")->required();
    actions.emplace_back(sub, [ref, shared, &console] { run_lineage(*ref, *shared, console); });
  }
  {
    auto options = std::make_shared<HistoryOptions>();
    CLI::App* sub = add("history", "Every move of an alias (or of all a model's aliases): when, who, why");
    sub->add_option("REF", options->ref, "models:/NAME@ALIAS, or models:/NAME for all its aliases")->required();
    sub->add_option("--at", options->at,
                    "Say which version was live at TIME instead (2025-05-03T14:00; local time unless Z or +HH:MM)")
        ->type_name("TIME");
    actions.emplace_back(sub, [options, shared, &console] { run_history(*options, *shared, console); });
  }
  {
    auto options = std::make_shared<PromoteOptions>();
    CLI::App* sub = add("rollback", "Move an alias back to the version it pointed at before its last move");
    sub->add_option("REF", options->ref, "models:/NAME@ALIAS")->required();
    sub->add_option("--reason", options->reason, "Why, for the alias history");
    actions.emplace_back(sub, [options, shared, &console] { run_rollback(*options, *shared, console); });
  }
  {
    auto ref = std::make_shared<std::string>();
    CLI::App* sub = add("verify", "Re-hash a version's files against its manifest (exit 6 on a mismatch)");
    sub->add_option("REF", *ref, "A version reference")->required();
    actions.emplace_back(sub, [ref, shared, &console] { run_verify(*ref, *shared, console); });
  }
  {
    auto options = std::make_shared<StatusOptions>();
    CLI::App* sub = add("archive", "Mark a version archived (hidden from /latest), or active again");
    sub->add_option("REF", options->ref, "A version reference")->required();
    sub->add_flag("--restore", options->restore, "Make it active again");
    sub->add_flag("--force", options->force, "Archive it even though an alias points at it");
    actions.emplace_back(sub, [options, shared, &console] { run_archive(*options, *shared, console); });
  }
  {
    auto options = std::make_shared<StatusOptions>();
    CLI::App* sub = add("delete", "Delete a version's records (or a whole model's); files on disk stay");
    sub->add_option("REF", options->ref, "A version reference, or models:/NAME for the model")->required();
    sub->add_flag("--force", options->force, "Delete even though aliases point at it (they are removed)");
    actions.emplace_back(sub, [options, shared, &console] { run_delete(*options, *shared, console); });
  }

  {
    auto to = std::make_shared<std::string>();
    CLI::App* sub = add("migrate", "Copy the whole registry into an empty one on the other backend, verified");
    sub->add_option("--to", *to,
                    "The registry to fill: postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass), "
                    "or FILE.db")
        ->type_name("URL|FILE")
        ->required();
    actions.emplace_back(sub, [to, shared, &console] { run_migrate(*to, *shared, console); });
  }

  return [actions] {
    for (const auto& [sub, action] : actions)
      if (sub->parsed()) action();
  };
}

}  // namespace recmodel
