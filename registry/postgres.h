// The registry in a PostgreSQL database (--registry postgresql://user@host:5432/db?sslmode=...),
// through libpq: the password comes from the URL, PGPASSWORD or ~/.pgpass (libpq's own rules)
// and is never printed; sslmode and every other libpq URL parameter are honoured.
//
// Writers serialize on one transaction-scoped advisory lock, as SQLite's BEGIN IMMEDIATE
// serializes them on the file: version numbers stay gapless and alias moves atomic without
// retry loops, and readers never wait (each read is one REPEATABLE READ snapshot).
#pragma once

#include <string>

#include "common/error.h"
#include "registry/database.h"

struct pg_conn;
struct pg_result;

namespace recmodel::registry {

// The lock every write transaction (and a schema migration) takes: "RCMR".
constexpr int64_t kPostgresWriteLock = 0x52434D52;

// Returns `url` without its password (user:secret@ and password=... both), for messages.
std::string redact_url(const std::string& url);

// Rewrites the registry's SQL (SQLite's spelling) for PostgreSQL: ?N parameters as $N,
// group_concat as string_agg, char() as chr(), INTEGER as BIGINT and INTEGER PRIMARY KEY as a
// BIGINT identity column, WITHOUT ROWID dropped. String literals and comments are left alone.
std::string postgresql_sql(std::string_view sql);

// The error a lost connection raises (exit 5): what was being done did not happen, unless it
// was the commit itself (the message says so). Read-only calls may reconnect and retry.
struct ConnectionLostError : RemoteError {
  explicit ConnectionLostError(const std::string& m) : RemoteError(m) {}
};

class PostgresDatabase : public Database {
 public:
  // Connects to `url` (connect_timeout 10 s unless the URL sets one). RemoteError (exit 5)
  // when the server cannot be reached or refuses the login.
  PostgresDatabase(const std::string& url, int busy_timeout_ms);
  ~PostgresDatabase() override;

  Dialect dialect() const override { return Dialect::postgresql; }
  void exec(std::string_view sql, std::string_view what = "updating it") override;
  std::unique_ptr<Cursor> prepare(std::string_view sql) override;
  int changes() const override { return changes_; }
  void begin_write() override;
  bool begin_read() override;
  void commit() override;
  void rollback() noexcept override;

  // Drops the connection and connects again (after a server restart), waiting for the server
  // up to `wait_ms`.
  void reconnect(int wait_ms);

  // Whether the connection is up with no transaction open.
  bool idle() const;
  // Whether a transaction is open on a live connection (a caller's, which a retry must not cut).
  bool in_transaction() const;

  pg_conn* handle() { return conn_; }
  void set_changes(int changes) { changes_ = changes; }
  // Throws the typed error for a failed result (or connection), while doing `what`.
  [[noreturn]] void raise(const pg_result* result, std::string_view what) const;

 private:
  void connect();

  std::string url_;
  pg_conn* conn_ = nullptr;
  int changes_ = 0;
  bool committing_ = false;
};

}  // namespace recmodel::registry
