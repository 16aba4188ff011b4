// The model registry: registered models, numbered versions with their file manifests,
// tags, aliases with a history of every move, evaluations and copies — in one SQLite file
// that many processes (CI jobs) can read and write at the same time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/manifest.h"
#include "registry/reference.h"
#include "registry/database.h"

namespace recmodel::registry {

namespace fs = std::filesystem;

using Tags = std::map<std::string, std::string>;

struct ModelInfo {
  std::string name;
  std::string description;
  std::string created_at;
  std::string created_by;
  Tags tags;
  int64_t version_count = 0;
  std::optional<int64_t> latest;          // newest active version
  std::string updated_at;                 // newest version's registration time (or created_at)
  std::map<std::string, int64_t> aliases; // alias -> version
};

struct VersionInfo {
  std::string name;
  int64_t version = 0;
  std::string source_path;
  std::string manifest_sha256;
  int64_t file_count = 0;
  int64_t total_size = 0;
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json params = nlohmann::json::object();
  std::optional<std::string> dataset_sha256;
  std::optional<std::string> parent;  // models:/NAME/VERSION
  std::optional<std::string> base_checkpoint;
  std::string created_at;
  std::string created_by;
  std::string status;  // active | archived
  std::string description;
  Tags tags;
  std::vector<std::string> aliases;
  Manifest manifest;  // filled only when asked for (with_files)

  std::string uri() const { return version_uri(name, version); }
  // The reference to exactly this version (models:/NAME/VERSION).
  ModelRef ref() const { return {ModelRef::Kind::version, name, version, ""}; }
};

struct AliasMove {
  std::string name;
  std::string alias;
  std::optional<int64_t> from;  // none: the alias was created
  std::optional<int64_t> to;    // none: the alias was removed
  std::string at;
  std::string by;
  std::string reason;
};

struct Evaluation {
  std::string split;
  std::optional<std::string> dataset_sha256;
  nlohmann::json metrics = nlohmann::json::object();
  std::string at;
  std::string by;
  nlohmann::json profile;  // the split's reference profile (monitoring/profile.h), null when none
};

struct Location {
  std::string kind;  // export | remote
  std::string uri;
  nlohmann::json details = nlohmann::json::object();
  std::string at;
  std::string by;
};

struct Lineage {
  VersionInfo version;
  std::vector<std::string> ancestors;      // parent, grandparent, ... (models:/ URIs)
  std::optional<std::string> missing_ancestor;  // a parent that was deleted
  std::vector<std::string> children;       // versions registered with this one as parent
  std::vector<Evaluation> evaluations;
  std::vector<Location> locations;
};

struct RegisterRequest {
  std::string name;
  fs::path path;      // the model directory (stored absolute)
  Manifest manifest;  // its files, already hashed
  std::string description;
  Tags tags;
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json params = nlohmann::json::object();
  std::optional<std::string> dataset_sha256;
  std::optional<ModelRef> parent;  // must exist
  std::optional<std::string> base_checkpoint;
};

struct VersionFilter {
  std::optional<std::pair<std::string, std::optional<std::string>>> tag;  // key, optional value
  std::optional<std::string> alias;
  std::optional<std::string> status;  // active | archived; none = both
  int64_t limit = 0;                  // newest N; 0 = all
};

struct RegistryOptions {
  int lock_timeout_ms = 30000;
  std::string user;                     // "who" in records; empty = user@host
  std::function<int64_t()> clock_ms;    // ms since the epoch; empty = the system clock
  std::string recmodel_version = "0";   // recorded in the file's meta table
};

// Returns the registry: `flag` (--registry) when given, else $RECMODEL_REGISTRY, else
// $XDG_DATA_HOME/recmodel/registry.db, else ~/.local/share/recmodel/registry.db. A
// postgresql:// URL is returned as it is.
fs::path registry_path(const std::string& flag);
// Returns whether registry_path(flag) is the default location (created with its folders when missing).
bool is_default_registry_path(const std::string& flag);
// Returns whether a registry is there: the file exists, or the PostgreSQL database holds the
// registry's tables (an unreachable server is an error, not "no registry").
bool registry_exists(const fs::path& location);
// Returns the location for messages: a postgresql:// URL without its password.
std::string registry_display_name(const fs::path& location);

// Returns who is acting: $RECMODEL_USER, else the login name, with "@host".
std::string current_user();

// Formats ms since the epoch as ISO 8601 UTC with milliseconds: 2025-05-03T14:00:00.000Z.
std::string format_time(int64_t ms);
// Returns the time now, in ms since the epoch.
int64_t now_ms();
// Parses a time given on the command line: 2025-05-03, 2025-05-03T14:00, "2025-05-03 14:00:30",
// with an optional Z or +HH:MM (without one, local time) — and returns ms since the epoch.
int64_t parse_time(const std::string& text);

class Registry {
 public:
  enum class Access { read, write };

  // Opens the registry at `path`: an SQLite file, or a PostgreSQL database when it is a
  // postgresql:// URL (registry/postgres.h). read: the file (or the database's tables) must
  // exist (NotFoundError otherwise) and a file may be read-only. write: creates the file (mode
  // 0600) or the tables when missing; a file's directory must exist unless
  // `create_directories`. Both migrate an older schema and refuse a newer one.
  Registry(const fs::path& path, Access access, RegistryOptions options = {}, bool create_directories = false);

  // The file, or the URL without its password: what messages name.
  const fs::path& path() const { return db_->path(); }
  Dialect dialect() const { return db_->dialect(); }
  // The connection, for whole-registry work (registry/migrate.h).
  Database& database() { return *db_; }
  // Returns the backup made by a migration when this open migrated the file, else "".
  const std::string& migration_backup() const { return migration_backup_; }

  // --- reading
  std::vector<ModelInfo> list_models(const VersionFilter& filter = {});
  ModelInfo model(const std::string& name);
  std::vector<VersionInfo> list_versions(const std::string& name, const VersionFilter& filter = {});
  // Resolves a reference that names a version (number, alias or latest).
  VersionInfo version(const ModelRef& ref, bool with_files = false);
  // Alias moves of model `name` (one alias, or all), oldest first.
  std::vector<AliasMove> history(const std::string& name, const std::optional<std::string>& alias = std::nullopt);
  // Returns the version `alias` pointed at, at `at_ms` (none: it did not point anywhere yet).
  std::optional<int64_t> alias_at(const std::string& name, const std::string& alias, int64_t at_ms);
  std::vector<Evaluation> evaluations(const ModelRef& ref);
  Lineage lineage(const ModelRef& ref);

  // --- writing: each call is one transaction
  VersionInfo register_version(const RegisterRequest& request);
  // Points `alias` at the version `ref` names. With `expect`, only when the alias points at
  // that version now (0 = the alias must not exist yet); IntegrityError otherwise.
  AliasMove promote(const ModelRef& ref, const std::string& alias, const std::string& reason,
                    std::optional<int64_t> expect = std::nullopt);
  // Moves `alias` back to the version it pointed at before its last move.
  AliasMove rollback(const std::string& name, const std::string& alias, const std::string& reason);
  // Removes `alias` (recorded in its history).
  AliasMove remove_alias(const std::string& name, const std::string& alias, const std::string& reason);
  // Sets and removes tags on a model (ref without a version) or on a version.
  void tag(const ModelRef& ref, const Tags& set, const std::vector<std::string>& remove);
  void set_model_description(const std::string& name, const std::string& description);
  // Sets a version's status to active or archived; archiving a version an alias points at
  // needs `force`. Returns the aliases that point at it.
  std::vector<std::string> set_status(const ModelRef& ref, const std::string& status, bool force);
  // Deletes a version's records (not its files). Refused while an alias points at it unless
  // `force`, which removes those aliases (recorded in their history). Returns the moves made.
  std::vector<AliasMove> delete_version(const ModelRef& ref, bool force);
  // Deletes a model with all its versions and history; refused while it has aliases unless `force`.
  int64_t delete_model(const std::string& name, bool force);
  void record_evaluation(const ModelRef& ref, const Evaluation& evaluation);
  void record_location(const ModelRef& ref, const Location& location);

 private:
  struct Resolved {
    int64_t model_id;
    int64_t version_id;
    int64_t version;
  };
  int64_t model_id(const std::string& name);
  Resolved resolve(const ModelRef& ref);
  VersionInfo read_version(int64_t version_id, bool with_files);
  AliasMove move_alias(int64_t model_id, const std::string& name, const std::string& alias,
                       std::optional<int64_t> to_version_id, std::optional<int64_t> to_version, const std::string& reason);
  std::string now();
  std::string who() const;
  // Runs `call` again after reconnecting when a PostgreSQL server went away (a restart) while it
  // ran: only for reads and idempotent changes, and only outside a caller's transaction, within
  // the lock timeout. An SQLite registry runs it once.
  template <typename Call>
  auto retrying(Call&& call) -> decltype(call());

  std::unique_ptr<Database> db_;
  RegistryOptions options_;
  std::string migration_backup_;
  int retry_depth_ = 0;
};

// What a command that takes --model REF gets: the directory, and for registry references the
// version it resolved to.
struct ResolvedModel {
  fs::path path;
  std::optional<VersionInfo> version;
};

// Resolves a model reference: a directory path is returned as is; a models:/ URI is looked up
// in the registry (`registry_flag` as --registry) and its directory checked against the
// manifest's file list and sizes (NotFoundError when the files are gone, IntegrityError when
// sizes changed).
ResolvedModel resolve_model(const std::string& ref, const std::string& registry_flag);

// Reads the lineage a model directory carries in recmodel.json (metrics, parameters, dataset
// manifest SHA-256, base checkpoint) into `request` where the request leaves them unset.
void read_lineage_file(const fs::path& dir, RegisterRequest& request);

// Registers model directory `dir` as the next version of `name` in the registry `registry_flag`
// (as --registry; the default file and its folders are created when missing): hashes every file
// on `threads` threads, takes metrics, parameters, dataset and base checkpoint from recmodel.json
// where `extras` leaves them unset, and keeps `extras`' description, tags and parent.
// For `train --register NAME`.
VersionInfo register_directory(const fs::path& dir, const std::string& name, const std::string& registry_flag,
                               RegisterRequest extras = {}, int threads = 1);

// The options every command uses: lock timeout from $RECMODEL_REGISTRY_TIMEOUT (seconds), user, version.
RegistryOptions default_options();

}  // namespace recmodel::registry
