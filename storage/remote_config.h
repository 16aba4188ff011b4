// Named storage remotes, kept in the config file (RECMODEL_CONFIG, else
// $XDG_CONFIG_HOME/recmodel/config.toml) as [remotes.NAME] tables.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace recmodel::storage {

namespace fs = std::filesystem;

enum class RemoteKind { s3, file };

struct RemoteSpec {
  std::string name;
  std::string url;                  // as given: s3://bucket/prefix or file:///path
  RemoteKind kind = RemoteKind::file;
  std::string bucket;               // s3
  std::string prefix;               // s3: key prefix without leading or trailing '/'
  std::string path;                 // file: absolute directory
  std::string endpoint;             // s3: "" = AWS_ENDPOINT_URL(_S3), profile, else AWS
  std::string region;               // s3: "" = AWS_REGION, profile, else us-east-1
  std::string profile;              // s3: "" = AWS_PROFILE or the environment's keys
  std::string ca_bundle;            // s3: PEM file of CAs to trust
  std::optional<bool> path_style;   // s3: unset = virtual-hosted unless the endpoint is an IP
  bool is_public = false;           // public clouds never receive versions classified private
  bool encrypt = false;             // objects sealed client-side (storage/encryption.h)
  std::string key_file;             // encrypt: the key file named at `remote add` (its path, never the key)

  // Returns "private" or "public".
  const char* visibility() const { return is_public ? "public" : "private"; }
};

// Checks a remote name: letters, digits, '.', '_' and '-', starting with a letter or digit.
void validate_remote_name(const std::string& name);

// Parses and checks `url` for remote `name`; throws UsageError saying what is wrong.
RemoteSpec parse_remote_url(const std::string& name, const std::string& url);

// Returns the config file: $RECMODEL_CONFIG, else $XDG_CONFIG_HOME/recmodel/config.toml,
// else ~/.config/recmodel/config.toml.
fs::path config_file_path();

// Reads every remote of the config file (none when it does not exist); DataError with the
// file, line and key when it is malformed.
std::vector<RemoteSpec> load_remotes(const fs::path& config);

// Writes `remotes` into the config file atomically, keeping its other tables.
void save_remotes(const fs::path& config, const std::vector<RemoteSpec>& remotes);

// Returns the remote called `name`, or throws NotFoundError with a "did you mean" hint.
RemoteSpec find_remote(const std::vector<RemoteSpec>& remotes, const std::string& name, const fs::path& config);

}  // namespace recmodel::storage
