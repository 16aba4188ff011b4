// The registry in an SQLite file: a thin RAII layer over the SQLite C API (prepared statements
// with bound parameters only, IMMEDIATE write transactions, a busy handler that queues writers).
#pragma once

#include <chrono>

#include "registry/database.h"

struct sqlite3;

namespace recmodel::registry {

// What the busy handler of a connection needs: its timeout and when the current wait began.
struct BusyState {
  int timeout_ms = 0;
  std::chrono::steady_clock::time_point since;
};

class SqliteDatabase : public Database {
 public:
  // Opens `path`. read_only and read_write need the file to exist; create makes it (mode 0600).
  // `busy_timeout_ms` is how long a statement waits for another process's lock.
  SqliteDatabase(const fs::path& path, OpenMode mode, int busy_timeout_ms);
  ~SqliteDatabase() override;

  Dialect dialect() const override { return Dialect::sqlite; }
  void exec(std::string_view sql, std::string_view what = "updating it") override;
  std::unique_ptr<Cursor> prepare(std::string_view sql) override;
  int changes() const override;
  void begin_write() override;
  bool begin_read() override;
  void commit() override;
  void rollback() noexcept override;

  sqlite3* handle() { return db_; }
  // Throws the typed error for SQLite result `rc` while doing `what`.
  [[noreturn]] void raise(int rc, std::string_view what) const;

 private:
  sqlite3* db_ = nullptr;
  BusyState busy_;
};

}  // namespace recmodel::registry
