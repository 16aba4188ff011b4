#include "registry/registry.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "common/suggest.h"
#include "common/error.h"
#include "common/json.h"
#include "common/files.h"
#include "registry/postgres.h"
#include "registry/schema.h"
#include "registry/sqlite.h"

#ifndef RECMODEL_VERSION
#define RECMODEL_VERSION "0"
#endif

namespace recmodel::registry {

namespace {

// Tags and aliases come along as text lists in columns 17 and 18, so listing 10,000 versions
// is one query: keys and values separated by \x1f, entries by \x1e.
const char* kVersionColumns =
    "v.id, m.name, v.version, v.source_path, v.manifest_sha256, v.file_count, v.total_size, v.metrics, v.params, "
    "v.dataset_sha256, v.parent_name, v.parent_version, v.base_checkpoint, v.created_at, v.created_by, v.status, "
    "v.description, "
    "(SELECT group_concat(key || char(31) || value, char(30)) FROM version_tags t WHERE t.version_id = v.id), "
    "(SELECT group_concat(alias, char(30)) FROM aliases a WHERE a.version_id = v.id)";

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  for (size_t at; (at = text.find(separator, start)) != std::string::npos; start = at + 1)
    parts.push_back(text.substr(start, at - start));
  parts.push_back(text.substr(start));
  return parts;
}

// A column the registry wrote itself; a damaged or hostile database file reads as no value
// rather than as a stack overflow.
nlohmann::json parse_json_column(const std::string& text) {
  std::string why;
  auto value = try_parse_json(text, why);
  return why.empty() ? value : nlohmann::json::object();
}

// Fills the scalar fields of a version from a row selected with kVersionColumns.
VersionInfo version_from_row(const Statement& row) {
  VersionInfo info;
  info.name = row.text(1);
  info.version = row.int64(2);
  info.source_path = row.text(3);
  info.manifest_sha256 = row.text(4);
  info.file_count = row.int64(5);
  info.total_size = row.int64(6);
  info.metrics = parse_json_column(row.text(7));
  info.params = parse_json_column(row.text(8));
  info.dataset_sha256 = row.optional_text(9);
  if (!row.is_null(10)) info.parent = version_uri(row.text(10), row.int64(11));
  info.base_checkpoint = row.optional_text(12);
  info.created_at = row.text(13);
  info.created_by = row.text(14);
  info.status = row.text(15);
  info.description = row.text(16);
  for (const auto& entry : split(row.text(17), '\x1e')) {
    size_t at = entry.find('\x1f');
    info.tags[entry.substr(0, at)] = at == std::string::npos ? "" : entry.substr(at + 1);
  }
  info.aliases = split(row.text(18), '\x1e');
  std::sort(info.aliases.begin(), info.aliases.end());
  return info;
}


std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// Returns the first string member of `object` among `keys`, or none.
std::optional<std::string> string_member(const nlohmann::json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys)
    if (object.contains(key) && object[key].is_string()) return object[key].get<std::string>();
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Paths, users, times

fs::path registry_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("RECMODEL_REGISTRY");
  if (env && *env) return env;
  const char* data_home = std::getenv("XDG_DATA_HOME");
  if (data_home && *data_home) return fs::path(data_home) / "recmodel" / "registry.db";
  const char* home = std::getenv("HOME");
  if (home && *home) return fs::path(home) / ".local" / "share" / "recmodel" / "registry.db";
  fail<UsageError>("no registry file: set --registry PATH or RECMODEL_REGISTRY (HOME is not set either)");
}

bool is_default_registry_path(const std::string& flag) {
  const char* env = std::getenv("RECMODEL_REGISTRY");
  return flag.empty() && !(env && *env);
}

bool registry_exists(const fs::path& location) {
  if (is_postgresql_url(location.string())) {
    PostgresDatabase db(location.string(), default_options().lock_timeout_ms);
    return has_registry(db);
  }
  std::error_code ec;
  return fs::exists(location, ec);
}

std::string registry_display_name(const fs::path& location) {
  return is_postgresql_url(location.string()) ? redact_url(location.string()) : location.string();
}

std::string current_user() {
  const char* env = std::getenv("RECMODEL_USER");
  if (env && *env) return env;
  std::string user;
  if (const passwd* entry = getpwuid(geteuid()); entry && entry->pw_name) user = entry->pw_name;
  if (user.empty()) {
    const char* name = std::getenv("USER");
    user = name && *name ? name : fmt::format("uid{}", geteuid());
  }
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) == 0 && host[0]) user += std::string("@") + host;
  return user;
}

std::string format_time(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int millis = static_cast<int>(ms - static_cast<int64_t>(seconds) * 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

int64_t parse_time(const std::string& text) {
  static const std::regex pattern(
      R"(^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)? *(Z|[+-]\d{2}(?::?\d{2})?)?$)");
  std::smatch m;
  if (!std::regex_match(text, m, pattern))
    fail<UsageError>("'{}' is not a time; use 2025-05-03, 2025-05-03T14:00, '2025-05-03 14:00:30' or "
                     "2025-05-03T14:00:00Z (without Z or +HH:MM it is local time)",
                     text);
  auto number = [&](int group) { return m[group].matched ? std::stoi(m[group].str()) : 0; };
  std::tm tm{};
  tm.tm_year = number(1) - 1900;
  tm.tm_mon = number(2) - 1;
  tm.tm_mday = number(3);
  tm.tm_hour = number(4);
  tm.tm_min = number(5);
  tm.tm_sec = number(6);
  int millis = m[7].matched ? std::stoi((m[7].str() + "00").substr(0, 3)) : 0;
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    fail<UsageError>("'{}' is not a valid date and time", text);
  std::tm check = tm;
  std::time_t seconds;
  if (m[8].matched) {
    seconds = timegm(&tm);
    std::string zone = m[8].str();
    if (zone != "Z") {
      int sign = zone[0] == '-' ? -1 : 1;
      std::string digits;
      for (char c : zone.substr(1))
        if (c != ':') digits += c;
      int hours = std::stoi(digits.substr(0, 2));
      int minutes = digits.size() > 2 ? std::stoi(digits.substr(2)) : 0;
      seconds -= sign * (hours * 3600 + minutes * 60);
    }
  } else {
    tm.tm_isdst = -1;
    seconds = mktime(&tm);
  }
  if (tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon)
    fail<UsageError>("'{}' is not a valid date (no such day)", text);
  return static_cast<int64_t>(seconds) * 1000 + millis;
}

RegistryOptions default_options() {
  RegistryOptions options;
  if (const char* timeout = std::getenv("RECMODEL_REGISTRY_TIMEOUT"); timeout && *timeout) {
    char* end = nullptr;
    double seconds = std::strtod(timeout, &end);
    if (end == timeout || *end != '\0' || !(seconds >= 0) || seconds > 86400)
      fail<UsageError>("RECMODEL_REGISTRY_TIMEOUT='{}' is not a number of seconds (e.g. 30)", timeout);
    options.lock_timeout_ms = static_cast<int>(seconds * 1000);
  }
  options.user = current_user();
  options.recmodel_version = RECMODEL_VERSION;
  return options;
}

// ---------------------------------------------------------------------------------------------
// Opening

Registry::Registry(const fs::path& path, Access access, RegistryOptions options, bool create_directories)
    : options_(std::move(options)) {
  if (is_postgresql_url(path.string())) {
    db_ = std::make_unique<PostgresDatabase>(path.string(), options_.lock_timeout_ms);
    if (access == Access::read && !has_registry(*db_))
      fail<NotFoundError>("{}: no registry in this database yet ('recmodel registry register NAME --path DIR' "
                          "creates it; or choose another --registry)",
                          db_->path().string());
    migration_backup_ = prepare_schema(*db_, true, options_.recmodel_version);
    return;
  }
  std::error_code ec;
  if (fs::is_directory(path, ec))
    fail<DataError>("{}: is a directory; --registry names the registry file (e.g. {})", path.string(),
                    (path / "registry.db").string());
  bool exists = fs::exists(path, ec);
  OpenMode mode = OpenMode::read_write;
  if (!exists) {
    if (access == Access::read)
      fail<NotFoundError>("{}: no registry here yet ('recmodel registry register NAME --path DIR' creates it; or "
                          "choose another --registry)",
                          path.string());
    fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    if (!fs::is_directory(parent, ec)) {
      if (!create_directories)
        fail<NotFoundError>("{}: directory {} does not exist; create it or choose another --registry", path.string(),
                            parent.string());
      fs::create_directories(parent, ec);
      if (ec) fail<DataError>("{}: cannot create directory {}: {}", path.string(), parent.string(), ec.message());
      fs::permissions(parent, fs::perms::owner_all, ec);
    }
    mode = OpenMode::create;
  } else {
    // A file without write bits is read-only by intent, even for root (who may write anyway).
    struct stat st {};
    bool writable = ::stat(path.c_str(), &st) == 0 && (st.st_mode & 0222) != 0 && ::access(path.c_str(), W_OK) == 0;
    if (!writable) {
      if (access == Access::write)
        fail<DataError>("{}: the registry is read-only (no write permission); recording needs write access to it "
                        "and its directory",
                        path.string());
      mode = OpenMode::read_only;
    }
  }
  db_ = std::make_unique<SqliteDatabase>(path, mode, options_.lock_timeout_ms);
  db_->exec("PRAGMA foreign_keys = ON", "opening it");
  // In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of recmodel or of
  // the job loses nothing and a power cut can lose only the last commits, never corrupt the
  // file; FULL would cap registering at the disk's fsync rate (~150/s here).
  db_->exec("PRAGMA synchronous = NORMAL", "opening it");
  migration_backup_ = prepare_schema(*db_, mode != OpenMode::read_only, options_.recmodel_version);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Registry::now() {
  return format_time(options_.clock_ms ? options_.clock_ms() : now_ms());
}

std::string Registry::who() const { return options_.user.empty() ? current_user() : options_.user; }

template <typename Call>
auto Registry::retrying(Call&& call) -> decltype(call()) {
  auto* postgres = dynamic_cast<PostgresDatabase*>(db_.get());
  // A call made inside another (lineage reads versions) leaves retrying to the outermost, whose
  // snapshot the lost connection took with it.
  struct Depth {
    int& depth;
    explicit Depth(int& d) : depth(d) { ++depth; }
    ~Depth() { --depth; }
  } depth(retry_depth_);
  if (retry_depth_ > 1 || (postgres && !postgres->idle() && postgres->in_transaction())) postgres = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.lock_timeout_ms);
  for (;;) {
    try {
      return call();
    } catch (const ConnectionLostError&) {
      if (!postgres || std::chrono::steady_clock::now() >= deadline) throw;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      postgres->reconnect(static_cast<int>(left.count()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Lookups

int64_t Registry::model_id(const std::string& name) {
  validate_model_name(name);
  Statement find(*db_, "SELECT id FROM models WHERE name = ?1");
  find.bind(1, name);
  if (find.step()) return find.int64(0);
  std::vector<std::string> names;
  Statement all(*db_, "SELECT name FROM models ORDER BY name");
  while (all.step()) names.push_back(all.text(0));
  std::string hint = closest_match(name, names);
  fail<NotFoundError>("no model '{}' in the registry {}{}; 'recmodel registry list' shows the models", name,
                      db_->path().string(), hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint));
}

Registry::Resolved Registry::resolve(const ModelRef& ref) {
  int64_t mid = model_id(ref.name);
  switch (ref.kind) {
    case ModelRef::Kind::version: {
      Statement find(*db_, "SELECT id FROM versions WHERE model_id = ?1 AND version = ?2");
      find.bind(1, mid).bind(2, ref.version);
      if (find.step()) return {mid, find.int64(0), ref.version};
      Statement range(*db_, "SELECT next_version, (SELECT count(*) FROM versions WHERE model_id = ?1) FROM models "
                            "WHERE id = ?1");
      range.bind(1, mid);
      range.step();
      int64_t next = range.int64(0);
      if (ref.version < next)
        fail<NotFoundError>("{}: version {} of {} was deleted", ref.uri(), ref.version, ref.name);
      fail<NotFoundError>("{}: {} has no version {} (its newest is {})", ref.uri(), ref.name, ref.version,
                          next > 1 ? std::to_string(next - 1) : std::string("none"));
    }
    case ModelRef::Kind::alias: {
      Statement find(*db_,
                     "SELECT a.version_id, v.version FROM aliases a JOIN versions v ON v.id = a.version_id "
                     "WHERE a.model_id = ?1 AND a.alias = ?2");
      find.bind(1, mid).bind(2, ref.alias);
      if (find.step()) return {mid, find.int64(0), find.int64(1)};
      std::vector<std::string> aliases;
      Statement all(*db_, "SELECT alias FROM aliases WHERE model_id = ?1 ORDER BY alias");
      all.bind(1, mid);
      while (all.step()) aliases.push_back(all.text(0));
      std::string hint = closest_match(ref.alias, aliases);
      fail<NotFoundError>("{}: {} has no alias '{}'{}{}", ref.uri(), ref.name, ref.alias,
                          hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint),
                          aliases.empty() ? "; it has no aliases yet ('recmodel registry promote')"
                                          : "; its aliases: " + join(aliases));
    }
    case ModelRef::Kind::latest: {
      Statement find(*db_, "SELECT id, version FROM versions WHERE model_id = ?1 AND status = 'active' "
                           "ORDER BY version DESC LIMIT 1");
      find.bind(1, mid);
      if (find.step()) return {mid, find.int64(0), find.int64(1)};
      fail<NotFoundError>("{}: {} has no active version", ref.uri(), ref.name);
    }
    case ModelRef::Kind::model:
      break;
  }
  fail<UsageError>("{} names a model, and this needs one version: models:/{}/VERSION, models:/{}@ALIAS or "
                   "models:/{}/latest",
                   ref.uri(), ref.name, ref.name, ref.name);
}

VersionInfo Registry::read_version(int64_t version_id, bool with_files) {
  Statement row(*db_, fmt::format("SELECT {} FROM versions v JOIN models m ON m.id = v.model_id WHERE v.id = ?1",
                                  kVersionColumns));
  row.bind(1, version_id);
  if (!row.step()) throw Error(ExitCode::internal, "a version vanished inside a transaction");
  VersionInfo info = version_from_row(row);
  if (with_files) {
    Statement files(*db_, "SELECT path, size, sha256 FROM version_files WHERE version_id = ?1 ORDER BY path");
    files.bind(1, version_id);
    while (files.step())
      info.manifest.files.push_back({files.text(0), static_cast<uint64_t>(files.int64(1)), files.text(2)});
  }
  return info;
}

// ---------------------------------------------------------------------------------------------
// Reading

std::vector<ModelInfo> Registry::list_models(const VersionFilter& filter) {
  return retrying([&] {
    ReadTransaction snapshot(*db_);
    std::string sql =
        "SELECT m.id, m.name, m.description, m.created_at, m.created_by, "
        "(SELECT count(*) FROM versions v WHERE v.model_id = m.id), "
        "(SELECT max(v.version) FROM versions v WHERE v.model_id = m.id AND v.status = 'active'), "
        "(SELECT max(v.created_at) FROM versions v WHERE v.model_id = m.id) "
        "FROM models m WHERE 1 = 1";
    if (filter.tag)
      sql += filter.tag->second ? " AND EXISTS (SELECT 1 FROM model_tags t WHERE t.model_id = m.id AND t.key = ?1 AND "
                                  "t.value = ?2)"
                                : " AND EXISTS (SELECT 1 FROM model_tags t WHERE t.model_id = m.id AND t.key = ?1)";
    if (filter.alias) sql += " AND EXISTS (SELECT 1 FROM aliases a WHERE a.model_id = m.id AND a.alias = ?3)";
    sql += " ORDER BY m.name";
    Statement query(*db_, sql);
    if (filter.tag) {
      query.bind(1, filter.tag->first);
      if (filter.tag->second) query.bind(2, *filter.tag->second);
    }
    if (filter.alias) query.bind(3, *filter.alias);
    std::vector<ModelInfo> models;
    std::map<int64_t, size_t> index;
    while (query.step()) {
      ModelInfo info;
      info.name = query.text(1);
      info.description = query.text(2);
      info.created_at = query.text(3);
      info.created_by = query.text(4);
      info.version_count = query.int64(5);
      info.latest = query.optional_int64(6);
      info.updated_at = query.is_null(7) ? info.created_at : query.text(7);
      index[query.int64(0)] = models.size();
      models.push_back(std::move(info));
    }
    Statement tags(*db_, "SELECT model_id, key, value FROM model_tags ORDER BY model_id, key");
    while (tags.step())
      if (auto it = index.find(tags.int64(0)); it != index.end()) models[it->second].tags[tags.text(1)] = tags.text(2);
    Statement aliases(*db_, "SELECT a.model_id, a.alias, v.version FROM aliases a JOIN versions v ON v.id = a.version_id");
    while (aliases.step())
      if (auto it = index.find(aliases.int64(0)); it != index.end())
        models[it->second].aliases[aliases.text(1)] = aliases.int64(2);
    return models;
  });
}

ModelInfo Registry::model(const std::string& name) {
  return retrying([&] {
    validate_model_name(name);
    ReadTransaction snapshot(*db_);
    model_id(name);  // not found → a sentence with a suggestion
    for (auto& info : list_models())
      if (info.name == name) return info;
    throw Error(ExitCode::internal, "a model vanished inside a transaction");
  });
}

std::vector<VersionInfo> Registry::list_versions(const std::string& name, const VersionFilter& filter) {
  return retrying([&] {
    ReadTransaction snapshot(*db_);
    int64_t mid = model_id(name);
    std::string sql = fmt::format("SELECT {} FROM versions v JOIN models m ON m.id = v.model_id WHERE v.model_id = ?1",
                                  kVersionColumns);
    if (filter.status) sql += " AND v.status = ?2";
    if (filter.tag)
      sql += filter.tag->second ? " AND EXISTS (SELECT 1 FROM version_tags t WHERE t.version_id = v.id AND t.key = ?3 "
                                  "AND t.value = ?4)"
                                : " AND EXISTS (SELECT 1 FROM version_tags t WHERE t.version_id = v.id AND t.key = ?3)";
    if (filter.alias) sql += " AND EXISTS (SELECT 1 FROM aliases a WHERE a.version_id = v.id AND a.alias = ?5)";
    sql += " ORDER BY v.version DESC";
    if (filter.limit > 0) sql += " LIMIT ?6";
    Statement query(*db_, sql);
    query.bind(1, mid);
    if (filter.status) query.bind(2, *filter.status);
    if (filter.tag) {
      query.bind(3, filter.tag->first);
      if (filter.tag->second) query.bind(4, *filter.tag->second);
    }
    if (filter.alias) query.bind(5, *filter.alias);
    if (filter.limit > 0) query.bind(6, filter.limit);
    std::vector<VersionInfo> versions;
    while (query.step()) versions.push_back(version_from_row(query));
    return versions;
  });
}

VersionInfo Registry::version(const ModelRef& ref, bool with_files) {
  return retrying([&] {
    ReadTransaction snapshot(*db_);
    return read_version(resolve(ref).version_id, with_files);
  });
}

std::vector<AliasMove> Registry::history(const std::string& name, const std::optional<std::string>& alias) {
  return retrying([&] {
    ReadTransaction snapshot(*db_);
    int64_t mid = model_id(name);
    Statement query(*db_, alias ? "SELECT alias, from_version, to_version, moved_at, moved_by, reason FROM alias_history "
                                  "WHERE model_id = ?1 AND alias = ?2 ORDER BY id"
                                : "SELECT alias, from_version, to_version, moved_at, moved_by, reason FROM alias_history "
                                  "WHERE model_id = ?1 ORDER BY id");
    query.bind(1, mid);
    if (alias) query.bind(2, *alias);
    std::vector<AliasMove> moves;
    while (query.step())
      moves.push_back({name, query.text(0), query.optional_int64(1), query.optional_int64(2), query.text(3),
                       query.text(4), query.text(5)});
    if (alias && moves.empty()) {
      ModelRef ref{ModelRef::Kind::alias, name, 0, *alias};
      resolve(ref);  // throws the not-found sentence with suggestions
    }
    return moves;
  });
}

std::optional<int64_t> Registry::alias_at(const std::string& name, const std::string& alias, int64_t at_ms) {
  return retrying([&]() -> std::optional<int64_t> {
    ReadTransaction snapshot(*db_);
    int64_t mid = model_id(name);
    Statement query(*db_, "SELECT to_version FROM alias_history WHERE model_id = ?1 AND alias = ?2 AND moved_at <= ?3 "
                          "ORDER BY id DESC LIMIT 1");
    query.bind(1, mid).bind(2, alias).bind(3, format_time(at_ms));
    if (!query.step()) return std::nullopt;
    return query.optional_int64(0);
  });
}

std::vector<Evaluation> Registry::evaluations(const ModelRef& ref) {
  return retrying([&] {
    ReadTransaction snapshot(*db_);
    Resolved r = resolve(ref);
    Statement query(*db_, "SELECT split, dataset_sha256, metrics, recorded_at, recorded_by, profile FROM evaluations "
                          "WHERE version_id = ?1 ORDER BY id");
    query.bind(1, r.version_id);
    std::vector<Evaluation> out;
    while (query.step()) {
      out.push_back({query.text(0), query.optional_text(1), parse_json_column(query.text(2)), query.text(3), query.text(4),
                     nullptr});
      if (auto profile = query.optional_text(5)) out.back().profile = parse_json_column(*profile);
    }
    return out;
  });
}

Lineage Registry::lineage(const ModelRef& ref) {
  return retrying([&] {
    ReadTransaction snapshot(*db_);
    Resolved r = resolve(ref);
    Lineage lineage;
    lineage.version = read_version(r.version_id, true);
    std::set<std::string> seen{lineage.version.uri()};
    std::optional<std::string> parent = lineage.version.parent;
    Statement find_parent(*db_, "SELECT v.parent_name, v.parent_version FROM versions v JOIN models m ON m.id = "
                                "v.model_id WHERE m.name = ?1 AND v.version = ?2");
    while (parent && !seen.count(*parent)) {
      seen.insert(*parent);
      ModelRef parent_ref = parse_ref(*parent, false);
      find_parent.reset();
      find_parent.bind(1, parent_ref.name).bind(2, parent_ref.version);
      if (!find_parent.step()) {
        lineage.missing_ancestor = parent;
        break;
      }
      lineage.ancestors.push_back(*parent);
      parent = find_parent.is_null(0) ? std::nullopt
                                      : std::optional<std::string>(version_uri(find_parent.text(0), find_parent.int64(1)));
    }
    Statement children(*db_, "SELECT m.name, v.version FROM versions v JOIN models m ON m.id = v.model_id "
                             "WHERE v.parent_name = ?1 AND v.parent_version = ?2 ORDER BY m.name, v.version");
    children.bind(1, lineage.version.name).bind(2, lineage.version.version);
    while (children.step()) lineage.children.push_back(version_uri(children.text(0), children.int64(1)));
    Statement evaluations(*db_, "SELECT split, dataset_sha256, metrics, recorded_at, recorded_by FROM evaluations "
                                "WHERE version_id = ?1 ORDER BY id");
    evaluations.bind(1, r.version_id);
    while (evaluations.step())
      lineage.evaluations.push_back({evaluations.text(0), evaluations.optional_text(1),
                                     parse_json_column(evaluations.text(2)), evaluations.text(3), evaluations.text(4),
                                     nullptr});
    Statement locations(*db_, "SELECT kind, uri, details, recorded_at, recorded_by FROM locations WHERE version_id = ?1 "
                              "ORDER BY kind, id");
    locations.bind(1, r.version_id);
    while (locations.step())
      lineage.locations.push_back({locations.text(0), locations.text(1), parse_json_column(locations.text(2)),
                                   locations.text(3), locations.text(4)});
    return lineage;
  });
}

// ---------------------------------------------------------------------------------------------
// Writing

VersionInfo Registry::register_version(const RegisterRequest& request) {
  validate_model_name(request.name);
  for (const auto& [key, value] : request.tags) {
    validate_tag_key(key);
    validate_tag_value(key, value);
  }
  if (request.manifest.files.empty()) fail<DataError>("{}: no files to register", request.path.string());
  if (!request.metrics.is_object() || !request.params.is_object())
    throw Error(ExitCode::internal, "register_version: metrics and params must be JSON objects");
  std::string at = now();
  std::string by = who();

  WriteTransaction transaction(*db_);
  int64_t mid = 0;
  int64_t number = 1;
  {
    Statement find(*db_, "SELECT id, next_version FROM models WHERE name = ?1");
    find.bind(1, request.name);
    if (find.step()) {
      mid = find.int64(0);
      number = find.int64(1);
    } else {
      Statement insert(*db_, "INSERT INTO models (name, created_at, created_by) VALUES (?1, ?2, ?3) RETURNING id");
      insert.bind(1, request.name).bind(2, at).bind(3, by);
      insert.step();
      mid = insert.int64(0);
      insert.reset();  // finished: SQLite cannot commit while a statement is mid-way
    }
  }
  std::optional<std::string> parent_name;
  std::optional<int64_t> parent_version;
  if (request.parent) {
    Resolved parent = resolve(*request.parent);
    parent_name = request.parent->name;
    parent_version = parent.version;
  }
  Statement bump(*db_, "UPDATE models SET next_version = ?1 WHERE id = ?2");
  bump.bind(1, number + 1).bind(2, mid).run();

  Statement insert(*db_,
                   "INSERT INTO versions (model_id, version, source_path, manifest_sha256, file_count, total_size, "
                   "metrics, params, dataset_sha256, parent_name, parent_version, base_checkpoint, created_at, "
                   "created_by, status, description) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'active', ?15) RETURNING id");
  insert.bind(1, mid)
      .bind(2, number)
      .bind(3, request.path.string())
      .bind(4, request.manifest.digest())
      .bind(5, static_cast<int64_t>(request.manifest.files.size()))
      .bind(6, static_cast<int64_t>(request.manifest.total_size()))
      .bind(7, request.metrics.dump())
      .bind(8, request.params.dump())
      .bind(9, request.dataset_sha256)
      .bind(10, parent_name)
      .bind(11, parent_version)
      .bind(12, request.base_checkpoint)
      .bind(13, at)
      .bind(14, by)
      .bind(15, request.description);
  insert.step();
  const int64_t vid = insert.int64(0);
  insert.reset();
  Statement file(*db_, "INSERT INTO version_files (version_id, path, size, sha256) VALUES (?1, ?2, ?3, ?4)");
  for (const auto& entry : request.manifest.files) {
    file.bind(1, vid).bind(2, entry.path).bind(3, static_cast<int64_t>(entry.size)).bind(4, entry.sha256);
    file.run();
  }
  Statement tag(*db_, "INSERT INTO version_tags (version_id, key, value) VALUES (?1, ?2, ?3)");
  for (const auto& [key, value] : request.tags) {
    tag.bind(1, vid).bind(2, key).bind(3, value);
    tag.run();
  }
  VersionInfo info = read_version(vid, false);
  transaction.commit();
  return info;
}

AliasMove Registry::move_alias(int64_t mid, const std::string& name, const std::string& alias,
                               std::optional<int64_t> to_version_id, std::optional<int64_t> to_version,
                               const std::string& reason) {
  Statement current(*db_, "SELECT v.version FROM aliases a JOIN versions v ON v.id = a.version_id "
                          "WHERE a.model_id = ?1 AND a.alias = ?2");
  current.bind(1, mid).bind(2, alias);
  std::optional<int64_t> from;
  if (current.step()) from = current.int64(0);
  AliasMove move{name, alias, from, to_version, now(), who(), reason};
  if (to_version_id) {
    Statement upsert(*db_, "INSERT INTO aliases (model_id, alias, version_id, moved_at) VALUES (?1, ?2, ?3, ?4) "
                           "ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id, "
                           "moved_at = excluded.moved_at");
    upsert.bind(1, mid).bind(2, alias).bind(3, *to_version_id).bind(4, move.at).run();
  } else {
    Statement remove(*db_, "DELETE FROM aliases WHERE model_id = ?1 AND alias = ?2");
    remove.bind(1, mid).bind(2, alias).run();
  }
  Statement record(*db_, "INSERT INTO alias_history (model_id, alias, from_version, to_version, moved_at, moved_by, "
                         "reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  record.bind(1, mid)
      .bind(2, alias)
      .bind(3, move.from)
      .bind(4, move.to)
      .bind(5, move.at)
      .bind(6, move.by)
      .bind(7, move.reason)
      .run();
  return move;
}

AliasMove Registry::promote(const ModelRef& ref, const std::string& alias, const std::string& reason,
                            std::optional<int64_t> expect) {
  validate_alias(alias);
  WriteTransaction transaction(*db_);
  Resolved target = resolve(ref);
  Statement status(*db_, "SELECT status FROM versions WHERE id = ?1");
  status.bind(1, target.version_id);
  status.step();
  std::string uri = version_uri(ref.name, target.version);
  if (status.text(0) == "archived")
    fail<UsageError>("{} is archived; restore it first ('recmodel registry archive {} --restore') before pointing "
                     "'{}' at it",
                     uri, uri, alias);
  Statement current(*db_, "SELECT v.version FROM aliases a JOIN versions v ON v.id = a.version_id "
                          "WHERE a.model_id = ?1 AND a.alias = ?2");
  current.bind(1, target.model_id).bind(2, alias);
  std::optional<int64_t> now_at;
  if (current.step()) now_at = current.int64(0);
  if (expect) {
    bool matches = *expect == 0 ? !now_at : (now_at && *now_at == *expect);
    if (!matches)
      fail<IntegrityError>("alias '{}' of {} points at {}, not {} (--expect): another job moved it; look at "
                           "'recmodel registry history models:/{}@{}' and retry",
                           alias, ref.name, now_at ? fmt::format("version {}", *now_at) : std::string("nothing"),
                           *expect == 0 ? std::string("nothing") : fmt::format("version {}", *expect), ref.name, alias);
  }
  if (now_at && *now_at == target.version) {
    transaction.commit();
    return {ref.name, alias, now_at, now_at, "", "", ""};  // nothing moved
  }
  AliasMove move = move_alias(target.model_id, ref.name, alias, target.version_id, target.version, reason);
  transaction.commit();
  return move;
}

AliasMove Registry::rollback(const std::string& name, const std::string& alias, const std::string& reason) {
  validate_alias(alias);
  WriteTransaction transaction(*db_);
  int64_t mid = model_id(name);
  Statement last(*db_, "SELECT from_version, to_version FROM alias_history WHERE model_id = ?1 AND alias = ?2 "
                       "ORDER BY id DESC LIMIT 1");
  last.bind(1, mid).bind(2, alias);
  if (!last.step()) resolve({ModelRef::Kind::alias, name, 0, alias});  // the not-found sentence
  std::optional<int64_t> previous = last.optional_int64(0);
  if (!previous)
    fail<NotFoundError>("models:/{}@{}: the alias pointed nowhere before its last move, so there is nothing to roll "
                        "back to ('recmodel registry history models:/{}@{}')",
                        name, alias, name, alias);
  Statement find(*db_, "SELECT id FROM versions WHERE model_id = ?1 AND version = ?2");
  find.bind(1, mid).bind(2, *previous);
  if (!find.step())
    fail<NotFoundError>("models:/{}@{}: it pointed at version {} before, which was deleted; choose a version with "
                        "'recmodel registry promote'",
                        name, alias, *previous);
  std::string why = reason.empty() ? "rollback" : "rollback: " + reason;
  AliasMove move = move_alias(mid, name, alias, find.int64(0), *previous, why);
  transaction.commit();
  return move;
}

AliasMove Registry::remove_alias(const std::string& name, const std::string& alias, const std::string& reason) {
  validate_alias(alias);
  WriteTransaction transaction(*db_);
  Resolved r = resolve({ModelRef::Kind::alias, name, 0, alias});
  AliasMove move = move_alias(r.model_id, name, alias, std::nullopt, std::nullopt, reason);
  transaction.commit();
  return move;
}

void Registry::tag(const ModelRef& ref, const Tags& set, const std::vector<std::string>& remove) {
  return retrying([&] {
    for (const auto& [key, value] : set) {
      validate_tag_key(key);
      validate_tag_value(key, value);
    }
    for (const auto& key : remove) validate_tag_key(key);
    WriteTransaction transaction(*db_);
    bool on_model = ref.kind == ModelRef::Kind::model;
    int64_t owner = on_model ? model_id(ref.name) : resolve(ref).version_id;
    const char* table = on_model ? "model_tags" : "version_tags";
    const char* column = on_model ? "model_id" : "version_id";
    Statement upsert(*db_, fmt::format("INSERT INTO {} ({}, key, value) VALUES (?1, ?2, ?3) ON CONFLICT ({}, key) DO "
                                       "UPDATE SET value = excluded.value",
                                       table, column, column));
    for (const auto& [key, value] : set) {
      upsert.bind(1, owner).bind(2, key).bind(3, value);
      upsert.run();
    }
    Statement erase(*db_, fmt::format("DELETE FROM {} WHERE {} = ?1 AND key = ?2", table, column));
    for (const auto& key : remove) {
      erase.bind(1, owner).bind(2, key);
      erase.run();
      if (db_->changes() == 0) fail<NotFoundError>("{} has no tag '{}' to remove", ref.uri(), key);
    }
    transaction.commit();
  });
}

void Registry::set_model_description(const std::string& name, const std::string& description) {
  return retrying([&] {
    WriteTransaction transaction(*db_);
    Statement update(*db_, "UPDATE models SET description = ?1 WHERE id = ?2");
    update.bind(1, description).bind(2, model_id(name)).run();
    transaction.commit();
  });
}

std::vector<std::string> Registry::set_status(const ModelRef& ref, const std::string& status, bool force) {
  return retrying([&] {
    if (status != "active" && status != "archived")
      throw Error(ExitCode::internal, "set_status: status must be active or archived");
    WriteTransaction transaction(*db_);
    Resolved r = resolve(ref);
    std::vector<std::string> aliases;
    Statement query(*db_, "SELECT alias FROM aliases WHERE version_id = ?1 ORDER BY alias");
    query.bind(1, r.version_id);
    while (query.step()) aliases.push_back(query.text(0));
    std::string uri = version_uri(ref.name, r.version);
    if (status == "archived" && !aliases.empty() && !force)
      fail<UsageError>("{} is what alias {} points at; move {} first ('recmodel registry promote') or pass --force "
                       "to archive it anyway",
                       uri, join(aliases), aliases.size() == 1 ? "it" : "them");
    Statement update(*db_, "UPDATE versions SET status = ?1 WHERE id = ?2");
    update.bind(1, status).bind(2, r.version_id).run();
    transaction.commit();
    return aliases;
  });
}

std::vector<AliasMove> Registry::delete_version(const ModelRef& ref, bool force) {
  WriteTransaction transaction(*db_);
  Resolved r = resolve(ref);
  std::string uri = version_uri(ref.name, r.version);
  std::vector<std::string> aliases;
  Statement query(*db_, "SELECT alias FROM aliases WHERE version_id = ?1 ORDER BY alias");
  query.bind(1, r.version_id);
  while (query.step()) aliases.push_back(query.text(0));
  if (!aliases.empty() && !force)
    fail<UsageError>("{} is what alias {} points at; move {} first ('recmodel registry promote') or pass --force to "
                     "delete it and remove {}",
                     uri, join(aliases), aliases.size() == 1 ? "it" : "them", aliases.size() == 1 ? "it" : "them");
  std::vector<AliasMove> moves;
  for (const auto& alias : aliases)
    moves.push_back(move_alias(r.model_id, ref.name, alias, std::nullopt, std::nullopt,
                               fmt::format("version {} deleted (--force)", r.version)));
  Statement erase(*db_, "DELETE FROM versions WHERE id = ?1");
  erase.bind(1, r.version_id).run();
  transaction.commit();
  return moves;
}

int64_t Registry::delete_model(const std::string& name, bool force) {
  WriteTransaction transaction(*db_);
  int64_t mid = model_id(name);
  std::vector<std::string> aliases;
  Statement query(*db_, "SELECT alias FROM aliases WHERE model_id = ?1 ORDER BY alias");
  query.bind(1, mid);
  while (query.step()) aliases.push_back(query.text(0));
  if (!aliases.empty() && !force)
    fail<UsageError>("models:/{} has aliases ({}); remove them first or pass --force to delete the model, its "
                     "versions and their history",
                     name, join(aliases));
  int64_t versions = 0;
  {
    Statement count(*db_, "SELECT count(*) FROM versions WHERE model_id = ?1");
    count.bind(1, mid);
    count.step();
    versions = count.int64(0);
  }
  for (const char* sql : {"DELETE FROM aliases WHERE model_id = ?1", "DELETE FROM versions WHERE model_id = ?1",
                          "DELETE FROM models WHERE id = ?1"}) {
    Statement erase(*db_, sql);
    erase.bind(1, mid).run();
  }
  transaction.commit();
  return versions;
}

void Registry::record_evaluation(const ModelRef& ref, const Evaluation& evaluation) {
  if (!evaluation.metrics.is_object()) throw Error(ExitCode::internal, "record_evaluation: metrics must be an object");
  WriteTransaction transaction(*db_);
  Resolved r = resolve(ref);
  Statement insert(*db_, "INSERT INTO evaluations (version_id, split, dataset_sha256, metrics, recorded_at, "
                         "recorded_by, profile) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  insert.bind(1, r.version_id)
      .bind(2, evaluation.split)
      .bind(3, evaluation.dataset_sha256)
      .bind(4, evaluation.metrics.dump())
      .bind(5, evaluation.at.empty() ? now() : evaluation.at)
      .bind(6, evaluation.by.empty() ? who() : evaluation.by)
      .bind(7, evaluation.profile.is_null() ? std::optional<std::string>() : std::optional<std::string>(evaluation.profile.dump()))
      .run();
  transaction.commit();
}

void Registry::record_location(const ModelRef& ref, const Location& location) {
  if (location.kind != "export" && location.kind != "remote")
    throw Error(ExitCode::internal, "record_location: kind must be export or remote");
  WriteTransaction transaction(*db_);
  Resolved r = resolve(ref);
  Statement upsert(*db_, "INSERT INTO locations (version_id, kind, uri, details, recorded_at, recorded_by) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (version_id, kind, uri) DO UPDATE SET "
                         "details = excluded.details, recorded_at = excluded.recorded_at, "
                         "recorded_by = excluded.recorded_by");
  upsert.bind(1, r.version_id)
      .bind(2, location.kind)
      .bind(3, location.uri)
      .bind(4, location.details.dump())
      .bind(5, location.at.empty() ? now() : location.at)
      .bind(6, location.by.empty() ? who() : location.by)
      .run();
  transaction.commit();
}

// ---------------------------------------------------------------------------------------------
// For other commands

ResolvedModel resolve_model(const std::string& ref, const std::string& registry_flag) {
  if (!is_registry_uri(ref)) return {fs::path(ref), std::nullopt};
  ModelRef parsed = parse_ref(ref, false);
  Registry registry(registry_path(registry_flag), Registry::Access::read, default_options());
  VersionInfo info = registry.version(parsed, true);
  fs::path dir(info.source_path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail<NotFoundError>("{} ({}): its directory {} is gone; restore the files (or pull a copy) and check them with "
                        "'recmodel registry verify {}'",
                        ref, info.uri(), dir.string(), info.uri());
  for (const auto& file : info.manifest.files) {
    uint64_t size = fs::file_size(dir / file.path, ec);
    if (ec)
      fail<NotFoundError>("{} ({}): {} is gone; restore it and check with 'recmodel registry verify {}'", ref,
                          info.uri(), (dir / file.path).string(), info.uri());
    if (size != file.size)
      fail<IntegrityError>("{} ({}): {} is {} bytes, registered as {}; the files changed since they were "
                           "registered ('recmodel registry verify {}')",
                           ref, info.uri(), (dir / file.path).string(), size, file.size, info.uri());
  }
  return {dir, std::move(info)};
}

VersionInfo register_directory(const fs::path& dir, const std::string& name, const std::string& registry_flag,
                               RegisterRequest extras, int threads) {
  validate_model_name(name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<NotFoundError>("{}: no such model directory to register", dir.string());
  extras.name = name;
  extras.path = fs::canonical(dir, ec);
  if (ec) fail<DataError>("{}: cannot resolve the path: {}", dir.string(), ec.message());
  Registry registry(registry_path(registry_flag), Registry::Access::write, default_options(),
                    is_default_registry_path(registry_flag));
  read_lineage_file(extras.path, extras);
  extras.manifest = compute_manifest(extras.path, threads);
  return registry.register_version(extras);
}

void read_lineage_file(const fs::path& dir, RegisterRequest& request) {
  fs::path file = dir / "recmodel.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) return;
  auto document = read_json_file(file);
  if (!document.is_object())
    fail<DataError>("{}: not a JSON object; recmodel.json holds the model's lineage (fix or remove it)", file.string());
  if (request.metrics.empty() && document.contains("metrics")) {
    if (!document["metrics"].is_object()) fail<DataError>("{}: \"metrics\" is not an object", file.string());
    request.metrics = document["metrics"];
  }
  for (const char* key : {"parameters", "params"}) {
    if (!request.params.empty() || !document.contains(key)) continue;
    if (!document[key].is_object()) fail<DataError>("{}: \"{}\" is not an object", file.string(), key);
    request.params = document[key];
  }
  if (!request.dataset_sha256) {
    auto sha = string_member(document, {"dataset_manifest_sha256", "dataset_sha256"});
    if (!sha && document.contains("dataset") && document["dataset"].is_object())
      sha = string_member(document["dataset"], {"manifest_sha256", "sha256"});
    if (sha) {
      if (!is_sha256(*sha)) fail<DataError>("{}: dataset SHA-256 '{}' is not 64 lowercase hex digits", file.string(), *sha);
      request.dataset_sha256 = sha;
    }
  }
  if (!request.base_checkpoint) request.base_checkpoint = string_member(document, {"base_checkpoint", "base_model"});
}

}  // namespace recmodel::registry
