// `pull`, `sync` and `ls` against a tampered or hostile file:// remote: manifests and objects
// crafted by hand, a staging directory prepared by someone else, links planted where recmodel
// writes. Each case runs under the 4 GiB address-space limit and must end in a verified tree or
// one refusal line with the documented exit code, never a write outside --out.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "common/files.h"
#include "tests/hostile.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

std::string random_bytes(size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

// Flags that make files over 64 KiB go in 64 KiB ranged parts.
const std::vector<std::string> kSmallParts = {"--multipart-threshold", "64KiB", "--part-size", "64KiB"};

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A scratch world with two file remotes, `nas` and `cloud`, whose contents the tests write by hand.
struct Remote {
  t::TempDir dir;
  std::vector<std::string> env;
  Remote() {
    env = {"RECMODEL_CONFIG=" + (dir / "config.toml").string(), "RECMODEL_REGISTRY=" + (dir / "registry.db").string()};
    REQUIRE(t::run_recmodel({"remote", "add", "nas", "file://" + (dir / "nas").string()}, "", env).exit_code == 0);
    REQUIRE(t::run_recmodel({"remote", "add", "cloud", "file://" + (dir / "cloud").string()}, "", env).exit_code == 0);
  }
  // Stores `bytes` as an object of `nas`; returns its SHA-256.
  std::string object(const std::string& bytes) {
    std::string sha = recmodel::sha256_hex(bytes);
    t::write_text(dir / "nas/objects/sha256" / sha.substr(0, 2) / sha.substr(2), bytes);
    return sha;
  }
  // Writes the manifest of m/VERSION on `nas` listing `files` (path, size, sha256) as given; returns its text.
  std::string manifest(const std::string& version, const nlohmann::json& files) {
    nlohmann::ordered_json document = {{"format", "recmodel-manifest"},
                                       {"format_version", 1},
                                       {"name", "m"},
                                       {"version", version},
                                       {"classification", ""},
                                       {"created", "2026-01-01T00:00:00Z"},
                                       {"total_size", 0},
                                       {"files", files}};
    std::string text = document.dump(2) + "\n";
    t::write_text(dir / "nas/models/m" / (version + ".json"), text);
    return text;
  }
  // Lists `contents` (path -> bytes) honestly: objects stored, sizes and digests true.
  std::string honest(const std::string& version, const std::map<std::string, std::string>& contents) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& [path, bytes] : contents)
      files.push_back({{"path", path}, {"size", bytes.size()}, {"sha256", object(bytes)}});
    return manifest(version, files);
  }
  t::RunResult run(const std::vector<std::string>& args) { return t::run_recmodel_limited(args, "", env); }
  fs::path out() const { return dir / "out"; }
};

// Returns every regular file under `dir` as relative path -> contents; fails on anything else.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    fs::file_status status = entry.symlink_status();
    CHECK_MESSAGE((fs::is_regular_file(status) || fs::is_directory(status)),
                  entry.path().string() << " is neither a regular file nor a directory");
    if (fs::is_regular_file(status))
      files[fs::relative(entry.path(), dir).generic_string()] = t::read_text(entry.path());
  }
  return files;
}

// Names of the entries under `dir` that a pull left behind (staging directories).
std::vector<std::string> pull_leftovers(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find("recmodel-pull") != std::string::npos)
      names.push_back(entry.path().filename().string());
  return names;
}

// The staging directory names of a pull of `manifest_text` into `out`: the predictable one older
// recmodels used, and one in today's pattern (as an interrupted pull would leave, mode 0700).
struct StagingNames {
  fs::path legacy, current;
};
StagingNames staging_names(const fs::path& out, const std::string& manifest_text) {
  std::string stem =
      "." + out.filename().string() + ".recmodel-pull-" + recmodel::sha256_hex(manifest_text).substr(0, 12);
  StagingNames names{out.parent_path() / stem, out.parent_path() / (stem + "-abc123")};
  fs::create_directories(names.legacy);
  fs::create_directories(names.current / "files");
  fs::create_directories(names.current / "parts");
  fs::permissions(names.current, fs::perms::owner_all, fs::perm_options::replace);
  return names;
}

}  // namespace

TEST_CASE("pull: a pre-created staging folder with a wrong file of the right size is not kept unhashed") {
  Remote r;
  const std::string big = random_bytes(300000, 1), small = "the real vocabulary\n";
  std::string text = r.honest("1", {{"big.bin", big}, {"vocab.txt", small}, {"sub/c.txt", "ccc"}});
  StagingNames staging = staging_names(r.out(), text);
  const std::string wrong_big(big.size(), 'w'), wrong_small(small.size(), 'w');
  // Complete-looking files of the right size in both layouts, and a .part whose log claims every chunk.
  t::write_text(staging.legacy / "big.bin", wrong_big);
  t::write_text(staging.legacy / "vocab.txt", wrong_small);
  t::write_text(staging.current / "files/big.bin", wrong_big);
  t::write_text(staging.current / "files/vocab.txt", wrong_small);
  t::write_text(staging.current / "files/sub/c.txt", "xxx");
  t::write_text(staging.current / "files/extra.txt", "not in the manifest");
  std::string big_sha = recmodel::sha256_hex(big);
  t::write_text(staging.current / "parts" / (big_sha + ".part"), wrong_big);
  std::string log = "recmodel-pull-chunks 65536 300000\n";
  for (int i = 0; i < 5; ++i) log += std::to_string(i) + "\n";
  t::write_text(staging.current / "parts" / (big_sha + ".log"), log);

  auto result = r.run(cat({"--json", "pull", "m/1", "--from", "nas", "--out", r.out().string()}, kSmallParts));
  INFO("stderr: " << result.err);
  if (result.exit_code == 6) {
    REQUIRE_REFUSED(result, 6);
    CHECK_FALSE(fs::exists(r.out()));
    return;
  }
  REQUIRE(result.exit_code == 0);
  CHECK(tree(r.out()) ==
        std::map<std::string, std::string>{{"big.bin", big}, {"sub/c.txt", "ccc"}, {"vocab.txt", small}});
  CHECK(nlohmann::json::parse(result.out)["files"] == 3);
}

TEST_CASE("pull: a symlinked .part in staging is never followed") {
  Remote r;
  const std::string big = random_bytes(300000, 2);
  std::string text = r.honest("1", {{"big.bin", big}, {"vocab.txt", "vocab"}, {"sub/c.txt", "ccc"}});
  StagingNames staging = staging_names(r.out(), text);
  // Files outside --out, of the sizes a pull would write, and a directory outside.
  const std::string victim_text(big.size(), 'v');
  t::write_text(r.dir / "victim.bin", victim_text);
  t::write_text(r.dir / "victim.log", "precious log\n");
  t::write_text(r.dir / "victim.txt", "vocab");
  fs::create_directories(r.dir / "elsewhere");
  std::string big_sha = recmodel::sha256_hex(big);
  fs::create_symlink(r.dir / "victim.bin", staging.legacy / "big.bin.part");
  fs::create_symlink(r.dir / "victim.log", staging.legacy / "big.bin.part.log");
  fs::create_symlink(r.dir / "victim.txt", staging.legacy / "vocab.txt");
  fs::create_symlink(r.dir / "elsewhere", staging.legacy / "sub");
  fs::create_symlink(r.dir / "victim.bin", staging.current / "parts" / (big_sha + ".part"));
  fs::create_symlink(r.dir / "victim.log", staging.current / "parts" / (big_sha + ".log"));
  fs::create_symlink(r.dir / "victim.txt", staging.current / "files/vocab.txt");
  fs::create_symlink(r.dir / "elsewhere", staging.current / "files/sub");

  auto result = r.run(cat({"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--jobs", "4"}, kSmallParts));
  INFO("stderr: " << result.err);
  CHECK(t::read_text(r.dir / "victim.bin") == victim_text);
  CHECK(t::read_text(r.dir / "victim.log") == "precious log\n");
  CHECK(t::read_text(r.dir / "victim.txt") == "vocab");
  CHECK(fs::is_empty(r.dir / "elsewhere"));
  if (result.exit_code != 0) {
    REQUIRE_REFUSED(result, 6);
    return;
  }
  CHECK(result.out.find("SHA-256 verified") != std::string::npos);
  // Regular files only, with the remote's contents.
  CHECK(tree(r.out()) ==
        std::map<std::string, std::string>{{"big.bin", big}, {"sub/c.txt", "ccc"}, {"vocab.txt", "vocab"}});
  CHECK_FALSE(fs::is_symlink(r.out() / "sub"));
}

TEST_CASE("pull: a link at --out is replaced with --force, never written through") {
  Remote r;
  r.honest("1", {{"vocab.txt", "vocab"}});
  fs::create_directories(r.dir / "elsewhere");
  fs::create_directory_symlink(r.dir / "elsewhere", r.out());
  auto refused = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string()});
  REQUIRE_REFUSED(refused, 2);
  auto forced = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--force"});
  INFO("stderr: " << forced.err);
  REQUIRE(forced.exit_code == 0);
  CHECK_FALSE(fs::is_symlink(r.out()));
  CHECK(tree(r.out()) == std::map<std::string, std::string>{{"vocab.txt", "vocab"}});
  CHECK(fs::is_empty(r.dir / "elsewhere"));
}

TEST_CASE("pull: an interrupted pull's staging directory is resumed, every reused byte hashed") {
  Remote r;
  const std::string big = random_bytes(300000, 3);
  std::string text = r.honest("1", {{"big.bin", big}, {"vocab.txt", "vocab"}});
  StagingNames staging = staging_names(r.out(), text);
  fs::remove_all(staging.legacy);
  // What a run cut off after chunks 0 and 2 leaves: a sparse .part and its log.
  std::string image(big.size(), '\0');
  image.replace(0, 65536, big.substr(0, 65536));
  image.replace(131072, 65536, big.substr(131072, 65536));
  std::string big_sha = recmodel::sha256_hex(big);
  t::write_text(staging.current / "parts" / (big_sha + ".part"), image);
  t::write_text(staging.current / "parts" / (big_sha + ".log"), "recmodel-pull-chunks 65536 300000\n0\n2\n");
  t::write_text(staging.current / "files/vocab.txt", "vocab");

  auto result = r.run(cat({"--json", "pull", "m/1", "--from", "nas", "--out", r.out().string()}, kSmallParts));
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  auto document = nlohmann::json::parse(result.out);
  CHECK(document["resumed_parts"] == 2);
  CHECK(document["skipped_objects"] == 1);  // vocab.txt, hashed in place
  CHECK(document["transferred_bytes"] == big.size() - 131072);
  CHECK(tree(r.out()) == std::map<std::string, std::string>{{"big.bin", big}, {"vocab.txt", "vocab"}});
  CHECK(pull_leftovers(r.dir.path()).empty());
}

TEST_CASE("pull: a manifest declaring a 5 TB file is refused before anything is allocated") {
  Remote r;
  const std::string bytes = random_bytes(1000, 4);
  std::string sha = r.object(bytes);
  r.manifest("1", nlohmann::json::array({{{"path", "huge.bin"}, {"size", 5000000000000ULL}, {"sha256", sha}},
                                         {{"path", "vocab.txt"}, {"size", 5}, {"sha256", r.object("vocab")}}}));
  for (const auto& parts : {std::vector<std::string>{}, kSmallParts}) {
    auto result = r.run(cat({"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--jobs", "8"}, parts));
    REQUIRE_REFUSED(result, 6);
    CHECK(result.err.find("(file 'huge.bin') holds 1000 bytes, the manifest says 5000000000000") != std::string::npos);
    CHECK_FALSE(fs::exists(r.out()));
    CHECK(pull_leftovers(r.dir.path()).empty());
    for (const auto& entry : fs::recursive_directory_iterator(r.dir.path()))
      if (entry.is_regular_file()) CHECK(entry.file_size() < 1000000);
  }
  // An object the manifest lists but the remote lacks: exit 6, named.
  r.manifest("2", nlohmann::json::array(
                      {{{"path", "gone.bin"}, {"size", 5000000000000ULL}, {"sha256", std::string(64, 'a')}}}));
  auto missing = r.run({"pull", "m/2", "--from", "nas", "--out", r.out().string(), "--jobs", "8"});
  REQUIRE_REFUSED(missing, 6);
  CHECK(missing.err.find("(file 'gone.bin') is missing") != std::string::npos);
}

TEST_CASE("sync: a manifest declaring a 5 TB file is refused before anything is copied") {
  Remote r;
  const std::string bytes = random_bytes(1000, 5);
  std::string sha = r.object(bytes);
  r.manifest("1", nlohmann::json::array({{{"path", "huge.bin"}, {"size", 5000000000000ULL}, {"sha256", sha}}}));
  for (const auto& parts : {std::vector<std::string>{}, kSmallParts}) {
    auto result = r.run(cat({"sync", "m/1", "--from", "nas", "--to", "cloud", "--jobs", "8"}, parts));
    REQUIRE_REFUSED(result, 6);
    CHECK(result.err.find("(file 'huge.bin') holds 1000 bytes, the manifest says 5000000000000") != std::string::npos);
    CHECK_FALSE(fs::exists(r.dir / "cloud/models/m/1.json"));
    CHECK_FALSE(fs::exists(r.dir / "cloud/objects"));
  }
}

TEST_CASE("pull: names colliding with internal temp names (a + a.part, y + y.tmp-copy) are all written") {
  Remote r;
  const std::map<std::string, std::string> contents = {
      {"a", random_bytes(200000, 6)},  // large: downloaded in parts
      {"a.part", "I am a manifest file named a.part\n"},
      {"a.part.log", "and one named a.part.log\n"},
      {"x", "same contents\n"},
      {"y", "same contents\n"},  // a local copy of x
      {"y.tmp-copy", "I am a manifest file named y.tmp-copy\n"},
      {"files", "a file named like the staging subfolder\n"},
      {"parts", "and another\n"},
  };
  r.honest("1", contents);
  auto result = r.run(cat({"--json", "pull", "m/1", "--from", "nas", "--out", r.out().string()}, kSmallParts));
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(nlohmann::json::parse(result.out)["files"] == contents.size());
  CHECK(tree(r.out()) == contents);
}

TEST_CASE("pull and sync: one SHA-256 listed with two different sizes is refused, naming both entries") {
  Remote r;
  std::string sha = r.object("twelve bytes");
  r.manifest("1", nlohmann::json::array({{{"path", "first.txt"}, {"size", 12}, {"sha256", sha}},
                                         {{"path", "second.txt"}, {"size", 4000000000ULL}, {"sha256", sha}}}));
  for (const auto& args : {std::vector<std::string>{"pull", "m/1", "--from", "nas", "--out", r.out().string()},
                           std::vector<std::string>{"sync", "m/1", "--from", "nas", "--to", "cloud"}}) {
    CAPTURE(args[0]);
    auto result = r.run(args);
    REQUIRE_REFUSED(result, 3);
    CHECK(result.err.find("'first.txt' (12 bytes) and 'second.txt' (4000000000 bytes) list the same SHA-256") !=
          std::string::npos);
  }
  CHECK_FALSE(fs::exists(r.out()));
  CHECK_FALSE(fs::exists(r.dir / "cloud/objects"));
}

TEST_CASE("pull: a path listed twice in a manifest is refused") {
  Remote r;
  std::string one = r.object("one"), two = r.object("two");
  r.manifest("1", nlohmann::json::array({{{"path", "same.txt"}, {"size", 3}, {"sha256", one}},
                                         {{"path", "same.txt"}, {"size", 3}, {"sha256", two}}}));
  auto result = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string()});
  REQUIRE_REFUSED(result, 3);
  CHECK(result.err.find("file 'same.txt' is listed twice") != std::string::npos);
  CHECK_FALSE(fs::exists(r.out()));
}

TEST_CASE("pull, sync and ls: control characters in manifest paths are refused like '..' and never printed raw") {
  Remote r;
  std::string sha = r.object("x");
  const std::vector<std::string> evil = {"esc\x1b[31mred.txt",
                                         "line\nbreak.txt",
                                         "tab\there.txt",
                                         "del\x7f.txt",
                                         "bell\x07.txt",
                                         "csi\xc2\x9b"
                                         "2J.txt",
                                         "dir\r/file.txt"};
  for (size_t i = 0; i < evil.size(); ++i) {
    CAPTURE(i);
    std::string version = std::to_string(i + 1);
    r.manifest(version, nlohmann::json::array({{{"path", "ok.txt"}, {"size", 1}, {"sha256", sha}},
                                               {{"path", evil[i]}, {"size", 1}, {"sha256", sha}}}));
    for (const auto& args :
         {std::vector<std::string>{"pull", "m/" + version, "--from", "nas", "--out", r.out().string()},
          std::vector<std::string>{"sync", "m/" + version, "--from", "nas", "--to", "cloud"},
          std::vector<std::string>{"ls", "nas", "m/" + version}}) {
      CAPTURE(args[0]);
      auto result = r.run(args);
      REQUIRE_REFUSED(result, 3);
      CHECK(result.err.find("(a control character)") != std::string::npos);
      // One line, with no byte a terminal would act on.
      CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
      for (char c : result.err) CHECK_MESSAGE((static_cast<unsigned char>(c) >= 0x20 || c == '\n'), "raw control byte");
      CHECK(result.err.find('\x7f') == std::string::npos);
      CHECK(result.err.find("\xc2\x9b") == std::string::npos);
      CHECK(result.out.empty());
    }
  }
  CHECK_FALSE(fs::exists(r.out()));
  CHECK_FALSE(fs::exists(r.dir / "cloud/objects"));
  // The '..' refusal is the same exit code.
  r.manifest("9", nlohmann::json::array({{{"path", "../escaped.txt"}, {"size", 1}, {"sha256", sha}}}));
  REQUIRE_REFUSED(r.run({"pull", "m/9", "--from", "nas", "--out", r.out().string()}), 3);
}

TEST_CASE("pull: a manifest's name, version or fields with control characters are refused, never echoed raw") {
  Remote r;
  std::string sha = r.object("x");
  std::string text = r.manifest("1", nlohmann::json::array({{{"path", "ok.txt"}, {"size", 1}, {"sha256", sha}}}));
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"name\": \"m\"", "\"name\": \"m\\u001b]0;owned\\u0007\""},
           {"\"classification\": \"\"", "\"classification\": \"\\u001b[2J\""},
           {"\"sha256\": \"" + sha + "\"", "\"sha256\": \"\\u001b[2J\""}}) {
    CAPTURE(to);
    std::string evil = text;
    evil.replace(evil.find(from), from.size(), to);
    t::write_text(r.dir / "nas/models/m/1.json", evil);
    auto result = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string()});
    REQUIRE_REFUSED(result, 3);
    CHECK(result.err.find('\x1b') == std::string::npos);
    CHECK(result.err.find('\x07') == std::string::npos);
  }
  CHECK_FALSE(fs::exists(r.out()));
}

TEST_CASE("pull: a huge object posing as a manifest is refused before it is read") {
  Remote r;
  fs::create_directories(r.dir / "nas/models/m");
  {
    std::ofstream sparse(r.dir / "nas/models/m/1.json", std::ios::binary);
    sparse.seekp((std::streamoff{5} << 30) - 1);  // 5 GiB, sparse
    sparse.put('}');
  }
  auto result = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string()});
  REQUIRE_REFUSED(result, 3);
  CHECK(result.err.find("a manifest of 5368709120 bytes") != std::string::npos);
}

TEST_CASE("pull and push: the parent directory is fsynced after the final rename") {
  // Observed with strace: each rename into place is followed by an fsync of its directory.
  // scripts/install-deps.sh installs strace; without it this test fails rather than passing unseen.
  REQUIRE_MESSAGE(std::system("strace -V > /dev/null 2>&1") == 0, "strace is not installed (scripts/install-deps.sh)");
  Remote r;
  r.honest("1", {{"vocab.txt", "vocab"}, {"big.bin", random_bytes(100000, 7)}});
  fs::path trace = r.dir / "trace.log";
  std::string env;
  for (const auto& variable : r.env) env += variable + " ";
#ifdef RECMODEL_BINARY
  std::string binary = RECMODEL_BINARY;
#else
  std::string binary = std::getenv("RECMODEL") ? std::getenv("RECMODEL") : "recmodel";
#endif
  std::string command = "env " + env + "CI=1 strace -f -qq -e trace=rename,renameat,renameat2,open,openat,fsync -o " +
                        trace.string() + " " + binary + " pull m/1 --from nas --out " + r.out().string() +
                        " > /dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  REQUIRE(fs::exists(r.out() / "vocab.txt"));
  std::string log = t::read_text(trace);
  // The rename of the verified tree to --out, then the parent opened as a directory and fsynced.
  size_t rename = log.find("/files\", ");
  REQUIRE_MESSAGE(rename != std::string::npos, log);
  rename = log.find("\"" + r.out().string() + "\"", rename);
  REQUIRE_MESSAGE(rename != std::string::npos, log);
  size_t open = log.find("\"" + r.dir.path().string() + "\", O_RDONLY|O_CLOEXEC|O_DIRECTORY", rename);
  if (open == std::string::npos) open = log.find("\"" + r.dir.path().string() + "\", O_RDONLY|O_DIRECTORY", rename);
  REQUIRE_MESSAGE(open != std::string::npos, log.substr(rename));
  size_t equals = log.find("= ", open);
  std::string fd = log.substr(equals + 2, log.find('\n', equals) - equals - 2);
  CHECK(log.find("fsync(" + fd + ")", open) != std::string::npos);

  // push writes the manifest with write_file_atomic: rename, then fsync of models/m.
  fs::remove(trace);
  command = "env " + env + "CI=1 strace -f -qq -e trace=rename,renameat,renameat2,open,openat,fsync -o " +
            trace.string() + " " + binary + " push " + r.out().string() + " --to cloud --name m --version 1" +
            " > /dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  log = t::read_text(trace);
  fs::path models = r.dir / "cloud/models/m";
  rename = log.find("\"" + (models / "1.json").string() + "\")");
  REQUIRE_MESSAGE(rename != std::string::npos, log);
  open = log.find("\"" + models.string() + "\", O_RDONLY|O_CLOEXEC|O_DIRECTORY", rename);
  REQUIRE_MESSAGE(open != std::string::npos, log.substr(rename));
  equals = log.find("= ", open);
  fd = log.substr(equals + 2, log.find('\n', equals) - equals - 2);
  CHECK(log.find("fsync(" + fd + ")", open) != std::string::npos);
}
