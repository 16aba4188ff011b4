// The registry's schema as a list of migrations. A new file runs them all; an older file runs
// the ones it lacks, in one transaction, after a backup copy; PRAGMA user_version records
// how far a file has come, and a file from a newer recmodel is refused untouched.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "registry/sqlite.h"

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
std::string prepare_schema(Database& db, bool writable, const std::string& recmodel_version);

}  // namespace recmodel::registry
