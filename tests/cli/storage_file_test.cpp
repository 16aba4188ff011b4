// `recmodel remote`, `push`, `pull`, `sync` and `ls` against file:// remotes: what users see
// (exit codes, error lines, --json), content addressing, data residency, path safety and
// integrity. The same commands against a real S3 server are in storage_s3_test.cpp.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

// A scratch world: a config file, a registry, two file remotes and a model directory.
struct World {
  t::TempDir dir;
  std::vector<std::string> env;
  World() {
    env = {"RECMODEL_CONFIG=" + (dir / "config.toml").string(), "RECMODEL_REGISTRY=" + (dir / "registry.db").string()};
    t::write_text(dir / "model/config.json", "{\"architectures\": [\"BertForSequenceClassification\"]}");
    t::write_text(dir / "model/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
    t::write_text(dir / "model/model.safetensors", t::random_bytes(600000, 1));
    t::write_text(dir / "model/onnx/model.onnx", t::random_bytes(90000, 2));
  }
  t::RunResult run(std::vector<std::string> args) { return t::run_recmodel(args, "", env); }
  nlohmann::json json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto result = run(args);
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
    return nlohmann::json::parse(result.out);
  }
  std::string url(const std::string& name) { return "file://" + (dir / name).string(); }
  void add_remotes() {
    REQUIRE(run({"remote", "add", "nas", url("nas")}).exit_code == 0);
    REQUIRE(run({"remote", "add", "cloud", url("cloud"), "--public"}).exit_code == 0);
  }
};

// Returns every regular file under `dir` as relative path -> contents.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).generic_string()] = t::read_text(entry.path());
  return files;
}

}  // namespace

TEST_CASE("remote add, list and remove keep the config file and say what they did") {
  World w;
  auto added = w.json({"remote", "add", "nas", w.url("nas")});
  CHECK(added["added"]["name"] == "nas");
  CHECK(added["added"]["visibility"] == "private");
  CHECK(added["added"]["type"] == "file");
  auto human = w.run({"remote", "add", "aws", "s3://team-models/bert", "--public", "--region", "eu-west-1",
                      "--endpoint", "https://s3.example.com", "--path-style"});
  CHECK(human.err == "");
  REQUIRE(human.exit_code == 0);
  CHECK(human.out.rfind("added remote 'aws' (public): s3://team-models/bert at https://s3.example.com\n", 0) == 0);
  std::string config = t::read_text(w.dir / "config.toml");
  CHECK(config.find("[remotes.aws]") != std::string::npos);
  CHECK(config.find("path_style = true") != std::string::npos);

  auto list = w.json({"remote", "list"});
  REQUIRE(list["remotes"].size() == 2);
  CHECK(list["remotes"][0]["name"] == "aws");
  CHECK(list["remotes"][0]["region"] == "eu-west-1");
  auto table = w.run({"remote", "list"});
  CHECK(table.out.find("NAME  VISIBILITY  URL") == 0);
  CHECK(table.out.find("aws   public      s3://team-models/bert") != std::string::npos);

  auto again = w.run({"remote", "add", "nas", w.url("other")});
  CHECK(again.exit_code == 2);
  CHECK(again.err == "recmodel: error: remote 'nas' already exists (" + w.url("nas") +
                         "); remove it first or pass --force to replace it\n");
  CHECK(w.run({"remote", "add", "nas", w.url("other"), "--force"}).exit_code == 0);

  auto missing = w.run({"remote", "remove", "nsa"});
  CHECK(missing.exit_code == 4);
  CHECK(missing.err.find("no remote 'nsa'") != std::string::npos);
  CHECK(missing.err.find("did you mean 'nas'?") != std::string::npos);
  auto removed = w.run({"remote", "remove", "nas"});
  CHECK(removed.exit_code == 0);
  CHECK(removed.out.find("removed remote 'nas'") == 0);
  CHECK(w.json({"remote", "list"})["remotes"].size() == 1);
}

TEST_CASE("remote add refuses bad names, URLs, flag mixes, and never echoes credentials") {
  World w;
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{"remote", "add", "bad name", "s3://bucket"}, "remote name 'bad name' is not valid"},
      {{"remote", "add", "r", "http://bucket/x"}, "unsupported URL 'http://bucket/x'"},
      {{"remote", "add", "r", "s3://Bad_Bucket"}, "bucket name 'Bad_Bucket' is not valid"},
      {{"remote", "add", "r", "file://relative"}, "a file remote needs an absolute path"},
      {{"remote", "add", "r", w.url("x"), "--endpoint", "http://h"}, "--endpoint applies to s3:// remotes only"},
      {{"remote", "add", "r", "s3://bucket", "--endpoint", "ftp://h"}, "the scheme must be http or https"},
      {{"remote", "add", "r", "s3://bucket", "--region", "EU WEST"}, "is not a region name"},
      {{"remote", "add", "r", "s3://bucket", "--public", "--private"}, "--public excludes --private"},
      {{"remote", "add", "r", "s3://AKIAXX:hunter2secret@bucket/x"}, "credentials never go in URLs"},
      {{"remote", "add", "r", "s3://bucket", "--endpoint", "http://AKIAXX:hunter2secret@h"},
       "credentials never go in URLs"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    auto result = w.run(c.args);
    CHECK(result.exit_code == 2);
    CHECK(result.err.find(c.expected) != std::string::npos);
    CHECK(result.err.find("hunter2secret") == std::string::npos);
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  }
  CHECK_FALSE(fs::exists(w.dir / "config.toml"));
  auto missing = w.run({"remote"});
  CHECK(missing.exit_code == 2);
}

TEST_CASE("push, ls and pull through a file remote give back the same bytes, a shared version moves only changes") {
  World w;
  w.add_remotes();
  auto pushed = w.json({"push", (w.dir / "model").string(), "--to", "nas", "--name", "intent", "--version", "1",
                        "--multipart-threshold", "100KiB", "--part-size", "64KiB", "--jobs", "3"});
  CHECK(pushed["name"] == "intent");
  CHECK(pushed["version"] == "1");
  CHECK(pushed["files"] == 4);
  CHECK(pushed["transferred_objects"] == 4);
  CHECK(pushed["bytes"] == pushed["transferred_bytes"]);
  CHECK(fs::exists(w.dir / "nas/models/intent/1.json"));
  std::string weights_sha = recmodel::sha256_hex(t::read_text(w.dir / "model/model.safetensors"));
  CHECK(t::read_text(w.dir / "nas/objects/sha256" / weights_sha.substr(0, 2) / weights_sha.substr(2)) ==
        t::read_text(w.dir / "model/model.safetensors"));

  auto listing = w.run({"ls", "nas"});
  CHECK(listing.exit_code == 0);
  CHECK(listing.out.find("intent/1") != std::string::npos);
  auto files = w.json({"ls", "nas", "intent/1"});
  CHECK(files["files"].size() == 4);
  CHECK(files["files"][0]["path"] == "config.json");

  auto pulled = w.json({"pull", "intent/1", "--from", "nas", "--out", (w.dir / "back").string(), "--part-size",
                        "64KiB", "--multipart-threshold", "100KiB"});
  CHECK(pulled["verified"] == true);
  CHECK(tree(w.dir / "back") == tree(w.dir / "model"));
  // Nothing but the model is left beside --out.
  for (const auto& entry : fs::directory_iterator(w.dir.path()))
    CHECK(entry.path().filename().string().find("recmodel-pull") == std::string::npos);

  // Version 2 shares every file but one small one: only that object moves.
  t::write_text(w.dir / "model/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n");
  auto second = w.json({"push", (w.dir / "model").string(), "--to", "nas", "--name", "intent", "--version", "2"});
  CHECK(second["transferred_objects"] == 1);
  CHECK(second["transferred_bytes"] == fs::file_size(w.dir / "model/vocab.txt"));
  CHECK(second["skipped_objects"] == 3);
  auto versions = w.json({"ls", "nas", "intent"});
  REQUIRE(versions["versions"].size() == 2);
  CHECK(versions["versions"][1]["version"] == "2");

  // Same name and version, other files: versions are immutable.
  auto clash = w.run({"push", (w.dir / "model").string(), "--to", "nas", "--name", "intent", "--version", "1"});
  CHECK(clash.exit_code == 6);
  CHECK(clash.err == "recmodel: error: remote 'nas' already has intent/1 with different files; versions are "
                     "immutable: push under another --version\n");
  // Pushing the same files again is a no-op.
  auto same = w.json({"push", (w.dir / "model").string(), "--to", "nas", "--name", "intent", "--version", "2"});
  CHECK(same["already_on_remote"] == true);
  CHECK(same["transferred_objects"] == 0);

  auto exists = w.run({"pull", "intent/1", "--from", "nas", "--out", (w.dir / "back").string()});
  CHECK(exists.exit_code == 2);
  CHECK(exists.err.find("already exists; choose another --out or pass --force") != std::string::npos);
  auto replaced = w.run({"pull", "intent/2", "--from", "nas", "--out", (w.dir / "back").string(), "--force"});
  CHECK(replaced.exit_code == 0);
  CHECK(t::read_text(w.dir / "back/vocab.txt") == t::read_text(w.dir / "model/vocab.txt"));

  auto missing = w.run({"pull", "intent/9", "--from", "nas", "--out", (w.dir / "nine").string()});
  CHECK(missing.exit_code == 4);
  CHECK(missing.err == "recmodel: error: intent/9 is not on remote 'nas'; 'recmodel ls nas' lists what it has\n");
  CHECK_FALSE(fs::exists(w.dir / "nine"));
}

TEST_CASE("a directory push without --version names it by its contents, so a re-push is the same version") {
  World w;
  w.add_remotes();
  auto first = w.json({"push", (w.dir / "model").string(), "--to", "nas"});
  CHECK(first["name"] == "model");
  std::string version = first["version"];
  CHECK(version.size() == 12);
  auto second = w.json({"push", (w.dir / "model").string(), "--to", "nas"});
  CHECK(second["version"] == version);
  CHECK(second["already_on_remote"] == true);
  auto human = w.run({"push", (w.dir / "model").string(), "--to", "nas"});
  CHECK(human.out.find("pushed model/" + version + " to nas") == 0);
}

TEST_CASE("data residency: a version classified private never reaches a public remote") {
  World w;
  w.add_remotes();
  auto refused = w.run({"push", (w.dir / "model").string(), "--to", "cloud", "--private", "--name", "m", "--version",
                        "1"});
  CHECK(refused.exit_code == 5);
  CHECK(refused.err == "recmodel: error: refusing to put m/1 on remote 'cloud': the version is classified private "
                       "(push --private or registry tag classification=private) and 'cloud' is a public remote; "
                       "private data stays in private remotes, only approved artifacts go to the public cloud\n");
  CHECK_FALSE(fs::exists(w.dir / "cloud"));

  REQUIRE(w.run({"push", (w.dir / "model").string(), "--to", "nas", "--private", "--name", "m", "--version", "1"})
              .exit_code == 0);
  auto sync = w.run({"sync", "m/1", "--from", "nas", "--to", "cloud"});
  CHECK(sync.exit_code == 5);
  CHECK(sync.err.find("refusing to put m/1 on remote 'cloud'") != std::string::npos);
  CHECK_FALSE(fs::exists(w.dir / "cloud/models"));

  // An unclassified version may go public, streaming from one remote to the other.
  REQUIRE(w.run({"push", (w.dir / "model").string(), "--to", "nas", "--name", "m", "--version", "2"}).exit_code == 0);
  auto synced = w.json({"sync", "m/2", "--from", "nas", "--to", "cloud", "--part-size", "64KiB",
                        "--multipart-threshold", "64KiB"});
  CHECK(synced["transferred_objects"] == 4);
  auto again = w.json({"sync", "m/2", "--from", "nas", "--to", "cloud"});
  CHECK(again["transferred_objects"] == 0);
  CHECK(again["already_on_remote"] == true);
  CHECK(tree(w.dir / "cloud/objects") == tree(w.dir / "nas/objects"));  // m/1 shares every object

  // Without --from, pull takes the first remote that has it, private before public.
  auto pulled = w.json({"pull", "m/2", "--out", (w.dir / "out").string()});
  CHECK(pulled["remote"]["name"] == "nas");
  fs::remove_all(w.dir / "nas/models/m");
  auto from_cloud = w.json({"pull", "m/2", "--out", (w.dir / "out2").string()});
  CHECK(from_cloud["remote"]["name"] == "cloud");
}

TEST_CASE("pull refuses unsafe paths and corrupt objects, leaving nothing behind") {
  World w;
  w.add_remotes();
  REQUIRE(w.run({"push", (w.dir / "model").string(), "--to", "nas", "--name", "m", "--version", "1"}).exit_code == 0);
  std::string manifest = t::read_text(w.dir / "nas/models/m/1.json");

  std::string evil = manifest;
  evil.replace(evil.find("\"vocab.txt\""), 11, "\"../../escaped.txt\"");
  t::write_text(w.dir / "nas/models/m/2.json", evil);
  auto unsafe = w.run({"pull", "m/2", "--from", "nas", "--out", (w.dir / "a/b").string()});
  CHECK(unsafe.exit_code == 3);
  CHECK(unsafe.err.find("unsafe path '../../escaped.txt'") != std::string::npos);
  CHECK_FALSE(fs::exists(w.dir / "escaped.txt"));
  CHECK_FALSE(fs::exists(w.dir / "a"));

  std::string weights_sha = recmodel::sha256_hex(t::read_text(w.dir / "model/model.safetensors"));
  fs::path object = w.dir / "nas/objects/sha256" / weights_sha.substr(0, 2) / weights_sha.substr(2);
  std::string bytes = t::read_text(object);
  bytes[1234] ^= 0x40;
  t::write_text(object, bytes);
  for (std::string threshold : {"8MiB", "64KiB"}) {
    CAPTURE(threshold);
    auto corrupt = w.run({"pull", "m/1", "--from", "nas", "--out", (w.dir / "out").string(), "--multipart-threshold",
                          threshold, "--part-size", "64KiB"});
    CHECK(corrupt.exit_code == 6);
    CHECK(corrupt.err.find("recmodel: error: checksum mismatch: ") == 0);
    CHECK(corrupt.err.find("(file 'model.safetensors')") != std::string::npos);
    CHECK_FALSE(fs::exists(w.dir / "out"));
    for (const auto& entry : fs::recursive_directory_iterator(w.dir.path()))
      CHECK(entry.path().filename().string().find("recmodel-pull") == std::string::npos);
  }
}

TEST_CASE("push and pull of registry versions: location recorded, alias resolved, classification tag honoured") {
  World w;
  w.add_remotes();
  auto registered = w.run({"registry", "register", "intent", "--path", (w.dir / "model").string()});
  if (registered.exit_code != 0 && registered.err.find("unknown command") != std::string::npos) {
    MESSAGE("no registry command in this build; registry integration not checked");
    return;
  }
  REQUIRE_MESSAGE(registered.exit_code == 0, registered.err);
  REQUIRE(w.run({"registry", "promote", "models:/intent/1", "--alias", "production"}).exit_code == 0);

  auto pushed = w.json({"push", "models:/intent@production", "--to", "cloud"});
  CHECK(pushed["name"] == "intent");
  CHECK(pushed["version"] == "1");
  CHECK(pushed["recorded_in_registry"] == true);
  CHECK(fs::exists(w.dir / "cloud/models/intent/1.json"));
  auto lineage = w.run({"--json", "registry", "lineage", "models:/intent/1"});
  CHECK(lineage.out.find(w.url("cloud") + "/models/intent/1.json") != std::string::npos);

  auto pulled = w.json({"pull", "models:/intent@production", "--out", (w.dir / "prod").string()});
  CHECK(pulled["remote"]["name"] == "cloud");
  CHECK(pulled["ref"] == "models:/intent/1");
  CHECK(tree(w.dir / "prod") == tree(w.dir / "model"));

  REQUIRE(w.run({"registry", "tag", "models:/intent/1", "classification=private"}).exit_code == 0);
  fs::remove_all(w.dir / "cloud");
  auto refused = w.run({"push", "models:/intent/1", "--to", "cloud"});
  CHECK(refused.exit_code == 5);
  CHECK(refused.err.find("refusing to put intent/1 on remote 'cloud'") != std::string::npos);
  CHECK(w.run({"push", "models:/intent/1", "--to", "nas"}).exit_code == 0);
}

TEST_CASE("an encrypted file remote: keygen, add, push, ls, pull, sync, rotate-key, and every key refusal") {
  World w;
  w.add_remotes();
  const std::string key = (w.dir / "cloud.key").string(), other = (w.dir / "other.key").string();
  auto made = w.json({"remote", "keygen", key});
  CHECK(made["mode"] == "0600");
  CHECK(w.run({"remote", "keygen", key}).exit_code == 2);  // never replaced
  REQUIRE(w.run({"remote", "keygen", other}).exit_code == 0);

  auto added = w.json({"remote", "add", "sealed", w.url("sealed"), "--public", "--encrypt", "--key-file", key,
                       "--create-bucket"});
  CHECK(added["added"]["encrypted"] == true);
  CHECK(added["keyring"].get<std::string>().size() == 16);
  // The config names the key file, never holds the key.
  const std::string config = t::read_text(w.dir / "config.toml");
  CHECK(config.find("key_file = '" + key + "'") != std::string::npos);
  CHECK(config.find(t::read_text(key).substr(0, 64)) == std::string::npos);
  CHECK(w.run({"remote", "list"}).out.find("public, encrypted") != std::string::npos);

  auto pushed = w.json({"push", (w.dir / "model").string(), "--to", "sealed", "--name", "intent", "--version", "1",
                        "--multipart-threshold", "128KiB", "--part-size", "64KiB"});
  CHECK(pushed["transferred_objects"] == 4);
  for (const auto& [path, bytes] : tree(w.dir / "sealed")) {
    CAPTURE(path);
    CHECK(path.find("intent") == std::string::npos);
    CHECK(path.find("objects") == std::string::npos);
    CHECK(bytes.find("BertForSequenceClassification") == std::string::npos);
  }
  CHECK(w.json({"ls", "sealed"})["versions"].size() == 1);
  w.json({"pull", "intent/1", "--from", "sealed", "--out", (w.dir / "back").string()});
  CHECK(tree(w.dir / "back") == tree(w.dir / "model"));

  // Plain private remote -> encrypted public one, and back out of it.
  w.json({"push", (w.dir / "model").string(), "--to", "nas", "--name", "ranker", "--version", "3"});
  w.json({"sync", "ranker/3", "--from", "nas", "--to", "sealed"});
  w.json({"pull", "ranker/3", "--from", "sealed", "--out", (w.dir / "ranker").string()});
  CHECK(tree(w.dir / "ranker") == tree(w.dir / "model"));

  // The wrong key: exit 6, one line, nothing written.
  auto wrong = w.run({"pull", "intent/1", "--from", "sealed", "--out", (w.dir / "wrong").string(), "--key-file", other});
  CHECK(wrong.exit_code == 6);
  CHECK(wrong.err.find("(wrong key?)") != std::string::npos);
  CHECK_FALSE(fs::exists(w.dir / "wrong"));
  // A key others can read is refused before anything is read.
  fs::permissions(other, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto shared = w.run({"ls", "sealed", "--key-file", other});
  CHECK(shared.exit_code == 2);
  CHECK(shared.err.find("chmod 600") != std::string::npos);
  fs::permissions(other, fs::perms::owner_read | fs::perms::owner_write);
  // No key at all (a remote added with RECMODEL_ENCRYPTION_KEY_FILE only): exit 4, naming both ways.
  auto env_only = t::run_recmodel({"remote", "add", "envonly", w.url("sealed"), "--encrypt"}, "",
                                  {w.env[0], w.env[1], "RECMODEL_ENCRYPTION_KEY_FILE=" + key});
  REQUIRE_MESSAGE(env_only.exit_code == 0, env_only.err);
  auto no_key = w.run({"ls", "envonly"});
  CHECK(no_key.exit_code == 4);
  CHECK(no_key.err.find("--key-file FILE or set RECMODEL_ENCRYPTION_KEY_FILE") != std::string::npos);

  // A changed byte in the big object: exit 6 naming the chunk, nothing at --out.
  std::string biggest;
  uintmax_t biggest_size = 0;
  for (const auto& entry : fs::recursive_directory_iterator(w.dir / "sealed"))
    if (entry.is_regular_file() && entry.file_size() > biggest_size) {
      biggest_size = entry.file_size();
      biggest = entry.path().string();
    }
  std::string bytes = t::read_text(biggest);
  bytes[bytes.size() / 2] ^= 0x20;
  t::write_text(biggest, bytes);
  auto tampered = w.run({"pull", "intent/1", "--from", "sealed", "--out", (w.dir / "tampered").string()});
  CHECK(tampered.exit_code == 6);
  CHECK(tampered.err.find("does not authenticate") != std::string::npos);
  CHECK_FALSE(fs::exists(w.dir / "tampered"));
  bytes[bytes.size() / 2] ^= 0x20;
  t::write_text(biggest, bytes);

  // Rotation: the new key opens everything, the old one nothing; the config follows.
  auto rotated = w.json({"remote", "rotate-key", "sealed", "--new-key-file", other});
  CHECK(rotated["keyring"] == added["keyring"]);
  CHECK(rotated["config_updated"] == true);
  w.json({"pull", "intent/1", "--from", "sealed", "--out", (w.dir / "rotated").string()});
  CHECK(tree(w.dir / "rotated") == tree(w.dir / "model"));
  auto old = w.run({"ls", "sealed", "--key-file", key});
  CHECK(old.exit_code == 6);
}
