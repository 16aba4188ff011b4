// A thin RAII layer over the SQLite C API: connections, prepared statements with bound
// parameters only, and IMMEDIATE transactions. Every SQLite failure becomes a typed error
// (common/error.h) that names the registry file and says what to do.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace recmodel::registry {

namespace fs = std::filesystem;

class Database;

// One prepared statement. Parameters are bound by 1-based index; text is copied (SQLITE_TRANSIENT).
class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept;

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const std::optional<int64_t>& value);
  Statement& bind(int index, const std::optional<std::string>& value);
  Statement& bind_null(int index);

  // Advances to the next row; returns false when the statement is done.
  bool step();
  // Runs a statement that returns no rows (or ignores them), then resets it for reuse.
  void run();
  // Resets the statement and clears its bindings for the next use.
  void reset();

  int64_t int64(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  bool is_null(int column) const;
  std::optional<int64_t> optional_int64(int column) const;
  std::optional<std::string> optional_text(int column) const;

 private:
  Database* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

enum class OpenMode { read_only, read_write, create };

// What the busy handler of a connection needs: its timeout and when the current wait began.
struct BusyState {
  int timeout_ms = 0;
  std::chrono::steady_clock::time_point since;
};

class Database {
 public:
  // Opens `path`. read_only and read_write need the file to exist; create makes it (mode 0600).
  // `busy_timeout_ms` is how long a statement waits for another process's lock.
  Database(const fs::path& path, OpenMode mode, int busy_timeout_ms);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without parameters (schema, pragmas); `what` names the
  // activity in errors ("opening it", "updating it").
  void exec(std::string_view sql, std::string_view what = "updating it");
  // Returns the single integer a pragma or query yields (e.g. "PRAGMA user_version").
  int64_t query_int(std::string_view sql);
  std::string query_text(std::string_view sql);
  int64_t last_insert_rowid() const;
  int changes() const;

  const fs::path& path() const { return path_; }
  int busy_timeout_ms() const { return busy_timeout_ms_; }
  bool read_only() const { return read_only_; }
  sqlite3* handle() { return db_; }

  // Throws the typed error for SQLite result `rc` while doing `what`.
  [[noreturn]] void raise(int rc, std::string_view what) const;

 private:
  fs::path path_;
  sqlite3* db_ = nullptr;
  BusyState busy_;
  int busy_timeout_ms_;
  bool read_only_;
};

// BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waiting up to the busy timeout),
// so concurrent writers queue instead of failing with "database is locked" half-way through.
// Rolls back on destruction unless commit() was called.
class WriteTransaction {
 public:
  explicit WriteTransaction(Database& db);
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool open_ = false;
};

// BEGIN (deferred) ... COMMIT for reads: one consistent snapshot across several queries.
// Inside a transaction already open on the connection it does nothing.
class ReadTransaction {
 public:
  explicit ReadTransaction(Database& db);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Database& db_;
  bool began_ = false;
};

}  // namespace recmodel::registry
