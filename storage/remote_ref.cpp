#include "storage/remote_ref.h"

#include "common/error.h"
#include "storage/manifest.h"

namespace recmodel::storage {

std::string RemoteRef::text() const {
  if (!alias.empty()) return "models:/" + name + "@" + alias;
  if (latest) return "models:/" + name + "/latest";
  return (registry_uri ? "models:/" : "") + name + "/" + version;
}

bool is_registry_uri(const std::string& text) { return text.rfind("models:/", 0) == 0; }

RemoteRef parse_remote_ref(const std::string& text) {
  RemoteRef ref;
  std::string rest = text;
  if (is_registry_uri(text)) {
    ref.registry_uri = true;
    rest = text.substr(8);
  }
  auto bad = [&]() {
    fail<UsageError>("'{}' is not a model version reference; give NAME/VERSION, models:/NAME/VERSION, "
                     "models:/NAME/latest or models:/NAME@ALIAS",
                     text);
  };
  size_t at = rest.find('@');
  if (at != std::string::npos) {
    if (!ref.registry_uri) bad();
    ref.name = rest.substr(0, at);
    ref.alias = rest.substr(at + 1);
    if (ref.name.empty() || ref.alias.empty() || ref.alias.find('/') != std::string::npos) bad();
    validate_key_part(ref.name, "model name");
    validate_key_part(ref.alias, "alias");
    return ref;
  }
  size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) bad();
  ref.name = rest.substr(0, slash);
  ref.version = rest.substr(slash + 1);
  if (ref.name.empty() || ref.version.empty()) bad();
  validate_key_part(ref.name, "model name");
  if (ref.registry_uri && ref.version == "latest") {
    ref.latest = true;
    ref.version.clear();
    return ref;
  }
  validate_key_part(ref.version, "version");
  return ref;
}

}  // namespace recmodel::storage
