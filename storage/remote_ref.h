// What push, pull, sync and ls name on a remote: NAME/VERSION, or a registry URI
// models:/NAME/VERSION, models:/NAME/latest, models:/NAME@ALIAS (../shared/CLI.md).
#pragma once

#include <string>

namespace recmodel::storage {

struct RemoteRef {
  std::string name;
  std::string version;   // "" with an alias or latest
  std::string alias;     // models:/NAME@ALIAS
  bool latest = false;   // models:/NAME/latest
  bool registry_uri = false;  // written as models:/...

  // Returns the reference as a user would type it.
  std::string text() const;
};

// Returns whether `text` is a models:/ URI.
bool is_registry_uri(const std::string& text);

// Parses NAME/VERSION or a models:/ URI; throws UsageError saying what is expected.
RemoteRef parse_remote_ref(const std::string& text);

}  // namespace recmodel::storage
