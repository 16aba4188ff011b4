#include "registry/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "common/error.h"

namespace recmodel::registry {

namespace {

// Waits for another connection's lock: short sleeps with jitter, so that many queued writers
// hand the lock on quickly (SQLite's own handler backs off to 100 ms sleeps), until the
// timeout. Returns 0 to give up (the statement then fails with SQLITE_BUSY).
int busy_handler(void* context, int attempt) {
  auto* state = static_cast<BusyState*>(context);
  auto now = std::chrono::steady_clock::now();
  if (attempt == 0) state->since = now;
  if (now - state->since >= std::chrono::milliseconds(state->timeout_ms)) return 0;
  thread_local std::minstd_rand random(static_cast<unsigned>(::getpid()) ^
                                       static_cast<unsigned>(now.time_since_epoch().count()));
  int ceiling = std::min(200 + attempt * 100, 5000);  // microseconds
  std::this_thread::sleep_for(std::chrono::microseconds(100 + random() % ceiling));
  return 1;
}

std::string seconds_text(int ms) {
  if (ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{:.1f} s", ms / 1000.0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Statements

class SqliteCursor : public Cursor {
 public:
  SqliteCursor(SqliteDatabase& db, std::string_view sql) : db_(&db) {
    int rc = sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
    if (rc != SQLITE_OK) db.raise(rc, "reading it");
  }
  ~SqliteCursor() override {
    if (stmt_) sqlite3_finalize(stmt_);
  }
  void bind_int64(int index, int64_t value) override { sqlite3_bind_int64(stmt_, index, value); }
  void bind_double(int index, double value) override { sqlite3_bind_double(stmt_, index, value); }
  void bind_text(int index, std::string_view value) override {
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }
  void bind_null(int index) override { sqlite3_bind_null(stmt_, index); }

  bool step() override {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // The statement's own code is generic after a failed step; the connection has the real one.
    int code = sqlite3_extended_errcode(db_->handle());
    db_->raise(code ? code : rc, sqlite3_stmt_readonly(stmt_) ? "reading it" : "updating it");
  }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t int64(int column) const override { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const override { return sqlite3_column_double(stmt_, column); }
  std::string text(int column) const override {
    const unsigned char* value = sqlite3_column_text(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    return value ? std::string(reinterpret_cast<const char*>(value), static_cast<size_t>(size)) : std::string();
  }
  bool is_null(int column) const override { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  SqliteDatabase* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Database

SqliteDatabase::SqliteDatabase(const fs::path& path, OpenMode mode, int busy_timeout_ms)
    : Database(path, busy_timeout_ms, mode == OpenMode::read_only) {
  if (mode == OpenMode::create) {
    // SQLite would create the file 0644; a registry holds who did what, so 0600. The -wal and
    // -shm files SQLite makes later copy the database file's permissions.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);
    } else if (errno != EEXIST) {
      int saved = errno;
      if (saved == EACCES || saved == EROFS || saved == EPERM)
        fail<DataError>("{}: cannot create the registry: {} (choose another --registry or fix the permissions of {})",
                        path.string(), std::strerror(saved), path.parent_path().string());
      if (saved == ENOENT)
        fail<NotFoundError>("{}: cannot create the registry: directory {} does not exist (create it, or choose "
                            "another --registry)",
                            path.string(), path.parent_path().string());
      fail<DataError>("{}: cannot create the registry: {}", path.string(), std::strerror(saved));
    }
  }
  int flags = (mode == OpenMode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    if ((rc & 0xff) == SQLITE_CANTOPEN)
      fail<DataError>("{}: cannot open the registry ({}); check that it is a readable file", path.string(), message);
    fail<DataError>("{}: cannot open the registry ({})", path.string(), message);
  }
  sqlite3_extended_result_codes(db_, 1);
  busy_.timeout_ms = busy_timeout_ms;
  sqlite3_busy_handler(db_, busy_handler, &busy_);
}

SqliteDatabase::~SqliteDatabase() {
  if (db_) sqlite3_close_v2(db_);
}

void SqliteDatabase::raise(int rc, std::string_view what) const {
  std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string file = path().string();
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      fail<IntegrityError>("{}: the registry stayed locked by another process for more than {} while {}; retry "
                           "when the other job has finished, or wait longer with --lock-timeout SECONDS",
                           file, seconds_text(busy_timeout_ms()), what);
    case SQLITE_READONLY:
      fail<DataError>("{}: the registry is read-only ({}) while {}; it needs write permission on the file and "
                      "its directory",
                      file, detail, what);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      fail<DataError>("{}: not a usable registry ({}) while {}; restore it from a backup or choose another "
                      "--registry",
                      file, detail, what);
    case SQLITE_FULL:
      fail<DataError>("{}: disk full while {}; nothing was changed, free some space and retry", file, what);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      fail<DataError>("{}: cannot access the registry ({}) while {}", file, detail, what);
    default:
      throw Error(ExitCode::internal,
                  fmt::format("{}: SQLite error {} ({}) while {} (please report this)", file, rc, detail, what));
  }
}

void SqliteDatabase::exec(std::string_view sql, std::string_view what) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  sqlite3_free(message);
  if (rc != SQLITE_OK) raise(rc, what);
}

std::unique_ptr<Cursor> SqliteDatabase::prepare(std::string_view sql) {
  return std::make_unique<SqliteCursor>(*this, sql);
}

int SqliteDatabase::changes() const { return sqlite3_changes(db_); }

// ---------------------------------------------------------------------------------------------
// Transactions

// BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout).
void SqliteDatabase::begin_write() { exec("BEGIN IMMEDIATE"); }

bool SqliteDatabase::begin_read() {
  if (!sqlite3_get_autocommit(db_)) return false;
  exec("BEGIN", "reading it");
  return true;
}

void SqliteDatabase::commit() { exec("COMMIT"); }

void SqliteDatabase::rollback() noexcept {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace recmodel::registry
