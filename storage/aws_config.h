// AWS settings the way the AWS CLI and SDKs take them: environment variables, then the named
// profile in ~/.aws/credentials and ~/.aws/config.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "storage/sigv4.h"

namespace recmodel::storage {

// What the environment and the AWS files say for one remote.
struct AwsSettings {
  std::optional<Credentials> credentials;  // none found: requests cannot be signed
  std::string region;                      // never empty: us-east-1 when nothing says otherwise
  std::string endpoint;                    // "" = AWS's own endpoint for the region
  std::string ca_bundle;
  std::string profile;                     // the profile consulted, for messages
};

// Returns the sections of an INI file as the AWS CLI reads it ("[profile dev]" kept verbatim);
// a missing file gives no sections. Lines of nested blocks (indented) are skipped.
std::map<std::string, std::map<std::string, std::string>> read_aws_ini(const std::string& path);

// Resolves credentials, region, endpoint and CA bundle. `profile` is the remote's --profile
// ("" = AWS_PROFILE, else "default"); an explicit profile wins over the AWS_ACCESS_KEY_ID
// environment variables, as with `aws --profile`.
AwsSettings resolve_aws_settings(const std::string& profile);

}  // namespace recmodel::storage
