#include "commands/remote.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "commands/push.h"
#include "common/error.h"
#include "storage/encrypted_store.h"
#include "storage/encryption.h"
#include "storage/object_store.h"
#include "storage/remote_config.h"
#include "storage/s3_client.h"

namespace recmodel {

namespace fs = std::filesystem;

void run_remote_add(const RemoteAddOptions& options, const std::string& config_flag, const Console& console) {
  storage::validate_remote_name(options.name);
  storage::RemoteSpec spec = storage::parse_remote_url(options.name, options.url);
  bool s3 = spec.kind == storage::RemoteKind::s3;
  if (!s3) {
    for (const auto& [flag, given] : std::vector<std::pair<const char*, bool>>{
             {"--endpoint", !options.endpoint.empty()},
             {"--region", !options.region.empty()},
             {"--profile", !options.profile.empty()},
             {"--ca-bundle", !options.ca_bundle.empty()},
             {"--path-style", options.path_style}})
      if (given) fail<UsageError>("{} applies to s3:// remotes only; '{}' is a file remote", flag, options.url);
  }
  if (!options.endpoint.empty()) {
    storage::parse_endpoint(options.endpoint, "--endpoint");
    spec.endpoint = options.endpoint;
    while (!spec.endpoint.empty() && spec.endpoint.back() == '/') spec.endpoint.pop_back();
  }
  if (!options.region.empty()) {
    bool ok = options.region.size() <= 64 && std::all_of(options.region.begin(), options.region.end(), [](char c) {
                return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                       c == '-';
              });
    if (!ok) fail<UsageError>("--region '{}' is not a region name (like us-east-1 or eu-central-1)", options.region);
    spec.region = options.region;
  }
  spec.profile = options.profile;
  if (!options.ca_bundle.empty()) {
    std::error_code ec;
    if (!fs::is_regular_file(options.ca_bundle, ec))
      fail<NotFoundError>("{}: no such file (--ca-bundle takes a PEM file of CA certificates)", options.ca_bundle);
    spec.ca_bundle = fs::absolute(options.ca_bundle).string();
  }
  if (options.path_style) spec.path_style = true;
  spec.is_public = options.is_public;
  if (!options.key_file.empty() && !options.encrypt)
    fail<UsageError>("--key-file is the key of an encrypted remote: add --encrypt");
  spec.encrypt = options.encrypt;
  if (!options.key_file.empty()) spec.key_file = fs::absolute(options.key_file).string();

  std::string config;
  auto remotes = configured_remotes(config_flag, &config);
  auto existing = std::find_if(remotes.begin(), remotes.end(), [&](const auto& r) { return r.name == spec.name; });
  bool replaced = existing != remotes.end();
  if (replaced && !options.force)
    fail<UsageError>("remote '{}' already exists ({}); remove it first or pass --force to replace it", spec.name,
                     existing->url);

  // The key file is checked before anything is created, so a refused one leaves nothing behind.
  std::optional<storage::KeyMaterial> key;
  if (spec.encrypt) key = storage::read_key_file(storage::encryption_key_file(spec, storage::StoreOptions{}));

  if (options.create_bucket) {
    if (s3) {
      storage::StoreOptions store_options;
      auto client = storage::make_s3_client(spec, store_options);
      client->create_bucket();
      console.info("bucket '{}' is ready", spec.bucket);
    } else {
      std::error_code ec;
      fs::create_directories(spec.path, ec);
      if (ec) fail<RemoteError>("{}: cannot create directory: {}", spec.path, ec.message());
    }
  }
  std::string keyring_id;
  if (spec.encrypt) {
    // The keyring is made (or, on a remote that has one, opened) now: a wrong key or an
    // unreachable store is found here, not at the first push.
    storage::RemoteSpec plain = spec;  // the store itself, where the keyring lives
    plain.encrypt = false;
    keyring_id = storage::ensure_keyring(*storage::open_store(plain, storage::StoreOptions{}), *key);
  }
  if (replaced) *existing = spec;
  else remotes.push_back(spec);
  storage::save_remotes(config, remotes);

  nlohmann::json document = {{"added", remote_json(spec)}, {"replaced", replaced}, {"config", config}};
  if (spec.encrypt) document["keyring"] = keyring_id;
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "{} remote '{}' ({}{}): {}{}\n", replaced ? "replaced" : "added", spec.name, spec.visibility(),
               spec.encrypt ? ", encrypted" : "", spec.url, spec.endpoint.empty() ? "" : " at " + spec.endpoint);
    if (spec.encrypt)
      fmt::print(out, "keyring {} ({}); keep the key file safe: without it nothing on this remote can be read\n",
                 keyring_id, spec.key_file.empty() ? "key from RECMODEL_ENCRYPTION_KEY_FILE" : "key file " + spec.key_file);
    fmt::print(out, "saved in {}\n", config);
  });
}

void run_remote_keygen(const std::string& file, const Console& console) {
  storage::write_new_key_file(file);
  nlohmann::json document = {{"key_file", file}, {"mode", "0600"}};
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "wrote a new 256-bit key to {} (mode 0600); back it up: data encrypted with it cannot be read "
                    "without it\n",
               file);
  });
}

void run_remote_rotate_key(const RemoteRotateOptions& options, const std::string& config_flag, const Console& console) {
  std::string config;
  auto remotes = configured_remotes(config_flag, &config);
  storage::RemoteSpec spec = storage::find_remote(remotes, options.name, config);
  if (!spec.encrypt) fail<UsageError>("remote '{}' is not encrypted; there is no key to rotate", spec.name);
  storage::StoreOptions store_options;
  store_options.key_file = options.key_file;
  const auto old_key = storage::read_key_file(storage::encryption_key_file(spec, store_options));
  const auto new_key = storage::read_key_file(options.new_key_file);
  storage::RemoteSpec plain = spec;
  plain.encrypt = false;
  auto store = storage::open_store(plain, store_options);
  const std::string id = storage::rotate_keyring(*store, old_key, new_key);
  // The config names the new key file from now on (when it named one at all).
  bool updated = false;
  if (!spec.key_file.empty()) {
    for (auto& remote : remotes)
      if (remote.name == spec.name) remote.key_file = fs::absolute(options.new_key_file).string();
    storage::save_remotes(config, remotes);
    updated = true;
  }
  nlohmann::json document = {{"remote", spec.name}, {"keyring", id}, {"key_file", options.new_key_file},
                             {"config_updated", updated}};
  console.result(document, [&](std::FILE* out) {
    fmt::print(out,
               "remote '{}': keyring {} now opens with {} only, with a new key generation for what is written from "
               "now on (objects unchanged, nothing re-uploaded)\n",
               spec.name, id, options.new_key_file);
    if (updated) fmt::print(out, "{} names the new key file\n", config);
  });
}

void run_remote_list(const std::string& config_flag, const Console& console) {
  std::string config;
  auto remotes = configured_remotes(config_flag, &config);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& remote : remotes) list.push_back(remote_json(remote));
  nlohmann::json document = {{"config", config}, {"remotes", list}};
  console.result(document, [&](std::FILE* out) {
    if (remotes.empty()) {
      fmt::print(out, "no remotes in {}; add one with 'recmodel remote add NAME URL'\n", config);
      return;
    }
    size_t name_width = 4, url_width = 3, visibility_width = 10;
    for (const auto& remote : remotes) {
      name_width = std::max(name_width, remote.name.size());
      url_width = std::max(url_width, remote.url.size());
      if (remote.encrypt) visibility_width = 18;  // "private, encrypted"
    }
    fmt::print(out, "{:<{}}  {:<{}}  {:<{}}  {}\n", "NAME", name_width, "VISIBILITY", visibility_width, "URL", url_width, "ENDPOINT");
    for (const auto& remote : remotes) {
      std::string endpoint = remote.kind == storage::RemoteKind::file ? "-"
                             : remote.endpoint.empty()                ? "(AWS or AWS_ENDPOINT_URL)"
                                                                      : remote.endpoint;
      const std::string visibility = std::string(remote.visibility()) + (remote.encrypt ? ", encrypted" : "");
      fmt::print(out, "{:<{}}  {:<{}}  {:<{}}  {}\n", remote.name, name_width, visibility, visibility_width, remote.url, url_width,
                 endpoint);
    }
  });
}

void run_remote_remove(const RemoteRemoveOptions& options, const std::string& config_flag, const Console& console) {
  std::string config;
  auto remotes = configured_remotes(config_flag, &config);
  storage::RemoteSpec removed = storage::find_remote(remotes, options.name, config);
  remotes.erase(std::remove_if(remotes.begin(), remotes.end(), [&](const auto& r) { return r.name == options.name; }),
                remotes.end());
  storage::save_remotes(config, remotes);
  nlohmann::json document = {{"removed", remote_json(removed)}, {"config", config}};
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "removed remote '{}' ({}); the data on it is untouched\n", removed.name, removed.url);
  });
}

CommandAction register_remote(CLI::App& command, const Console& console) {
  command.require_subcommand(1);
  command.fallthrough();
  command.footer("\nRemotes live in the config file: $RECMODEL_CONFIG, else $XDG_CONFIG_HOME/recmodel/config.toml.\n");
  auto config = std::make_shared<RemoteConfigOption>();
  add_config_option(command, config->config);

  auto add_options = std::make_shared<RemoteAddOptions>();
  CLI::App* add = command.add_subcommand("add", "Add a named remote: s3://BUCKET[/PREFIX] or file:///PATH");
  add->fallthrough();
  add->add_option("NAME", add_options->name, "Name of the remote (letters, digits, '.', '_', '-')")->required();
  add->add_option("URL", add_options->url, "s3://BUCKET[/PREFIX] or file:///PATH")->required();
  const char* s3_group = "S3";
  add->add_option("--endpoint", add_options->endpoint,
                  "S3 endpoint URL, e.g. http://127.0.0.1:7480 (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the "
                  "profile's endpoint_url, else AWS)")
      ->type_name("URL")
      ->group(s3_group);
  add->add_option("--region", add_options->region,
                  "Region to sign for (default: AWS_REGION, the profile's region, else us-east-1)")
      ->type_name("REGION")
      ->group(s3_group);
  add->add_option("--profile", add_options->profile,
                  "AWS profile of ~/.aws/credentials and ~/.aws/config (default: the AWS_* variables, AWS_PROFILE)")
      ->type_name("PROFILE")
      ->group(s3_group);
  add->add_flag("--path-style", add_options->path_style,
                "Address the bucket as ENDPOINT/BUCKET/KEY (default: BUCKET.ENDPOINT/KEY, path style for IP "
                "addresses)")
      ->group(s3_group);
  add->add_option("--ca-bundle", add_options->ca_bundle,
                  "PEM file of CA certificates to trust, for a private CA (default: AWS_CA_BUNDLE, the system's)")
      ->type_name("FILE")
      ->group(s3_group);
  const char* policy_group = "Data residency";
  auto* is_public = add->add_flag("--public", add_options->is_public,
                                  "A public cloud: versions classified private are refused")
                        ->group(policy_group);
  auto* is_private =
      add->add_flag("--private", add_options->is_private, "A private cloud or NAS (the default)")->group(policy_group);
  is_public->excludes(is_private);
  add->add_flag("--create-bucket", add_options->create_bucket,
                "Create the bucket (or the directory) now if it does not exist");
  add->add_flag("--force", add_options->force, "Replace a remote of the same name");
  const char* crypt_group = "Encryption";
  add->add_flag("--encrypt", add_options->encrypt,
                "Seal every object client-side (AES-256-GCM; names are HMACs): the store sees ciphertext only")
      ->group(crypt_group);
  add->add_option("--key-file", add_options->key_file,
                  "Key file for --encrypt (recmodel remote keygen; default: $RECMODEL_ENCRYPTION_KEY_FILE); its "
                  "path is saved, never the key")
      ->type_name("FILE")
      ->group(crypt_group);

  auto keygen_file = std::make_shared<std::string>();
  CLI::App* keygen = command.add_subcommand("keygen", "Write a new random key for encrypted remotes (mode 0600)");
  keygen->fallthrough();
  keygen->add_option("FILE", *keygen_file, "Key file to create (never replaced)")->required();

  auto rotate_options = std::make_shared<RemoteRotateOptions>();
  CLI::App* rotate =
      command.add_subcommand("rotate-key", "Re-seal an encrypted remote's keyring under a new key (no data re-uploaded)");
  rotate->fallthrough();
  rotate->add_option("NAME", rotate_options->name, "Name of the encrypted remote")->required();
  rotate->add_option("--new-key-file", rotate_options->new_key_file, "The new key (recmodel remote keygen)")
      ->type_name("FILE")
      ->required();
  rotate->add_option("--key-file", rotate_options->key_file,
                     "The current key (default: $RECMODEL_ENCRYPTION_KEY_FILE, else the one the config names)")
      ->type_name("FILE");

  CLI::App* list = command.add_subcommand("list", "List the remotes of the config file");
  list->fallthrough();

  auto remove_options = std::make_shared<RemoteRemoveOptions>();
  CLI::App* remove = command.add_subcommand("remove", "Remove a remote from the config file (its data stays)");
  remove->fallthrough();
  remove->add_option("NAME", remove_options->name, "Name of the remote")->required();

  return [=, &console] {
    if (add->parsed()) run_remote_add(*add_options, config->config, console);
    else if (list->parsed()) run_remote_list(config->config, console);
    else if (remove->parsed()) run_remote_remove(*remove_options, config->config, console);
    else if (keygen->parsed()) run_remote_keygen(*keygen_file, console);
    else if (rotate->parsed()) run_remote_rotate_key(*rotate_options, config->config, console);
  };
}

}  // namespace recmodel
