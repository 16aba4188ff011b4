// `recmodel registry`: what users and CI scripts see — tables, --json documents, exit codes and
// the one error line for each failure (corrupt, locked, missing, newer files; changed model files).
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/registry_backends.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = RECMODEL_SOURCE_DIR;

fs::path make_model(const fs::path& dir, const std::string& weights) {
  t::write_text(dir / "config.json", "{\"model_type\": \"bert\"}\n");
  t::write_text(dir / "model.safetensors", weights);
  t::write_text(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\nshoe\n##s\n");
  t::write_text(dir / "tokenizer_config.json", "{\"do_lower_case\": true}\n");
  return dir;
}

// Runs `recmodel --registry DB registry ARGS...`.
t::RunResult registry(const fs::path& db, std::vector<std::string> args) {
  args.insert(args.begin(), {"--registry", db.string(), "registry"});
  return t::run_recmodel(args, "", {"RECMODEL_USER=ci-bot"});
}

nlohmann::json json_of(const t::RunResult& result) {
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  return nlohmann::json::parse(result.out);
}

// Returns the options a help text lists ("  --name ..." lines), long names only.
std::set<std::string> help_options(const std::string& help) {
  static const std::regex option_re(R"(^  (?:-[A-Za-z],)?(--[A-Za-z0-9-]+))");
  std::set<std::string> names;
  std::istringstream in(help);
  for (std::string line; std::getline(in, line);) {
    std::smatch match;
    if (std::regex_search(line, match, option_re)) names.insert(match[1].str());
  }
  return names;
}

// Returns the subcommands a help text lists under "Subcommands:".
std::vector<std::string> help_subcommands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream in(help);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "Subcommands:") {
      inside = true;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("  ", 0) != 0 || line.size() < 3 || line[2] == ' ') break;
    names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return names;
}

// Returns `word` quoted for /bin/sh.
std::string quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Returns what share/completions/recmodel.bash offers for `words` (the last one being completed).
std::set<std::string> bash_complete(const std::vector<std::string>& words) {
  std::string command =
      "bash --norc --noprofile -c 'source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
      "_recmodel && printf \"%s\\n\" \"${COMPREPLY[@]}\"' _ " +
      quote((kSource / "share/completions/recmodel.bash").string());
  for (const auto& word : words) command += " " + quote(word);
  std::set<std::string> offered;
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) offered.insert(line);
  return offered;
}

bool registry_is_url(const fs::path& db) { return db.string().rfind("postgresql://", 0) == 0; }

// The whole command-line flow on one registry: `db` is a file or a postgresql:// URL.
void check_registry_commands(const fs::path& work, const fs::path& db) {
  const bool sqlite = !registry_is_url(db);
  fs::path v1 = make_model(work / "intent-v1", "weights-one");
  fs::path v2 = make_model(work / "intent-v2", "weights-two!");
  t::write_text(v1 / "recmodel.json", R"({"metrics": {"accuracy": 0.9}, "parameters": {"lr": 5e-05}})");

  auto first = registry(db, {"register", "intent", "--path", v1.string(), "--description", "first"});
  CHECK(first.err == "");
  REQUIRE(first.exit_code == 0);
  CHECK(std::regex_match(first.out, std::regex(R"(registered models:/intent/1 \(5 files, \d+ B, manifest [0-9a-f]{12}\)\n)")));
  if (sqlite) {
    struct stat st {};
    REQUIRE(stat(db.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }

  auto second = json_of(registry(db, {"--json", "register", "models:/intent", "--path", v2.string(), "--parent", "1",
                                      "--tag", "team=search", "--metric", "accuracy=0.93", "--param", "lr=3e-05"}));
  CHECK(second["uri"] == "models:/intent/2");
  CHECK(second["parent"] == "models:/intent/1");
  CHECK(second["tags"]["team"] == "search");
  CHECK(second["created_by"] == "ci-bot");
  CHECK(second["source_path"] == fs::canonical(v2).string());

  auto listed = registry(db, {"list"});
  REQUIRE(listed.exit_code == 0);
  CHECK(listed.out.rfind("NAME    VERSIONS  LATEST  ALIASES  UPDATED", 0) == 0);
  auto versions = json_of(registry(db, {"list", "intent", "--json", "--tag", "team"}));
  REQUIRE(versions["versions"].size() == 1);
  CHECK(versions["versions"][0]["version"] == 2);

  auto promoted = registry(db, {"promote", "models:/intent/1", "--alias", "production", "--reason", "launch"});
  CHECK(promoted.out == "intent@production: (none) -> models:/intent/1\n");
  CHECK(promoted.exit_code == 0);
  auto moved = json_of(registry(db, {"--json", "promote", "intent/latest", "--alias", "production", "--expect", "1"}));
  CHECK(moved["from"] == 1);
  CHECK(moved["to"] == 2);
  CHECK(moved["moved"] == true);
  auto stale = registry(db, {"promote", "intent/1", "--alias", "production", "--expect", "1"});
  CHECK(stale.exit_code == 6);
  CHECK(stale.err.find("recmodel: error: alias 'production' of intent points at version 2, not version 1 (--expect)") ==
        0);

  auto history = json_of(registry(db, {"history", "models:/intent@production", "--json"}));
  REQUIRE(history["moves"].size() == 2);
  CHECK(history["moves"][0]["reason"] == "launch");
  CHECK(history["moves"][0]["by"] == "ci-bot");
  std::string second_move = history["moves"][1]["at"];
  auto before = json_of(registry(db, {"--json", "history", "intent@production", "--at", history["moves"][0]["at"]}));
  CHECK(before["aliases"][0]["version"] == 1);
  auto then = registry(db, {"history", "intent@production", "--at", "2001-01-01T00:00Z"});
  CHECK(then.out == "at 2001-01-01T00:00:00.000Z, intent@production pointed at nothing (it did not exist yet, or was "
                    "removed)\n");

  auto rolled = registry(db, {"rollback", "models:/intent@production", "--reason", "latency"});
  CHECK(rolled.out == "intent@production: models:/intent/2 -> models:/intent/1\n");
  auto shown = json_of(registry(db, {"show", "models:/intent@production", "--json"}));
  CHECK(shown["version"] == 1);
  CHECK(shown["files"].size() == 5);
  CHECK(shown["metrics"]["accuracy"] == 0.9);

  auto compared = json_of(registry(db, {"--json", "compare", "intent/1", "intent/2"}));
  CHECK(compared["metrics"][0]["name"] == "accuracy");
  CHECK(compared["metrics"][0]["delta"].get<double>() == doctest::Approx(0.03));
  CHECK(compared["params"][0]["name"] == "lr");
  CHECK(compared["files"]["changed"] == nlohmann::json::array({"model.safetensors"}));
  CHECK(compared["files"]["removed"] == nlohmann::json::array({"recmodel.json"}));
  CHECK(compared["files"]["unchanged"] == 3);

  auto lineage = json_of(registry(db, {"--json", "lineage", "intent/2"}));
  CHECK(lineage["ancestors"] == nlohmann::json::array({"models:/intent/1"}));
  auto children = registry(db, {"lineage", "intent/1"});
  CHECK(children.out.find("  children:   models:/intent/2\n") != std::string::npos);

  // The version production points at resolves for commands that take --model.
  auto tokens = t::run_recmodel({"--registry", db.string(), "tokenize", "--model", "models:/intent@production",
                                 "--ids-only"},
                                "red shoes\n");
  CHECK(tokens.err == "");
  CHECK(tokens.out == "{\"ids\":[2,5,6,7,3]}\n");

  auto verified = registry(db, {"verify", "intent/1"});
  CHECK(verified.out == "models:/intent/1: all 5 files match the manifest (" +
                            std::to_string(fs::file_size(v1 / "config.json") + 11 + fs::file_size(v1 / "vocab.txt") +
                                           fs::file_size(v1 / "tokenizer_config.json") +
                                           fs::file_size(v1 / "recmodel.json")) +
                            " B re-hashed)\n");
  t::write_text(v1 / "model.safetensors", "weights-One");  // same size, different bytes
  auto mismatch = registry(db, {"verify", "intent/1"});
  CHECK(mismatch.exit_code == 6);
  CHECK(mismatch.out == "changed    model.safetensors\n");
  CHECK(mismatch.err == "recmodel: error: models:/intent/1: 1 of 5 files differ from the manifest in " +
                            fs::canonical(v1).string() + ": model.safetensors (changed)\n");

  auto refused = registry(db, {"delete", "intent/1"});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err == "recmodel: error: models:/intent/1 is what alias production points at; move it first "
                       "('recmodel registry promote') or pass --force to delete it and remove it\n");
  auto deleted = registry(db, {"delete", "intent/1", "--force"});
  CHECK(deleted.out == "deleted models:/intent/1 (its files in " + fs::canonical(v1).string() +
                           " were not touched)\nremoved alias intent@production\n");
  CHECK(fs::exists(v1 / "model.safetensors"));
}

}  // namespace

TEST_CASE("registry: register, list, promote, history, rollback, compare and lineage from the command line, on SQLite and PostgreSQL") {
  t::TempDir dir;
  fs::create_directories(dir / "reg");
  const std::vector<std::string> locations = {(dir / "reg" / "registry.db").string(), t::fresh_postgres_database()};
  for (size_t i = 0; i < locations.size(); ++i) {
    CAPTURE(locations[i]);
    check_registry_commands(dir / std::to_string(i), locations[i]);
  }
}

TEST_CASE("registry on PostgreSQL: the URL from --registry or RECMODEL_REGISTRY, its password never printed, migrate both ways, exit 5 when the server is away") {
  t::TempDir dir;
  const t::PostgresServer& server = t::postgres_server();
  const std::string url = t::fresh_postgres_database();
  // The same URL with the password in it, as a user may write it.
  std::string with_password = url;
  with_password.insert(with_password.find('@'), ":" + server.password);
  const std::string secret = server.password;
  auto no_secret = [&](const t::RunResult& result) {
    INFO("stdout: " << result.out << "\nstderr: " << result.err);
    CHECK(result.out.find(secret) == std::string::npos);
    CHECK(result.err.find(secret) == std::string::npos);
  };

  auto empty = registry(with_password, {"list"});
  no_secret(empty);
  CHECK(empty.exit_code == 4);
  CHECK(empty.err == "recmodel: error: " + url + ": no registry in this database yet ('recmodel registry register NAME "
                     "--path DIR' creates it; or choose another --registry)\n");

  fs::path model = make_model(dir / "m1", "weights-one");
  auto registered = t::run_recmodel({"registry", "register", "intent", "--path", model.string()}, "",
                                    {"RECMODEL_REGISTRY=" + with_password});
  no_secret(registered);
  REQUIRE(registered.exit_code == 0);
  CHECK(registered.out.rfind("registered models:/intent/1 (4 files", 0) == 0);
  REQUIRE(registry(url, {"register", "intent", "--path", make_model(dir / "m2", "weights-two").string(), "--tag",
                         "team=search", "--metric", "accuracy=0.9"})
              .exit_code == 0);
  REQUIRE(registry(url, {"promote", "intent/1", "--alias", "production", "--reason", "launch"}).exit_code == 0);
  REQUIRE(registry(url, {"promote", "intent/2", "--alias", "production"}).exit_code == 0);
  auto unknown = registry(with_password, {"show", "models:/intnet/1"});
  no_secret(unknown);
  CHECK(unknown.exit_code == 4);
  CHECK(unknown.err == "recmodel: error: no model 'intnet' in the registry " + url +
                           " (did you mean 'intent'?); 'recmodel registry list' shows the models\n");

  // PostgreSQL -> a new file -> a new database: the same versions, aliases and history.
  fs::path file = dir / "copy.db";
  auto to_file = json_of(registry(with_password, {"--json", "migrate", "--to", file.string()}));
  CHECK(to_file["from"] == url);
  CHECK(to_file["verified"] == true);
  CHECK(to_file["tables"]["versions"] == 2);
  CHECK(to_file["tables"]["alias_history"] == 2);
  const std::string second = t::fresh_postgres_database();
  auto to_second = registry(file, {"migrate", "--to", second});
  CHECK(to_second.exit_code == 0);
  CHECK(to_second.out.rfind("copied " + file.string() + " to " + second + ", every row verified:\n", 0) == 0);
  for (const std::string& location : {url, file.string(), second}) {
    CAPTURE(location);
    auto history = json_of(registry(location, {"history", "intent@production", "--json"}));
    REQUIRE(history["moves"].size() == 2);
    CHECK(history["moves"][0]["reason"] == "launch");
    CHECK(history["moves"][1]["to"] == 2);
    auto versions = json_of(registry(location, {"list", "intent", "--json"}));
    REQUIRE(versions["versions"].size() == 2);
    CHECK(versions["versions"][0]["tags"]["team"] == "search");
    // A new version continues the numbering on every copy.
    auto third = json_of(registry(location, {"--json", "register", "intent", "--path", model.string()}));
    CHECK(third["uri"] == "models:/intent/3");
  }

  // Into a registry that has models: refused, nothing merged, no file left.
  auto into_full = registry(dir / "fresh.db", {"migrate", "--to", url});
  CHECK(into_full.exit_code == 4);  // the source must exist first
  auto refused = registry(file, {"migrate", "--to", with_password});
  no_secret(refused);
  CHECK(refused.exit_code == 2);
  CHECK(refused.err == "recmodel: error: " + url +
                           ": already holds a registry (1 model); migrate into an empty one (nothing is merged)\n");
  auto to_existing_file = registry(url, {"migrate", "--to", file.string()});
  CHECK(to_existing_file.exit_code == 2);
  auto to_bad_dir = registry(url, {"migrate", "--to", (dir / "nowhere" / "r.db").string()});
  CHECK(to_bad_dir.exit_code == 4);
  CHECK(!fs::exists(dir / "nowhere"));

  // A server that is not there, and a wrong password: exit 5 and one line without the password.
  auto away = registry("postgresql://ci:" + secret + "@127.0.0.1:1/models?connect_timeout=3", {"list"});
  no_secret(away);
  CHECK(away.exit_code == 5);
  CHECK(away.err.rfind("recmodel: error: postgresql://ci@127.0.0.1:1/models?connect_timeout=3: cannot connect to the "
                       "registry's PostgreSQL server (",
                       0) == 0);
  CHECK(std::count(away.err.begin(), away.err.end(), '\n') == 1);
  std::string wrong = url;
  wrong.insert(wrong.find('@'), ":not-the-password");
  auto login = registry(wrong, {"list"});
  CHECK(login.exit_code == 5);
  CHECK(login.err.find("not-the-password") == std::string::npos);
  CHECK(login.err.find("refused the login") != std::string::npos);
  CHECK(std::count(login.err.begin(), login.err.end(), '\n') == 1);
}

TEST_CASE("registry: broken, missing, locked and newer registry files give one error line and their exit code") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m", "w");

  auto missing_dir = registry(dir / "nowhere" / "r.db", {"register", "intent", "--path", model.string()});
  CHECK(missing_dir.exit_code == 4);
  CHECK(missing_dir.err == "recmodel: error: " + (dir / "nowhere" / "r.db").string() + ": directory " +
                               (dir / "nowhere").string() + " does not exist; create it or choose another --registry\n");
  auto no_registry = registry(dir / "absent.db", {"list"});
  CHECK(no_registry.exit_code == 4);
  CHECK(!fs::exists(dir / "absent.db"));

  t::write_text(dir / "corrupt.db", std::string(8192, '\x17'));
  auto corrupt = registry(dir / "corrupt.db", {"list"});
  CHECK(corrupt.exit_code == 3);
  CHECK(corrupt.err == "recmodel: error: " + (dir / "corrupt.db").string() +
                           ": not a usable registry (file is not a database) while opening it; restore it from a backup "
                           "or choose another --registry\n");

  fs::path db = dir / "r.db";
  REQUIRE(registry(db, {"register", "intent", "--path", model.string()}).exit_code == 0);
  auto unknown = registry(db, {"show", "models:/intnet/1"});
  CHECK(unknown.exit_code == 4);
  CHECK(unknown.err == "recmodel: error: no model 'intnet' in the registry " + db.string() +
                           " (did you mean 'intent'?); 'recmodel registry list' shows the models\n");
  auto bad_ref = registry(db, {"show", "models:/intent/v2"});
  CHECK(bad_ref.exit_code == 2);

  fs::remove_all(model);
  auto gone = t::run_recmodel({"--registry", db.string(), "tokenize", "--model", "models:/intent/1"}, "x\n");
  CHECK(gone.exit_code == 4);
  CHECK(gone.err == "recmodel: error: models:/intent/1 (models:/intent/1): its directory " + model.string() +
                        " is gone; restore the files (or pull a copy) and check them with 'recmodel registry verify "
                        "models:/intent/1'\n");
  auto verify_gone = registry(db, {"verify", "intent/1"});
  CHECK(verify_gone.exit_code == 6);

  {
    sqlite3* holder = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &holder) == SQLITE_OK);
    REQUIRE(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    auto locked = registry(db, {"--lock-timeout", "0.2", "promote", "intent/1", "--alias", "production"});
    CHECK(locked.exit_code == 6);
    CHECK(locked.err == "recmodel: error: " + db.string() +
                            ": the registry stayed locked by another process for more than 0.2 s while updating it; "
                            "retry when the other job has finished, or wait longer with --lock-timeout SECONDS\n");
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    REQUIRE(sqlite3_exec(holder, "PRAGMA user_version = 7", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(holder);
  }
  auto newer = registry(db, {"list"});
  CHECK(newer.exit_code == 3);
  CHECK(newer.err.find("the registry has schema version 7 (written by recmodel ") != std::string::npos);
}

TEST_CASE("registry: every subcommand's options are in the man page and the bash completion") {
  auto help = t::run_recmodel({"registry", "--help"});
  REQUIRE(help.exit_code == 0);
  auto subcommands = help_subcommands(help.out);
  CHECK(subcommands == std::vector<std::string>{"register", "list", "show", "promote", "unalias", "tag", "compare",
                                                "lineage", "history", "rollback", "verify", "archive", "delete", "migrate"});
  std::string page = t::read_text(kSource / "man/recmodel-registry.1");
  std::string plain;
  for (size_t i = 0; i < page.size(); ++i) {
    if (page[i] == '\\' && i + 1 < page.size() && page[i + 1] == '-') continue;
    if (page[i] == '\\' && i + 1 < page.size() && (page[i + 1] == 'f' || page[i + 1] == '&')) {
      i += page[i + 1] == 'f' ? 2 : 1;
      continue;
    }
    plain += page[i];
  }
  for (const auto& sub : subcommands) {
    CAPTURE(sub);
    CHECK_MESSAGE(plain.find(".SS registry " + sub) != std::string::npos, "man page lacks a section for " << sub);
    auto sub_help = t::run_recmodel({"registry", sub, "--help"});
    REQUIRE(sub_help.exit_code == 0);
    for (const auto& option : help_options(sub_help.out)) {
      if (option == "--help") continue;
      CHECK_MESSAGE(plain.find(option) != std::string::npos, "man page does not document registry " << sub << " "
                                                                                                   << option);
    }
    auto offered = bash_complete({"recmodel", "registry", sub, "--"});
    for (const auto& option : help_options(sub_help.out))
      CHECK_MESSAGE(offered.count(option) == 1, "bash: 'recmodel registry " << sub << " --<TAB>' does not offer "
                                                                             << option);
  }
  auto offered = bash_complete({"recmodel", "registry", ""});
  for (const auto& sub : subcommands)
    CHECK_MESSAGE(offered.count(sub) == 1, "bash: 'recmodel registry <TAB>' does not offer " << sub);
}
