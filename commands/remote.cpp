#include "commands/remote.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "commands/push.h"
#include "common/error.h"
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

  std::string config;
  auto remotes = configured_remotes(config_flag, &config);
  auto existing = std::find_if(remotes.begin(), remotes.end(), [&](const auto& r) { return r.name == spec.name; });
  bool replaced = existing != remotes.end();
  if (replaced && !options.force)
    fail<UsageError>("remote '{}' already exists ({}); remove it first or pass --force to replace it", spec.name,
                     existing->url);

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
  if (replaced) *existing = spec;
  else remotes.push_back(spec);
  storage::save_remotes(config, remotes);

  nlohmann::json document = {{"added", remote_json(spec)}, {"replaced", replaced}, {"config", config}};
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "{} remote '{}' ({}): {}{}\n", replaced ? "replaced" : "added", spec.name, spec.visibility(),
               spec.url, spec.endpoint.empty() ? "" : " at " + spec.endpoint);
    fmt::print(out, "saved in {}\n", config);
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
    size_t name_width = 4, url_width = 3;
    for (const auto& remote : remotes) {
      name_width = std::max(name_width, remote.name.size());
      url_width = std::max(url_width, remote.url.size());
    }
    fmt::print(out, "{:<{}}  {:<10}  {:<{}}  {}\n", "NAME", name_width, "VISIBILITY", "URL", url_width, "ENDPOINT");
    for (const auto& remote : remotes) {
      std::string endpoint = remote.kind == storage::RemoteKind::file ? "-"
                             : remote.endpoint.empty()                ? "(AWS or AWS_ENDPOINT_URL)"
                                                                      : remote.endpoint;
      fmt::print(out, "{:<{}}  {:<10}  {:<{}}  {}\n", remote.name, name_width, remote.visibility(), remote.url,
                 url_width, endpoint);
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
  };
}

}  // namespace recmodel
