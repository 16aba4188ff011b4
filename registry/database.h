// The registry's database, whichever server holds it: an SQLite file (registry/sqlite.h) or a
// PostgreSQL database (registry/postgres.h). The registry writes one SQL text for both, in
// SQLite's spelling with numbered parameters (?1, ?2, ...); the PostgreSQL connection turns it
// into its own ($1, string_agg, BIGINT identity columns) as it prepares it. Every failure
// becomes a typed error (common/error.h) that names the registry and says what to do.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace recmodel::registry {

namespace fs = std::filesystem;

enum class Dialect { sqlite, postgresql };

// One statement of a backend: parameters bound by 1-based index, rows stepped through.
class Cursor {
 public:
  virtual ~Cursor() = default;
  virtual void bind_int64(int index, int64_t value) = 0;
  virtual void bind_double(int index, double value) = 0;
  virtual void bind_text(int index, std::string_view value) = 0;
  virtual void bind_null(int index) = 0;
  virtual bool step() = 0;
  virtual void reset() = 0;
  virtual int64_t int64(int column) const = 0;
  virtual double real(int column) const = 0;
  virtual std::string text(int column) const = 0;
  virtual bool is_null(int column) const = 0;
};

class Database {
 public:
  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual Dialect dialect() const = 0;
  // What messages call the registry: the file, or the URL without its password.
  const fs::path& path() const { return name_; }
  int busy_timeout_ms() const { return busy_timeout_ms_; }
  bool read_only() const { return read_only_; }

  // Runs statements without parameters (schema, settings); `what` names the activity in errors.
  virtual void exec(std::string_view sql, std::string_view what = "updating it") = 0;
  virtual std::unique_ptr<Cursor> prepare(std::string_view sql) = 0;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  virtual int changes() const = 0;

  // Transactions (WriteTransaction, ReadTransaction below use these).
  // A write transaction holds the registry's write lock from its start, waiting for it up to
  // the busy timeout, so concurrent writers queue instead of failing half-way.
  virtual void begin_write() = 0;
  // Returns false when a transaction is open already (the read then joins it).
  virtual bool begin_read() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;

  int64_t query_int(std::string_view sql);
  std::string query_text(std::string_view sql);

 protected:
  Database(fs::path name, int busy_timeout_ms, bool read_only)
      : name_(std::move(name)), busy_timeout_ms_(busy_timeout_ms), read_only_(read_only) {}

 private:
  fs::path name_;
  int busy_timeout_ms_;
  bool read_only_;
};

// One prepared statement. Text is copied when bound.
class Statement {
 public:
  Statement(Database& db, std::string_view sql) : cursor_(db.prepare(sql)) {}

  Statement& bind(int index, int64_t value) {
    cursor_->bind_int64(index, value);
    return *this;
  }
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, double value) {
    cursor_->bind_double(index, value);
    return *this;
  }
  Statement& bind(int index, std::string_view value) {
    cursor_->bind_text(index, value);
    return *this;
  }
  Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const std::optional<int64_t>& value) { return value ? bind(index, *value) : bind_null(index); }
  Statement& bind(int index, const std::optional<std::string>& value) {
    return value ? bind(index, std::string_view(*value)) : bind_null(index);
  }
  Statement& bind_null(int index) {
    cursor_->bind_null(index);
    return *this;
  }

  // Advances to the next row; returns false when the statement is done.
  bool step() { return cursor_->step(); }
  // Runs a statement that returns no rows (or ignores them), then resets it for reuse.
  void run() {
    while (step()) {
    }
    reset();
  }
  // Resets the statement and clears its bindings for the next use.
  void reset() { cursor_->reset(); }

  int64_t int64(int column) const { return cursor_->int64(column); }
  double real(int column) const { return cursor_->real(column); }
  std::string text(int column) const { return cursor_->text(column); }
  bool is_null(int column) const { return cursor_->is_null(column); }
  std::optional<int64_t> optional_int64(int column) const {
    return is_null(column) ? std::nullopt : std::optional<int64_t>(int64(column));
  }
  std::optional<std::string> optional_text(int column) const {
    return is_null(column) ? std::nullopt : std::optional<std::string>(text(column));
  }

 private:
  std::unique_ptr<Cursor> cursor_;
};

// A write transaction: rolled back on destruction unless commit() was called.
class WriteTransaction {
 public:
  explicit WriteTransaction(Database& db) : db_(db) {
    db_.begin_write();
    open_ = true;
  }
  ~WriteTransaction() {
    if (open_) db_.rollback();
  }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit() {
    db_.commit();
    open_ = false;
  }

 private:
  Database& db_;
  bool open_ = false;
};

// One consistent snapshot across several queries. Inside a transaction already open on the
// connection it does nothing.
class ReadTransaction {
 public:
  explicit ReadTransaction(Database& db) : db_(db), began_(db.begin_read()) {}
  ~ReadTransaction() {
    if (began_) db_.rollback();  // it changed nothing: ending it is all that is left
  }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Database& db_;
  bool began_;
};

enum class OpenMode { read_only, read_write, create };

// Whether `location` (--registry) names a PostgreSQL database: postgresql:// or postgres://.
bool is_postgresql_url(const std::string& location);

}  // namespace recmodel::registry
