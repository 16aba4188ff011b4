// Registry references (`models:/NAME/VERSION`, `models:/NAME@ALIAS`, `models:/NAME/latest`,
// `models:/NAME`) and the rules for model, alias and tag names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace recmodel::registry {

struct ModelRef {
  enum class Kind { model, version, alias, latest };
  Kind kind = Kind::model;
  std::string name;
  int64_t version = 0;  // Kind::version
  std::string alias;    // Kind::alias

  // Returns the canonical URI: models:/intent/3, models:/intent@production, models:/intent/latest.
  std::string uri() const;
  bool names_version() const { return kind != Kind::model; }
};

constexpr std::string_view kScheme = "models:/";

// Returns whether `text` is a registry URI (starts with "models:/").
bool is_registry_uri(std::string_view text);

// Parses a reference. With `allow_bare`, "intent/3", "intent@production" and "intent" are
// accepted too (registry subcommands); throws UsageError with the accepted forms otherwise.
ModelRef parse_ref(std::string_view text, bool allow_bare);

// Returns the URI of version `version` of model `name`.
std::string version_uri(const std::string& name, int64_t version);

// Each throws UsageError naming what is allowed. Model names: letters, digits, '.', '_', '-'
// (up to 128, starting with a letter or digit). Aliases: a letter, then letters, digits, '_'
// and '-' (up to 64; not "latest"). Tag keys: letters, digits, '.', '_', '-', ':', '/' (up to
// 128). Tag values: up to 4096 characters without control characters.
void validate_model_name(const std::string& name);
void validate_alias(const std::string& alias);
void validate_tag_key(const std::string& key);
void validate_tag_value(const std::string& key, const std::string& value);

}  // namespace recmodel::registry
