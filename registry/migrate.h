// `recmodel registry migrate`: copies a whole registry (models, versions with their files,
// tags, aliases with their history, evaluations, locations) into an empty one of the same or
// the other backend, keeping every id, number and time, and checks the copy row by row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "registry/registry.h"

namespace recmodel::registry {

struct TableCopy {
  std::string table;
  int64_t rows = 0;
};

// The tables copied, in the order foreign keys need, with the columns of the current schema
// (tests check this list against the schema itself).
struct TableSpec {
  const char* name;
  const char* key;                   // ORDER BY for a stable row order
  std::vector<std::string> columns;  // "i:" integer, "t:" text, then the name
};
const std::vector<TableSpec>& migrated_tables();

// Copies `from` into `to`, which must hold no models (UsageError otherwise: nothing is merged),
// in one transaction on `to`: the rows read back from `to` must equal those read from `from`
// (count and content, table by table) before it commits; IntegrityError otherwise, and `to`
// is left as it was.
std::vector<TableCopy> migrate_registry(Registry& from, Registry& to);

}  // namespace recmodel::registry
