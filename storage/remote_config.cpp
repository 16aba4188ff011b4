#include "storage/remote_config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>

#include <toml++/toml.h>

#include "common/suggest.h"
#include "common/error.h"
#include "common/files.h"
#include "storage/s3_client.h"

namespace recmodel::storage {

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Checks an S3 bucket name the way S3 does (3-63 characters, lower-case letters, digits, '.', '-').
void validate_bucket(const std::string& bucket, const std::string& url) {
  bool ok = bucket.size() >= 3 && bucket.size() <= 63 && std::isalnum(static_cast<unsigned char>(bucket.front())) &&
            std::isalnum(static_cast<unsigned char>(bucket.back())) &&
            std::all_of(bucket.begin(), bucket.end(), [](char c) {
              return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                     c == '.' || c == '-';
            });
  if (!ok)
    fail<UsageError>("'{}': bucket name '{}' is not valid in S3 (3 to 63 lower-case letters, digits, '.' and '-', "
                     "starting and ending with a letter or digit)",
                     url, bucket);
}

std::string percent_decode(const std::string& text, const std::string& url) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(text[i + 2])))
      fail<UsageError>("'{}': bad percent-escape in the path", url);
    out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return out;
}

[[noreturn]] void bad_config(const fs::path& config, const toml::source_region& where, const std::string& what) {
  fail<DataError>("{}:{}:{}: {}", config.string(), where.begin.line, where.begin.column, what);
}

}  // namespace

void validate_remote_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0])) &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
            });
  if (!ok)
    fail<UsageError>("remote name '{}' is not valid: use letters, digits, '.', '_' and '-' (up to 64), starting "
                     "with a letter or digit",
                     name);
}

RemoteSpec parse_remote_url(const std::string& name, const std::string& url) {
  RemoteSpec spec;
  spec.name = name;
  spec.url = url;
  if (url.rfind("s3://", 0) == 0) {
    spec.kind = RemoteKind::s3;
    std::string rest = url.substr(5);
    size_t slash = rest.find('/');
    spec.bucket = rest.substr(0, slash);
    if (spec.bucket.find('@') != std::string::npos || spec.bucket.find(':') != std::string::npos)
      fail<UsageError>("remote '{}': the URL holds user information or a port; credentials never go in URLs (use "
                       "the AWS environment variables or --profile) and the server goes in --endpoint",
                       name);
    validate_bucket(spec.bucket, url);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    std::stringstream parts(prefix);
    for (std::string part; std::getline(parts, part, '/');)
      if (part.empty() || part == "." || part == "..")
        fail<UsageError>("'{}': the key prefix has an empty, '.' or '..' segment", url);
    spec.prefix = prefix;
    return spec;
  }
  if (url.rfind("file://", 0) == 0) {
    spec.kind = RemoteKind::file;
    std::string rest = url.substr(7);
    if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(9);
    if (rest.empty() || rest[0] != '/')
      fail<UsageError>("'{}': a file remote needs an absolute path, as file:///mnt/nas/models", url);
    std::string path = percent_decode(rest, url);
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    spec.path = fs::path(path).lexically_normal().string();
    if (spec.path.size() > 1 && spec.path.back() == '/') spec.path.pop_back();
    return spec;
  }
  fail<UsageError>("remote '{}': unsupported URL '{}'; use s3://BUCKET[/PREFIX] or file:///PATH", name, url);
}

fs::path config_file_path() {
  std::string explicit_path = env("RECMODEL_CONFIG");
  if (!explicit_path.empty()) return explicit_path;
  std::string xdg = env("XDG_CONFIG_HOME");
  if (!xdg.empty()) return fs::path(xdg) / "recmodel" / "config.toml";
  std::string home = env("HOME");
  if (home.empty()) fail<UsageError>("neither RECMODEL_CONFIG, XDG_CONFIG_HOME nor HOME is set; set RECMODEL_CONFIG");
  return fs::path(home) / ".config" / "recmodel" / "config.toml";
}

namespace {

toml::table parse_config(const fs::path& config) {
  std::error_code ec;
  if (!fs::exists(config, ec)) return {};
  std::string text = read_file(config);
  try {
    return toml::parse(text, config.string());
  } catch (const toml::parse_error& e) {
    fail<DataError>("{}:{}:{}: {}", config.string(), e.source().begin.line, e.source().begin.column,
                    std::string(e.description()));
  }
}

}  // namespace

std::vector<RemoteSpec> load_remotes(const fs::path& config) {
  toml::table table = parse_config(config);
  std::vector<RemoteSpec> remotes;
  toml::node* node = table.get("remotes");
  if (!node) return remotes;
  toml::table* all = node->as_table();
  if (!all) bad_config(config, node->source(), "'remotes' must be a table of [remotes.NAME] tables");
  for (auto& [key, value] : *all) {
    std::string name(key.str());
    toml::table* entry = value.as_table();
    if (!entry) bad_config(config, value.source(), "remote '" + name + "' must be a table");
    try {
      validate_remote_name(name);
    } catch (const UsageError& e) {
      bad_config(config, value.source(), e.what());
    }
    auto text = [&](const char* field) -> std::string {
      toml::node* item = entry->get(field);
      if (!item) return "";
      if (!item->is_string())
        bad_config(config, item->source(), "remote '" + name + "': '" + field + "' must be a string");
      return item->as_string()->get();
    };
    auto flag = [&](const char* field) -> std::optional<bool> {
      toml::node* item = entry->get(field);
      if (!item) return std::nullopt;
      if (!item->is_boolean())
        bad_config(config, item->source(), "remote '" + name + "': '" + field + "' must be true or false");
      return item->as_boolean()->get();
    };
    static const char* known[] = {"url",        "endpoint", "region",  "profile",  "ca_bundle",
                                  "path_style", "public",   "encrypt", "key_file"};
    for (auto& [field, item] : *entry) {
      if (std::find(std::begin(known), std::end(known), field.str()) == std::end(known))
        bad_config(config, item.source(),
                   "remote '" + name + "': unknown key '" + std::string(field.str()) +
                       "' (known: url, endpoint, region, profile, ca_bundle, path_style, public, encrypt, key_file)");
    }
    std::string url = text("url");
    if (url.empty()) bad_config(config, value.source(), "remote '" + name + "' has no url");
    RemoteSpec spec;
    try {
      spec = parse_remote_url(name, url);
    } catch (const UsageError& e) {
      bad_config(config, value.source(), e.what());
    }
    spec.endpoint = text("endpoint");
    spec.region = text("region");
    spec.profile = text("profile");
    spec.ca_bundle = text("ca_bundle");
    spec.path_style = flag("path_style");
    spec.is_public = flag("public").value_or(false);
    spec.encrypt = flag("encrypt").value_or(false);
    spec.key_file = text("key_file");
    remotes.push_back(std::move(spec));
  }
  return remotes;
}

void save_remotes(const fs::path& config, const std::vector<RemoteSpec>& remotes) {
  toml::table table = parse_config(config);
  toml::table all;
  for (const auto& spec : remotes) {
    toml::table entry;
    entry.insert("url", spec.url);
    if (!spec.endpoint.empty()) entry.insert("endpoint", spec.endpoint);
    if (!spec.region.empty()) entry.insert("region", spec.region);
    if (!spec.profile.empty()) entry.insert("profile", spec.profile);
    if (!spec.ca_bundle.empty()) entry.insert("ca_bundle", spec.ca_bundle);
    if (spec.path_style) entry.insert("path_style", *spec.path_style);
    entry.insert("public", spec.is_public);
    if (spec.encrypt) entry.insert("encrypt", true);
    if (!spec.key_file.empty()) entry.insert("key_file", spec.key_file);
    all.insert(spec.name, std::move(entry));
  }
  table.insert_or_assign("remotes", std::move(all));
  std::ostringstream out;
  out << "# recmodel configuration; 'recmodel remote add/remove' rewrite the [remotes] tables.\n" << table << "\n";
  std::error_code ec;
  if (config.has_parent_path()) {
    fs::create_directories(config.parent_path(), ec);
    if (ec) fail<DataError>("{}: cannot create directory: {}", config.parent_path().string(), ec.message());
  }
  write_file_atomic(config, out.str());
}

RemoteSpec find_remote(const std::vector<RemoteSpec>& remotes, const std::string& name, const fs::path& config) {
  std::vector<std::string> names;
  for (const auto& spec : remotes) {
    if (spec.name == name) return spec;
    names.push_back(spec.name);
  }
  if (names.empty())
    fail<NotFoundError>("no remote '{}': {} defines no remotes; add one with 'recmodel remote add {} URL'", name,
                        config.string(), name);
  std::string hint = closest_match(name, names);
  fail<NotFoundError>("no remote '{}' in {}{}; 'recmodel remote list' shows them", name, config.string(),
                      hint.empty() ? "" : " (did you mean '" + hint + "'?)");
}

}  // namespace recmodel::storage
