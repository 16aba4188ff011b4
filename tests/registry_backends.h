// The registry backends the registry tests run on: an SQLite file, and a database on a
// throw-away PostgreSQL server (tests/registry/pg_fixture.sh) that the first test needing one
// starts and that stops when the test process ends. Its password is put in PGPASSWORD, so
// every recmodel the tests run (and every forked child) logs in as a user would.
#pragma once

#include <string>
#include <vector>

#include "tests/support.h"

namespace recmodel::testing {

struct PostgresServer {
  std::string dir;       // the fixture's directory (for kill / restart)
  std::string base_url;  // postgresql://USER@127.0.0.1:PORT (no database, no password)
  std::string password;
};

// The test process's server, started on first use.
const PostgresServer& postgres_server();

// A new empty database on it: postgresql://USER@127.0.0.1:PORT/NAME.
std::string fresh_postgres_database();

// Crashes the server (SIGKILL) or starts it again on the same port, its data kept.
void kill_postgres();
void restart_postgres();

// Where a fresh registry lives on each backend: `dir`/registry.db, then a fresh PostgreSQL
// database. Tests loop over these, so one body checks both.
std::vector<std::string> fresh_registries(const TempDir& dir);

}  // namespace recmodel::testing
