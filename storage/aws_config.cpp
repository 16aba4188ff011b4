#include "storage/aws_config.h"

#include <cstdlib>
#include <fstream>

#include "common/error.h"

namespace recmodel::storage {

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t\r");
  return text.substr(begin, end - begin + 1);
}

std::string home_file(const char* variable, const char* relative) {
  std::string path = env(variable);
  if (!path.empty()) return path;
  std::string home = env("HOME");
  return home.empty() ? "" : home + "/" + relative;
}

std::string value_of(const std::map<std::string, std::string>* section, const char* key) {
  if (!section) return "";
  auto found = section->find(key);
  return found == section->end() ? "" : found->second;
}

}  // namespace

std::map<std::string, std::map<std::string, std::string>> read_aws_ini(const std::string& path) {
  std::map<std::string, std::map<std::string, std::string>> sections;
  if (path.empty()) return sections;
  std::ifstream in(path);
  if (!in) return sections;
  std::string line, current;
  bool have_section = false;
  while (std::getline(in, line)) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) continue;  // nested "s3 =" block
    std::string text = trim(line);
    if (text.empty() || text[0] == '#' || text[0] == ';') continue;
    if (text.front() == '[' && text.back() == ']') {
      current = trim(text.substr(1, text.size() - 2));
      sections[current];
      have_section = true;
      continue;
    }
    size_t equals = text.find('=');
    if (!have_section || equals == std::string::npos) continue;
    std::string key = trim(text.substr(0, equals));
    std::string value = trim(text.substr(equals + 1));
    if (!value.empty()) sections[current][key] = value;
  }
  return sections;
}

AwsSettings resolve_aws_settings(const std::string& profile) {
  AwsSettings settings;
  std::string name = !profile.empty() ? profile : !env("AWS_PROFILE").empty() ? env("AWS_PROFILE") : "default";
  settings.profile = name;
  std::string credentials_path = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
  std::string config_path = home_file("AWS_CONFIG_FILE", ".aws/config");
  auto credentials_file = read_aws_ini(credentials_path);
  auto config_file = read_aws_ini(config_path);
  auto find = [](auto& sections, const std::string& key) -> const std::map<std::string, std::string>* {
    auto found = sections.find(key);
    return found == sections.end() ? nullptr : &found->second;
  };
  const auto* from_credentials = find(credentials_file, name);
  const auto* from_config = find(config_file, name == "default" ? std::string("default") : "profile " + name);
  if (!profile.empty() && !from_credentials && !from_config)
    fail<RemoteError>("AWS profile '{}' is in neither {} nor {}; add it there or change the remote's --profile",
                      profile, credentials_path, config_path);

  auto profile_credentials = [&]() -> std::optional<Credentials> {
    for (const auto* section : {from_credentials, from_config}) {
      std::string id = value_of(section, "aws_access_key_id");
      std::string secret = value_of(section, "aws_secret_access_key");
      if (!id.empty() && !secret.empty())
        return Credentials{id, secret, value_of(section, "aws_session_token"),
                           "profile '" + name + "' (" + (section == from_credentials ? credentials_path : config_path) +
                               ")"};
    }
    return std::nullopt;
  };
  if (!profile.empty()) {
    settings.credentials = profile_credentials();
  } else if (!env("AWS_ACCESS_KEY_ID").empty() && !env("AWS_SECRET_ACCESS_KEY").empty()) {
    settings.credentials = Credentials{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                                       env("AWS_SESSION_TOKEN"), "the environment (AWS_ACCESS_KEY_ID)"};
  } else {
    settings.credentials = profile_credentials();
  }

  for (const char* variable : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (settings.region.empty()) settings.region = env(variable);
  if (settings.region.empty()) settings.region = value_of(from_config, "region");
  if (settings.region.empty()) settings.region = "us-east-1";
  for (const char* variable : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"})
    if (settings.endpoint.empty()) settings.endpoint = env(variable);
  if (settings.endpoint.empty()) settings.endpoint = value_of(from_config, "endpoint_url");
  settings.ca_bundle = env("AWS_CA_BUNDLE");
  if (settings.ca_bundle.empty()) settings.ca_bundle = value_of(from_config, "ca_bundle");
  return settings;
}

}  // namespace recmodel::storage
