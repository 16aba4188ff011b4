#include "registry/migrate.h"

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"

namespace recmodel::registry {

namespace {

bool is_integer(const std::string& column) { return column.rfind("i:", 0) == 0; }
std::string column_name(const std::string& column) { return column.substr(2); }

std::string column_list(const TableSpec& table) {
  std::string out;
  for (const auto& column : table.columns) out += (out.empty() ? "" : ", ") + column_name(column);
  return out;
}

std::string select_all(const TableSpec& table) {
  return fmt::format("SELECT {} FROM {} ORDER BY {}", column_list(table), table.name, table.key);
}

// Reads every row of `table` in key order, handing each column (none for NULL) to `row`.
template <typename Row>
void read_rows(Database& db, const TableSpec& table, Row&& row) {
  Statement query(db, select_all(table));
  std::vector<std::optional<std::string>> values(table.columns.size());
  while (query.step()) {
    for (size_t c = 0; c < values.size(); ++c) {
      const int column = static_cast<int>(c);
      if (query.is_null(column))
        values[c].reset();
      else
        values[c] = is_integer(table.columns[c]) ? std::to_string(query.int64(column)) : query.text(column);
    }
    row(values);
  }
}

// Chains a row into `digest`: NULL and each value told apart by a length prefix.
void add_row(std::string& digest, const std::vector<std::optional<std::string>>& values) {
  std::string row = digest;
  for (const auto& value : values) row += value ? fmt::format("{}:{};", value->size(), *value) : std::string("-;");
  digest = sha256_hex(row);
}

}  // namespace

const std::vector<TableSpec>& migrated_tables() {
  static const std::vector<TableSpec> tables = {
      {"models", "id", {"i:id", "t:name", "t:description", "t:created_at", "t:created_by", "i:next_version"}},
      {"versions",
       "id",
       {"i:id", "i:model_id", "i:version", "t:source_path", "t:manifest_sha256", "i:file_count", "i:total_size",
        "t:metrics", "t:params", "t:dataset_sha256", "t:parent_name", "i:parent_version", "t:base_checkpoint",
        "t:created_at", "t:created_by", "t:status", "t:description"}},
      {"version_files", "version_id, path", {"i:version_id", "t:path", "i:size", "t:sha256"}},
      {"model_tags", "model_id, key", {"i:model_id", "t:key", "t:value"}},
      {"version_tags", "version_id, key", {"i:version_id", "t:key", "t:value"}},
      {"aliases", "model_id, alias", {"i:model_id", "t:alias", "i:version_id", "t:moved_at"}},
      {"alias_history",
       "id",
       {"i:id", "i:model_id", "t:alias", "i:from_version", "i:to_version", "t:moved_at", "t:moved_by", "t:reason"}},
      {"evaluations",
       "id",
       {"i:id", "i:version_id", "t:split", "t:dataset_sha256", "t:metrics", "t:recorded_at", "t:recorded_by",
        "t:profile"}},
      {"locations",
       "id",
       {"i:id", "i:version_id", "t:kind", "t:uri", "t:details", "t:recorded_at", "t:recorded_by"}},
  };
  return tables;
}

std::vector<TableCopy> migrate_registry(Registry& from, Registry& to) {
  Database& source = from.database();
  Database& target = to.database();
  if (source.dialect() == target.dialect() && source.path() == target.path())
    fail<UsageError>("{}: --to names the registry being migrated; choose another", target.path().string());

  ReadTransaction snapshot(source);
  WriteTransaction transaction(target);
  const int64_t present = target.query_int("SELECT count(*) FROM models");
  if (present > 0)
    fail<UsageError>("{}: already holds a registry ({} model{}); migrate into an empty one (nothing is merged)",
                     target.path().string(), present, present == 1 ? "" : "s");

  std::vector<TableCopy> copies;
  for (const TableSpec& table : migrated_tables()) {
    std::string placeholders;
    for (size_t c = 0; c < table.columns.size(); ++c) placeholders += fmt::format("{}?{}", c ? ", " : "", c + 1);
    Statement insert(target, fmt::format("INSERT INTO {} ({}) VALUES ({})", table.name, column_list(table),
                                         placeholders));
    std::string read_digest, written_digest;
    int64_t rows = 0;
    read_rows(source, table, [&](const std::vector<std::optional<std::string>>& values) {
      for (size_t c = 0; c < values.size(); ++c) {
        const int index = static_cast<int>(c) + 1;
        if (!values[c])
          insert.bind_null(index);
        else if (is_integer(table.columns[c]))
          insert.bind(index, static_cast<int64_t>(std::stoll(*values[c])));
        else
          insert.bind(index, *values[c]);
      }
      insert.run();
      add_row(read_digest, values);
      ++rows;
    });
    int64_t written = 0;
    read_rows(target, table, [&](const std::vector<std::optional<std::string>>& values) {
      add_row(written_digest, values);
      ++written;
    });
    if (written != rows || written_digest != read_digest)
      fail<IntegrityError>("{}: the copy of table {} does not match {} ({} rows read, {} written); nothing was "
                           "migrated",
                           target.path().string(), table.name, source.path().string(), rows, written);
    copies.push_back({table.name, rows});
  }
  // New rows continue after the copied ids (PostgreSQL's identity columns keep their own counter).
  if (target.dialect() == Dialect::postgresql)
    for (const TableSpec& table : migrated_tables())
      if (std::string(table.key) == "id")
        target.exec(fmt::format("SELECT setval(pg_get_serial_sequence('{0}', 'id'), "
                                "(SELECT coalesce(max(id), 0) + 1 FROM {0}), false)",
                                table.name),
                    "migrating it");
  transaction.commit();
  return copies;
}

}  // namespace recmodel::registry
