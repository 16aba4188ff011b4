#include "registry/schema.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/error.h"
#include "registry/postgres.h"
#include "registry/sqlite.h"

namespace recmodel::registry {

namespace {

// Version 1: models, versions with their file manifests, tags, aliases and alias history.
const char* kSchemaV1 = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE models (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  description  TEXT NOT NULL DEFAULT '',
  created_at   TEXT NOT NULL,
  created_by   TEXT NOT NULL,
  next_version INTEGER NOT NULL DEFAULT 1  -- numbers are never reused, even after a delete
);

CREATE TABLE versions (
  id              INTEGER PRIMARY KEY,
  model_id        INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  version         INTEGER NOT NULL CHECK (version >= 1),
  source_path     TEXT NOT NULL,
  manifest_sha256 TEXT NOT NULL,
  file_count      INTEGER NOT NULL,
  total_size      INTEGER NOT NULL,
  metrics         TEXT NOT NULL DEFAULT '{}',
  params          TEXT NOT NULL DEFAULT '{}',
  dataset_sha256  TEXT,
  parent_name     TEXT,     -- by name and number, so lineage survives a deleted parent
  parent_version  INTEGER,
  base_checkpoint TEXT,
  created_at      TEXT NOT NULL,
  created_by      TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  description     TEXT NOT NULL DEFAULT '',
  UNIQUE (model_id, version)
);
CREATE INDEX versions_by_parent ON versions (parent_name, parent_version);

CREATE TABLE version_files (
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  path       TEXT NOT NULL,
  size       INTEGER NOT NULL,
  sha256     TEXT NOT NULL,
  PRIMARY KEY (version_id, path)
) WITHOUT ROWID;

CREATE TABLE model_tags (
  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  key      TEXT NOT NULL,
  value    TEXT NOT NULL,
  PRIMARY KEY (model_id, key)
) WITHOUT ROWID;

CREATE TABLE version_tags (
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  PRIMARY KEY (version_id, key)
) WITHOUT ROWID;

CREATE TABLE aliases (
  model_id   INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  alias      TEXT NOT NULL,
  version_id INTEGER NOT NULL REFERENCES versions(id),
  moved_at   TEXT NOT NULL,
  PRIMARY KEY (model_id, alias)
) WITHOUT ROWID;

CREATE TABLE alias_history (
  id           INTEGER PRIMARY KEY,
  model_id     INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  alias        TEXT NOT NULL,
  from_version INTEGER,     -- NULL: the alias was new
  to_version   INTEGER,     -- NULL: the alias was removed
  moved_at     TEXT NOT NULL,
  moved_by     TEXT NOT NULL,
  reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alias_history_by_alias ON alias_history (model_id, alias, id);
)sql";

// Version 2: what happened to a version after it was registered: evaluations
// (`evaluate --record`) and copies elsewhere (exports, remotes written by `push`).
const char* kSchemaV2 = R"sql(
CREATE TABLE evaluations (
  id             INTEGER PRIMARY KEY,
  version_id     INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  split          TEXT NOT NULL,
  dataset_sha256 TEXT,
  metrics        TEXT NOT NULL,
  recorded_at    TEXT NOT NULL,
  recorded_by    TEXT NOT NULL
);
CREATE INDEX evaluations_by_version ON evaluations (version_id, id);

CREATE TABLE locations (
  id          INTEGER PRIMARY KEY,
  version_id  INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('export', 'remote')),
  uri         TEXT NOT NULL,
  details     TEXT NOT NULL DEFAULT '{}',
  recorded_at TEXT NOT NULL,
  recorded_by TEXT NOT NULL,
  UNIQUE (version_id, kind, uri)
);
)sql";

// Version 3: an evaluation can carry the reference profile of the split it scored
// (`evaluate --record`), so `recmodel drift` has one for versions trained before train
// recorded it in recmodel.json (a registered directory never changes).
const char* kSchemaV3 = R"sql(
ALTER TABLE evaluations ADD COLUMN profile TEXT;
)sql";

// Returns the recmodel version recorded in the file, or "an unknown version".
std::string written_by(Database& db) {
  try {
    Statement statement(db, "SELECT value FROM meta WHERE key = 'written_by'");
    if (statement.step()) return statement.text(0);
  } catch (const Error&) {
  }
  return "an unknown version";
}

// Switches the file to write-ahead logging (readers never block the writer). The switch
// needs a moment of exclusive access, so it is retried while another process holds the file.
void enable_wal(SqliteDatabase& db) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(db.busy_timeout_ms());
  for (int attempt = 0;; ++attempt) {
    try {
      if (db.query_text("PRAGMA journal_mode") == "wal") return;
      if (db.query_text("PRAGMA journal_mode = WAL") == "wal") return;
    } catch (const IntegrityError&) {
      // busy: retry below
    }
    if (std::chrono::steady_clock::now() > deadline)
      db.raise(SQLITE_BUSY, "switching it to write-ahead logging");
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 + attempt * 5, 50)));
  }
}

// Copies the whole database to a new 0600 file beside it and returns that file's path.
std::string backup(SqliteDatabase& db, int64_t from_version) {
  fs::path target;
  int fd = -1;
  for (int n = 0; n < 1000 && fd < 0; ++n) {
    target = db.path();
    target += fmt::format(".v{}.bak{}", from_version, n ? fmt::format(".{}", n) : "");
    fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      fail<DataError>("{}: cannot create the backup {} before migrating: {}; nothing was changed", db.path().string(),
                      target.string(), std::strerror(errno));
  }
  if (fd < 0) fail<DataError>("{}: cannot find a free backup file name beside it", db.path().string());
  ::close(fd);
  // The caller holds the write lock on `db`, and a connection cannot back up a database it is
  // writing; a second connection reads the same (not yet changed) state, as WAL lets readers do.
  sqlite3* source = nullptr;
  sqlite3* copy = nullptr;
  int rc = sqlite3_open_v2(db.path().c_str(), &source, SQLITE_OPEN_READONLY, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_open_v2(target.c_str(), &copy, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_backup* job = rc == SQLITE_OK ? sqlite3_backup_init(copy, "main", source, "main") : nullptr;
  if (job) {
    rc = sqlite3_backup_step(job, -1);
    int finish = sqlite3_backup_finish(job);
    if (rc == SQLITE_DONE) rc = finish;
  } else if (rc == SQLITE_OK) {
    rc = sqlite3_errcode(copy);
  }
  std::string detail = copy ? sqlite3_errmsg(copy) : source ? sqlite3_errmsg(source) : sqlite3_errstr(rc);
  sqlite3_close(copy);
  sqlite3_close(source);
  if (rc != SQLITE_OK) {
    ::unlink(target.c_str());
    fail<DataError>("{}: cannot back it up to {} before migrating ({}); nothing was changed", db.path().string(),
                    target.string(), detail);
  }
  return target.string();
}

}  // namespace

const std::vector<std::string>& migrations() {
  static const std::vector<std::string> list = {kSchemaV1, kSchemaV2, kSchemaV3};
  return list;
}

int64_t schema_version() { return static_cast<int64_t>(migrations().size()); }

namespace {

struct FileState {
  int64_t application_id;
  int64_t version;
  int64_t objects;  // tables, indexes, ... in the file
};

// Reads the three in one statement, so they come from one snapshot even while another
// process is creating the schema.
FileState read_state(SqliteDatabase& db) {
  Statement query(db, "SELECT (SELECT application_id FROM pragma_application_id), "
                      "(SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)");
  query.step();
  return {query.int64(0), query.int64(1), query.int64(2)};
}

// Refuses a newer or foreign file; returns whether the file is at the current version.
bool check_state(SqliteDatabase& db, const FileState& state, const std::string& recmodel_version) {
  const std::string file = db.path().string();
  if (state.application_id == kApplicationId && state.version > schema_version())
    fail<DataError>("{}: the registry has schema version {} (written by recmodel {}); this recmodel {} understands "
                    "up to version {}. Upgrade recmodel to use it; the file was left unchanged",
                    file, state.version, written_by(db), recmodel_version, schema_version());
  bool empty = state.application_id == 0 && state.version == 0 && state.objects == 0;
  if (state.application_id != kApplicationId && !empty)
    fail<DataError>("{}: not a recmodel registry (an SQLite database of another program); choose another "
                    "--registry",
                    file);
  return state.application_id == kApplicationId && state.version == schema_version();
}

}  // namespace

namespace {

std::string prepare_sqlite(SqliteDatabase& db, bool writable, const std::string& recmodel_version) {
  FileState state = read_state(db);
  if (check_state(db, state, recmodel_version)) return "";
  if (!writable)
    fail<DataError>("{}: the registry has schema version {} and needs migrating to version {}, which needs write "
                    "permission on it and its directory",
                    db.path().string(), state.version, schema_version());

  enable_wal(db);
  WriteTransaction transaction(db);
  state = read_state(db);  // another process may have created or migrated it meanwhile
  if (check_state(db, state, recmodel_version)) {
    transaction.commit();
    return "";
  }
  std::string backup_path = state.version > 0 ? backup(db, state.version) : "";
  for (int64_t step = state.version; step < schema_version(); ++step)
    db.exec(migrations()[static_cast<size_t>(step)]);
  db.exec(fmt::format("PRAGMA user_version = {}", schema_version()));
  db.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
  Statement meta(db, "INSERT INTO meta (key, value) VALUES ('written_by', ?1) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  meta.bind(1, recmodel_version).run();
  transaction.commit();
  return backup_path;
}

// PostgreSQL keeps the schema version in the meta table (there is no user_version), with a
// marker that tells recmodel's tables from another program's.
struct DatabaseState {
  bool meta = false;          // a table named meta exists
  bool registry_tables = false;  // models or versions exist
  std::string application;    // meta's marker
  int64_t version = 0;
};

constexpr const char* kApplicationMarker = "recmodel-registry";

DatabaseState read_state(PostgresDatabase& db) {
  DatabaseState state;
  // pg_tables is read under the statement's snapshot (to_regclass can answer from a stale cache
  // that has not seen another upgrader's tables yet).
  Statement tables(db, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND "
                       "tablename = 'meta'), EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = "
                       "current_schema() AND tablename IN ('models', 'versions'))");
  tables.step();
  state.meta = tables.int64(0) != 0;
  state.registry_tables = tables.int64(1) != 0;
  if (state.meta) {
    Statement meta(db, "SELECT key, value FROM meta WHERE key IN ('application', 'schema_version')");
    while (meta.step()) {
      if (meta.text(0) == "application") state.application = meta.text(1);
      if (meta.text(0) == "schema_version") state.version = std::strtoll(meta.text(1).c_str(), nullptr, 10);
    }
  }
  return state;
}

// Refuses a newer or foreign database; returns whether it is at the current version.
bool check_state(PostgresDatabase& db, const DatabaseState& state, const std::string& recmodel_version) {
  const std::string name = db.path().string();
  if ((state.meta && state.application != kApplicationMarker) || (!state.meta && state.registry_tables))
    fail<DataError>("{}: not a recmodel registry (the database has tables of another program named meta, models or "
                    "versions); choose another database or schema for --registry",
                    name);
  if (state.meta && state.version > schema_version())
    fail<DataError>("{}: the registry has schema version {} (written by recmodel {}); this recmodel {} understands "
                    "up to version {}. Upgrade recmodel to use it; the database was left unchanged",
                    name, state.version, written_by(db), recmodel_version, schema_version());
  return state.meta && state.version == schema_version();
}

std::string prepare_postgres(PostgresDatabase& db, const std::string& recmodel_version) {
  if (check_state(db, read_state(db), recmodel_version)) return "";
  // DDL is transactional in PostgreSQL: the whole migration commits or none of it does, and the
  // write lock keeps a second upgrader (and every writer) waiting until it has.
  WriteTransaction transaction(db);
  const DatabaseState state = read_state(db);
  if (check_state(db, state, recmodel_version)) {
    transaction.commit();
    return "";
  }
  for (int64_t step = state.meta ? state.version : 0; step < schema_version(); ++step)
    db.exec(migrations()[static_cast<size_t>(step)], "migrating it");
  Statement meta(db, "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  meta.bind(1, "application").bind(2, kApplicationMarker).run();
  meta.bind(1, "schema_version").bind(2, std::to_string(schema_version())).run();
  meta.bind(1, "written_by").bind(2, recmodel_version).run();
  transaction.commit();
  return "";
}

}  // namespace

bool has_registry(Database& db) {
  if (db.dialect() == Dialect::sqlite) return true;  // an SQLite registry is a file that exists
  const DatabaseState state = read_state(static_cast<PostgresDatabase&>(db));
  return state.meta || state.registry_tables;
}

std::string prepare_schema(Database& db, bool writable, const std::string& recmodel_version) {
  if (db.dialect() == Dialect::postgresql)
    return prepare_postgres(static_cast<PostgresDatabase&>(db), recmodel_version);
  return prepare_sqlite(static_cast<SqliteDatabase&>(db), writable, recmodel_version);
}

}  // namespace recmodel::registry
