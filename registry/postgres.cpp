#include "registry/postgres.h"

#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>
#include <thread>
#include <vector>

namespace recmodel::registry {

namespace {

// Type OIDs of the parameters the registry binds (PostgreSQL's catalog: pg_type.dat).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kFloat8Oid = 701;

std::string first_line(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (char& c : message)
    if (c == '\n') c = ' ';
  return message;
}

std::string seconds_text(int ms) {
  if (ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{:.1f} s", ms / 1000.0);
}

// Notices ("relation already exists, skipping") are not for the user's terminal.
void ignore_notice(void*, const char*) {}

// A statement's rows: run at the first step with the parameters bound so far, each typed by
// how it was bound (an unbound one as a NULL text, so that a parameter a filter leaves unused
// still has a type).
class PostgresCursor : public Cursor {
 public:
  PostgresCursor(PostgresDatabase& db, std::string sql) : db_(&db), sql_(std::move(sql)) {}
  ~PostgresCursor() override { clear(); }

  void bind_int64(int index, int64_t value) override { set(index, std::to_string(value), kInt8Oid); }
  void bind_double(int index, double value) override { set(index, fmt::format("{:.17g}", value), kFloat8Oid); }
  void bind_text(int index, std::string_view value) override { set(index, std::string(value), kTextOid); }
  void bind_null(int index) override {
    slot(index);
    values_[static_cast<size_t>(index - 1)].reset();
    types_[static_cast<size_t>(index - 1)] = 0;  // inferred from where it is used
  }

  bool step() override {
    if (!result_) execute();
    if (row_ + 1 >= PQntuples(result_)) {
      row_ = PQntuples(result_);
      return false;
    }
    ++row_;
    return true;
  }
  void reset() override {
    clear();
    values_.clear();
    types_.clear();
  }

  int64_t int64(int column) const override {
    const char* value = PQgetvalue(result_, row_, column);
    if (*value == 't' || *value == 'f') return *value == 't';  // a boolean column
    return std::strtoll(value, nullptr, 10);
  }
  double real(int column) const override { return std::strtod(PQgetvalue(result_, row_, column), nullptr); }
  std::string text(int column) const override {
    return std::string(PQgetvalue(result_, row_, column), static_cast<size_t>(PQgetlength(result_, row_, column)));
  }
  bool is_null(int column) const override { return PQgetisnull(result_, row_, column) != 0; }

 private:
  void slot(int index) {
    if (values_.size() < static_cast<size_t>(index)) {
      values_.resize(static_cast<size_t>(index));
      types_.resize(static_cast<size_t>(index), kTextOid);
    }
  }
  void set(int index, std::string value, Oid type) {
    slot(index);
    values_[static_cast<size_t>(index - 1)] = std::move(value);
    types_[static_cast<size_t>(index - 1)] = type;
  }
  void execute() {
    std::vector<const char*> pointers;
    for (const auto& value : values_) pointers.push_back(value ? value->c_str() : nullptr);
    result_ = PQexecParams(db_->handle(), sql_.c_str(), static_cast<int>(values_.size()), types_.data(),
                           pointers.data(), nullptr, nullptr, 0);
    const ExecStatusType status = result_ ? PQresultStatus(result_) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      PGresult* failed = result_;
      result_ = nullptr;
      struct Clear {
        PGresult* r;
        ~Clear() { PQclear(r); }
      } guard{failed};
      db_->raise(failed, sql_.rfind("SELECT", 0) == 0 ? "reading it" : "updating it");
    }
    const char* changed = PQcmdTuples(result_);
    db_->set_changes(changed && *changed ? std::atoi(changed) : 0);
    row_ = -1;
  }
  void clear() {
    if (result_) PQclear(result_);
    result_ = nullptr;
  }

  PostgresDatabase* db_;
  std::string sql_;
  std::vector<std::optional<std::string>> values_;
  std::vector<Oid> types_;
  PGresult* result_ = nullptr;
  int row_ = -1;
};

}  // namespace

std::string redact_url(const std::string& url) {
  static const std::regex password_in_authority(R"(^([a-z]+://[^:@/?#]*):[^@/?#]*@)", std::regex::icase);
  static const std::regex password_parameter(R"(([?&])password=[^&]*&?)", std::regex::icase);
  std::string out = std::regex_replace(url, password_in_authority, "$1@");
  out = std::regex_replace(out, password_parameter, "$1");
  if (!out.empty() && (out.back() == '&' || out.back() == '?')) out.pop_back();
  return out;
}

std::string postgresql_sql(std::string_view sql) {
  static std::mutex mutex;
  static std::map<std::string, std::string, std::less<>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(sql); it != cache.end()) return it->second;
  }
  static const std::vector<std::pair<std::regex, std::string>> rewrites = {
      {std::regex(R"(\bINTEGER\s+PRIMARY\s+KEY\b)"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
      {std::regex(R"(\bINTEGER\b)"), "BIGINT"},
      {std::regex(R"(\)\s*WITHOUT\s+ROWID\b)"), ")"},
      {std::regex(R"(\bgroup_concat\s*\()"), "string_agg("},
      {std::regex(R"(\bchar\s*\()"), "chr("},
      {std::regex(R"(\?(\d+))"), "$$$1"},
  };
  // Code between string literals and comments is rewritten; those are copied as they are.
  std::string out, code;
  auto flush = [&] {
    for (const auto& [pattern, replacement] : rewrites) code = std::regex_replace(code, pattern, replacement);
    out += code;
    code.clear();
  };
  for (size_t i = 0; i < sql.size();) {
    if (sql[i] == '\'') {
      flush();
      size_t end = i + 1;
      while (end < sql.size() && !(sql[end] == '\'' && (end + 1 >= sql.size() || sql[end + 1] != '\'')))
        end += sql[end] == '\'' ? 2 : 1;
      end = std::min(end + 1, sql.size());
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (sql.compare(i, 2, "--") == 0) {
      flush();
      size_t end = sql.find('\n', i);
      end = end == std::string_view::npos ? sql.size() : end;
      out.append(sql.substr(i, end - i));
      i = end;
    } else {
      code += sql[i++];
    }
  }
  flush();
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() > 1000) cache.clear();
  return cache.emplace(std::string(sql), out).first->second;
}

PostgresDatabase::PostgresDatabase(const std::string& url, int busy_timeout_ms)
    : Database(redact_url(url), busy_timeout_ms, false), url_(url) {
  connect();
}

PostgresDatabase::~PostgresDatabase() {
  if (conn_) PQfinish(conn_);
}

void PostgresDatabase::connect() {
  // Later keywords win over what the URL says only for connect_timeout's default: the URL's
  // own connect_timeout, if any, comes after it.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"10", "recmodel", url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (!conn_) throw Error(ExitCode::internal, "libpq could not allocate a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = first_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    const bool login = message.find("password") != std::string::npos ||
                       message.find("authentication") != std::string::npos;
    if (login)
      fail<RemoteError>("{}: the PostgreSQL server refused the login ({}); give the password in PGPASSWORD or "
                        "~/.pgpass",
                        path().string(), message);
    fail<RemoteError>("{}: cannot connect to the registry's PostgreSQL server ({})", path().string(), message);
  }
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
}

void PostgresDatabase::reconnect(int wait_ms) {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (int attempt = 0;; ++attempt) {
    try {
      connect();
      return;
    } catch (const RemoteError&) {
      if (std::chrono::steady_clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 500)));
  }
}

bool PostgresDatabase::idle() const {
  return conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

bool PostgresDatabase::in_transaction() const {
  return conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

void PostgresDatabase::raise(const PGresult* result, std::string_view what) const {
  const std::string name = path().string();
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state ? state : "";
  const std::string detail =
      first_line(result && PQresultErrorMessage(result)[0] ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (PQstatus(conn_) != CONNECTION_OK || code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0) {
    if (committing_)
      throw ConnectionLostError(fmt::format(
          "{}: lost the connection to the registry's PostgreSQL server while committing ({}); whether the change "
          "was recorded is unknown: look with `recmodel registry show` before running the command again",
          name, detail));
    throw ConnectionLostError(fmt::format(
        "{}: lost the connection to the registry's PostgreSQL server while {} ({}); nothing of it was recorded, run "
        "the command again when the server is back",
        name, what, detail));
  }
  if (code == "55P03" || code == "57014")
    fail<IntegrityError>("{}: the registry stayed locked by another process for more than {} while {}; retry when the "
                         "other job has finished, or wait longer with --lock-timeout SECONDS",
                         name, seconds_text(busy_timeout_ms()), what);
  if (code == "40001" || code == "40P01")
    fail<IntegrityError>("{}: a concurrent change conflicted while {} ({}); nothing was recorded, run it again", name,
                         what, detail);
  if (code.rfind("28", 0) == 0)
    fail<RemoteError>("{}: the PostgreSQL server refused the login ({})", name, detail);
  if (code == "42501" || code == "25006")
    fail<DataError>("{}: no permission on the registry while {} ({}); grant the user rights on its tables", name,
                    what, detail);
  if (code.rfind("53", 0) == 0)
    fail<DataError>("{}: the PostgreSQL server is out of resources while {} ({}); nothing was changed", name, what,
                    detail);
  throw Error(ExitCode::internal,
              fmt::format("{}: PostgreSQL error {} ({}) while {} (please report this)", name, code, detail, what));
}

void PostgresDatabase::exec(std::string_view sql, std::string_view what) {
  const std::string text = postgresql_sql(sql);
  PGresult* result = PQexec(conn_, text.c_str());
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    struct Clear {
      PGresult* r;
      ~Clear() { PQclear(r); }
    } guard{result};
    raise(result, what);
  }
  PQclear(result);
}

std::unique_ptr<Cursor> PostgresDatabase::prepare(std::string_view sql) {
  return std::make_unique<PostgresCursor>(*this, postgresql_sql(sql));
}

void PostgresDatabase::begin_write() {
  exec("BEGIN ISOLATION LEVEL READ COMMITTED", "starting a change");
  // READ COMMITTED reads what committed before each statement: once the lock is held, that is
  // every earlier writer's work.
  if (busy_timeout_ms() == 0) {
    if (query_int(fmt::format("SELECT pg_try_advisory_xact_lock({})", kPostgresWriteLock)) != 1) {
      rollback();
      fail<IntegrityError>("{}: the registry is locked by another writer (--lock-timeout 0: not waiting)",
                           path().string());
    }
    return;
  }
  exec(fmt::format("SET LOCAL lock_timeout = {}", busy_timeout_ms()), "starting a change");
  try {
    exec(fmt::format("SELECT pg_advisory_xact_lock({})", kPostgresWriteLock), "updating it");
  } catch (...) {
    rollback();
    throw;
  }
}

bool PostgresDatabase::begin_read() {
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
  exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "reading it");
  return true;
}

void PostgresDatabase::commit() {
  committing_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{committing_};
  exec("COMMIT");
}

void PostgresDatabase::rollback() noexcept {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE)
    PQclear(PQexec(conn_, "ROLLBACK"));
}

}  // namespace recmodel::registry
