// The registry's schema as one list of migrations for both backends (written in SQLite's
// spelling; registry/postgres.h rewrites it for PostgreSQL). A new database runs them all; an
// older one runs those it lacks, in one transaction; an SQLite file is backed up first, and
// PRAGMA user_version records how far it has come. A database from a newer recmodel is
// refused untouched.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "registry/database.h"

namespace recmodel::registry {

// "RCMR" in PRAGMA application_id marks a file as a recmodel registry.
constexpr int64_t kApplicationId = 0x52434D52;

// Returns migration i (from schema version i to i + 1) as SQL, for i in [0, schema_version()).
const std::vector<std::string>& migrations();

// Returns the schema version this recmodel writes (the number of migrations).
int64_t schema_version();

// Checks the file's application_id and user_version and brings it to schema_version():
// creates an empty file's schema, migrates an older one (backing it up first to
// `<file>.v<N>.bak`), refuses a newer or foreign one with DataError. `writable` false means
// the connection is read-only: an older schema is then an error instead of a migration.
// Returns the path of the backup made, or "".
// On PostgreSQL the version is kept in the meta table and the migration is one transaction
// under the registry's write lock (no backup is needed: it commits whole or not at all).
std::string prepare_schema(Database& db, bool writable, const std::string& recmodel_version);

// Whether the database holds a registry already (an SQLite file that exists always does; a
// PostgreSQL database once its tables are there).
bool has_registry(Database& db);

}  // namespace recmodel::registry
