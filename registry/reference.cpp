#include "registry/reference.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/error.h"

namespace recmodel::registry {

namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

const char* kForms = "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or models:/NAME";

}  // namespace

std::string ModelRef::uri() const {
  switch (kind) {
    case Kind::version:
      return version_uri(name, version);
    case Kind::alias:
      return std::string(kScheme) + name + "@" + alias;
    case Kind::latest:
      return std::string(kScheme) + name + "/latest";
    case Kind::model:
      break;
  }
  return std::string(kScheme) + name;
}

std::string version_uri(const std::string& name, int64_t version) {
  return std::string(kScheme) + name + "/" + std::to_string(version);
}

bool is_registry_uri(std::string_view text) { return text.substr(0, kScheme.size()) == kScheme; }

ModelRef parse_ref(std::string_view text, bool allow_bare) {
  std::string original(text);
  std::string_view rest = text;
  if (is_registry_uri(rest)) {
    rest.remove_prefix(kScheme.size());
  } else if (!allow_bare) {
    fail<UsageError>("'{}' is not a registry reference; use {}", original, kForms);
  }
  ModelRef ref;
  size_t at = rest.find('@');
  size_t slash = rest.find('/');
  if (at != std::string_view::npos && (slash == std::string_view::npos || at < slash)) {
    ref.kind = ModelRef::Kind::alias;
    ref.name = std::string(rest.substr(0, at));
    ref.alias = std::string(rest.substr(at + 1));
    if (ref.alias.empty()) fail<UsageError>("'{}': no alias after '@'; use {}", original, kForms);
    if (ref.alias.find_first_of("/@") != std::string::npos)
      fail<UsageError>("'{}': unexpected text after the alias; use {}", original, kForms);
  } else if (slash != std::string_view::npos) {
    ref.name = std::string(rest.substr(0, slash));
    std::string_view version = rest.substr(slash + 1);
    if (version == "latest") {
      ref.kind = ModelRef::Kind::latest;
    } else {
      ref.kind = ModelRef::Kind::version;
      int64_t number = 0;
      auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), number);
      if (version.empty() || ec != std::errc() || end != version.data() + version.size() || number < 1 ||
          version[0] == '0')
        fail<UsageError>("'{}': '{}' is not a version; versions are numbered 1, 2, 3... (or say 'latest'); use {}",
                         original, std::string(version), kForms);
      ref.version = number;
    }
  } else {
    ref.name = std::string(rest);
  }
  if (ref.name.empty()) fail<UsageError>("'{}': no model name; use {}", original, kForms);
  validate_model_name(ref.name);
  if (ref.kind == ModelRef::Kind::alias) validate_alias(ref.alias);
  return ref;
}

void validate_model_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && is_alnum(name[0]) &&
            std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
  if (!ok)
    fail<UsageError>("'{}' is not a valid model name: use up to 128 letters, digits, '.', '_' and '-', starting "
                     "with a letter or digit (e.g. query-intent)",
                     name);
}

void validate_alias(const std::string& alias) {
  bool ok = !alias.empty() && alias.size() <= 64 && std::isalpha(static_cast<unsigned char>(alias[0])) &&
            std::all_of(alias.begin(), alias.end(), [](char c) { return is_alnum(c) || c == '_' || c == '-'; });
  if (!ok)
    fail<UsageError>("'{}' is not a valid alias: use up to 64 letters, digits, '_' and '-', starting with a letter "
                     "(e.g. production, staging, canary-eu)",
                     alias);
  if (alias == "latest")
    fail<UsageError>("'latest' cannot be an alias: models:/NAME/latest always means the newest active version");
}

void validate_tag_key(const std::string& key) {
  bool ok = !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '/';
  });
  if (!ok)
    fail<UsageError>("'{}' is not a valid tag key: use up to 128 letters, digits, '.', '_', '-', ':' and '/' "
                     "(e.g. team, classification)",
                     key);
}

void validate_tag_value(const std::string& key, const std::string& value) {
  if (value.size() > 4096) fail<UsageError>("tag {}: the value is {} bytes; the limit is 4096", key, value.size());
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f) fail<UsageError>("tag {}: the value holds a control character (newline, tab, ...)", key);
}

}  // namespace recmodel::registry
