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
#include <thread>
#include <chrono>

#include "common/files.h"
#include "tests/hostile.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

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
  const std::string big = t::random_bytes(300000, 1), small = "the real vocabulary\n";
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
  const std::string big = t::random_bytes(300000, 2);
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
  const std::string big = t::random_bytes(300000, 3);
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
  const std::string bytes = t::random_bytes(1000, 4);
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
  const std::string bytes = t::random_bytes(1000, 5);
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
      {"a", t::random_bytes(200000, 6)},  // large: downloaded in parts
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
  r.honest("1", {{"vocab.txt", "vocab"}, {"big.bin", t::random_bytes(100000, 7)}});
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

// ---------------------------------------------------------------- red-team regressions

namespace {

// Stores a sparse object of `size` zero bytes on `nas` and lists it as m/VERSION's `path`.
void sparse_zero_version(Remote& r, const std::string& version, const std::string& path, uint64_t size) {
  fs::path scratch = r.dir / "zeros.tmp";
  {
    std::ofstream out(scratch, std::ios::binary);
    out.seekp(static_cast<std::streamoff>(size) - 1);
    out.put('\0');
  }
  std::string sha = recmodel::sha256_file(scratch);
  fs::path object = r.dir / "nas/objects/sha256" / sha.substr(0, 2) / sha.substr(2);
  fs::create_directories(object.parent_path());
  fs::rename(scratch, object);
  r.manifest(version, nlohmann::json::array({{{"path", path}, {"size", size}, {"sha256", sha}}}));
}

bool has_raw_control_byte(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
  }
  return text.find("\xe2\x80\xae") != std::string::npos || text.find("\xe2\x80\xa8") != std::string::npos ||
         text.find("\xc2\x9b") != std::string::npos || text.find('\xff') != std::string::npos;
}

}  // namespace

TEST_CASE("pull: a folder that appears at --out while pulling is never replaced without --force") {
  Remote r;
  sparse_zero_version(r, "1", "zero.bin", uint64_t{256} << 20);
  t::RunResult result;
  std::thread pull([&] {
    result = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--jobs", "1", "--part-size", "64KiB",
                    "--multipart-threshold", "64KiB"});
  });
  // As soon as the pull is working (its staging folder exists), someone creates --out.
  bool created = false;
  for (int i = 0; i < 20000 && !created; ++i) {
    if (!pull_leftovers(r.dir.path()).empty()) {
      created = fs::create_directory(r.out());
      if (created) t::write_text(r.out() / "precious.txt", "mine\n");
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  pull.join();
  REQUIRE_MESSAGE(created, "the pull finished before --out could be created; the race was not exercised");
  REQUIRE_REFUSED(result, 2);
  CHECK(result.err.find("appeared while working; not replacing it") != std::string::npos);
  CHECK(t::read_text(r.out() / "precious.txt") == "mine\n");
  CHECK(tree(r.out()).size() == 1);
  CHECK(pull_leftovers(r.dir.path()).empty());
}

TEST_CASE("pull: parallel pulls into one --out never lose a tree or leave staging behind") {
  Remote r;
  const std::map<std::string, std::string> contents = {{"big.bin", t::random_bytes(400000, 11)}, {"vocab.txt", "v\n"}};
  r.honest("1", contents);
  for (bool force : {false, true}) {
    CAPTURE(force);
    fs::remove_all(r.out());
    std::vector<t::RunResult> results(4);
    std::vector<std::thread> pulls;
    for (size_t i = 0; i < results.size(); ++i)
      pulls.emplace_back([&, i] {
        std::vector<std::string> args = {"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--jobs", "2"};
        if (force) args.push_back("--force");
        results[i] = r.run(cat(args, kSmallParts));
      });
    for (auto& thread : pulls) thread.join();
    int succeeded = 0;
    for (const auto& result : results) {
      INFO("stderr: " << result.err);
      if (result.exit_code == 0) {
        ++succeeded;
        continue;
      }
      // Without --force, the losers are refused: the tree already there (or appeared meanwhile) stays.
      CHECK_FALSE(force);
      REQUIRE_REFUSED(result, 2);
    }
    // Without --force exactly one tree lands; with it, each pull replaces the one before.
    CHECK(succeeded == (force ? 4 : 1));
    CHECK(tree(r.out()) == contents);
    CHECK(pull_leftovers(r.dir.path()).empty());
    for (const auto& entry : fs::directory_iterator(r.dir.path()))
      CHECK_MESSAGE(entry.path().filename().string().find(".old-") == std::string::npos, entry.path().string());
  }
}

TEST_CASE("pull --force never replaces a regular file at --out, and names it") {
  Remote r;
  r.honest("1", {{"vocab.txt", "vocab"}});
  t::write_text(r.out(), "my notes\n");
  auto result = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--force"});
  REQUIRE_REFUSED(result, 2);
  CHECK(result.err.find("is a regular file, not a directory") != std::string::npos);
  CHECK(t::read_text(r.out()) == "my notes\n");
  CHECK(pull_leftovers(r.dir.path()).empty());
}

TEST_CASE("pull: --out with a trailing slash stages beside it, never inside, and '.', '/' or '' is refused") {
  Remote r;
  const std::map<std::string, std::string> contents = {{"big.bin", t::random_bytes(200000, 12)}, {"vocab.txt", "v"}};
  r.honest("1", contents);
  for (const std::vector<std::string>& extra : {std::vector<std::string>{}, std::vector<std::string>{"--force"}}) {
    auto result = r.run(cat(cat({"pull", "m/1", "--from", "nas", "--out", r.out().string() + "//"}, extra), kSmallParts));
    INFO("stderr: " << result.err);
    REQUIRE(result.exit_code == 0);
    CHECK(tree(r.out()) == contents);  // nothing but the model inside
    CHECK(pull_leftovers(r.dir.path()).empty());
  }
  for (const std::string& out : std::vector<std::string>{".", "/", "", "..", (r.dir / "x/.").string()}) {
    CAPTURE(out);
    auto result = r.run({"pull", "m/1", "--from", "nas", "--out", out, "--force"});
    REQUIRE_REFUSED(result, 2);
    CHECK(result.err.find("names no new directory") != std::string::npos);
  }
}

TEST_CASE("pull: --jobs 256 with small parts stays within the memory limit, never a signal") {
  Remote r;
  const std::string big = t::random_bytes(8 << 20, 13);
  r.honest("1", {{"big.bin", big}, {"b.bin", t::random_bytes(3 << 20, 14)}, {"c.bin", t::random_bytes(3 << 20, 15)}});
  for (const auto& parts : {std::vector<std::string>{}, kSmallParts,
                            std::vector<std::string>{"--part-size", "64MiB", "--multipart-threshold", "1MiB"}}) {
    fs::remove_all(r.out());
    auto result = r.run(cat({"pull", "m/1", "--from", "nas", "--out", r.out().string(), "--jobs", "256"}, parts));
    INFO("stderr: " << result.err);
    CHECK(result.err.find("terminate called") == std::string::npos);
    REQUIRE(result.exit_code == 0);
    CHECK(t::read_text(r.out() / "big.bin") == big);
  }
}

TEST_CASE("pull: a hard link planted in a resumed staging folder never reaches --out or is written through") {
  Remote r;
  const std::string big = t::random_bytes(300000, 16), small = "small file\n";
  std::string text = r.honest("1", {{"big.bin", big}, {"small", small}});
  StagingNames staging = staging_names(r.out(), text);
  fs::remove_all(staging.legacy);
  // A victim outside --out with the right contents, hard-linked as a finished file...
  t::write_text(r.dir / "victim2", small);
  fs::create_hard_link(r.dir / "victim2", staging.current / "files/small");
  // ...and one of the right size hard-linked as the .part, its log claiming chunk 0 is done.
  const std::string victim_text(big.size(), 'v');
  t::write_text(r.dir / "victim.bin", victim_text);
  std::string big_sha = recmodel::sha256_hex(big);
  fs::create_hard_link(r.dir / "victim.bin", staging.current / "parts" / (big_sha + ".part"));
  t::write_text(staging.current / "parts" / (big_sha + ".log"), "recmodel-pull-chunks 65536 300000\n0\n");

  auto result = r.run(cat({"pull", "m/1", "--from", "nas", "--out", r.out().string()}, kSmallParts));
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(t::read_text(r.dir / "victim.bin") == victim_text);  // never written through the link
  CHECK(tree(r.out()) == std::map<std::string, std::string>{{"big.bin", big}, {"small", small}});
  struct stat victim_st, out_st;
  REQUIRE(::stat((r.dir / "victim2").c_str(), &victim_st) == 0);
  for (const char* name : {"small", "big.bin"}) {
    REQUIRE(::lstat((r.out() / name).c_str(), &out_st) == 0);
    CHECK(S_ISREG(out_st.st_mode));
    CHECK(out_st.st_nlink == 1);
    CHECK(out_st.st_ino != victim_st.st_ino);
  }
  CHECK(victim_st.st_nlink == 1);
  CHECK(pull_leftovers(r.dir.path()).empty());
}

TEST_CASE("sync: a corrupt object already on the destination is copied again, not reported as there") {
  Remote r;
  r.honest("1", {{"a.txt", "hello"}, {"b.txt", "second"}});
  std::string sha = recmodel::sha256_hex("hello"), sha_b = recmodel::sha256_hex("second");
  fs::path planted = r.dir / "cloud/objects/sha256" / sha.substr(0, 2) / sha.substr(2);
  fs::path short_one = r.dir / "cloud/objects/sha256" / sha_b.substr(0, 2) / sha_b.substr(2);
  t::write_text(planted, "jello");  // right size, wrong bytes
  t::write_text(short_one, "sec");  // wrong size
  auto result = r.run({"--json", "sync", "m/1", "--from", "nas", "--to", "cloud"});
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  auto document = nlohmann::json::parse(result.out);
  CHECK(document["skipped_objects"] == 0);
  CHECK(document["transferred_objects"] == 2);
  CHECK(document["replaced_objects"] == 2);
  CHECK(result.err.find("recmodel: warning: " + planted.string() + " is corrupt") != std::string::npos);
  CHECK(result.err.find("recmodel: warning: " + short_one.string() + " holds 3 bytes") != std::string::npos);
  CHECK(t::read_text(planted) == "hello");
  CHECK(t::read_text(short_one) == "second");
  auto pulled = r.run({"pull", "m/1", "--from", "cloud", "--out", r.out().string()});
  INFO("pull stderr: " << pulled.err);
  CHECK(pulled.exit_code == 0);
  // Verified objects count as there, once.
  auto again = r.run({"sync", "m/1", "--from", "nas", "--to", "cloud"});
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("copied 0 of 2 objects (0 B); 2 already there (11 B)") != std::string::npos);
  CHECK(again.err.empty());
}

TEST_CASE("ls: one unreadable manifest is a warning and the good versions are still listed") {
  Remote r;
  std::string sha = r.object("x");
  r.manifest("1", nlohmann::json::array({{{"path", "a"}, {"size", 1}, {"sha256", sha}}}));
  r.manifest("2", nlohmann::json::array({{{"path", "a"}, {"size", 1}, {"sha256", sha}}}));
  t::write_text(r.dir / "nas/models/m/3.json", "garbage\x1b]0;title\x07");
  t::write_text(r.dir / "nas/models/evil\x1b[2Jname/1.json", "{}");
  t::write_text(r.dir / "nas/models/m/4\x1b[5m.json", "{}");
  fs::copy_file(r.dir / "nas/models/m/1.json", r.dir / "nas/models/m/9.json");  // names m/1
  auto result = r.run({"ls", "nas"});
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 0);
  CHECK(t::error_line_count(result.err) == 0);
  CHECK(result.out.find("m/1 ") != std::string::npos);
  CHECK(result.out.find("m/2 ") != std::string::npos);
  CHECK(result.out.find("m/9") == std::string::npos);
  size_t warnings = 0;
  for (size_t at = result.err.find("recmodel: warning:"); at != std::string::npos;
       at = result.err.find("recmodel: warning:", at + 1))
    ++warnings;
  CHECK(warnings == 4);
  CHECK(result.err.find("the manifest names m/1, not m/9") != std::string::npos);
  CHECK_FALSE(has_raw_control_byte(result.err));
  CHECK_FALSE(has_raw_control_byte(result.out));
  auto json = r.run({"--json", "ls", "nas"});
  REQUIRE(json.exit_code == 0);
  auto document = nlohmann::json::parse(json.out);
  CHECK(document["versions"].size() == 2);
  CHECK(document["unreadable"].size() == 4);
}

TEST_CASE("ls: a manifest naming another version than its key is refused as pull refuses it") {
  Remote r;
  r.honest("1", {{"a", "x"}});
  fs::copy_file(r.dir / "nas/models/m/1.json", r.dir / "nas/models/m/9.json");
  auto listed = r.run({"ls", "nas", "m/9"});
  REQUIRE_REFUSED(listed, 6);
  CHECK(listed.err.find("the manifest names m/1, not m/9") != std::string::npos);
  REQUIRE_REFUSED(r.run({"pull", "m/9", "--from", "nas", "--out", r.out().string()}), 6);
}

TEST_CASE("sync and ls: an unsafe manifest path is refused without mentioning --out, which they do not have") {
  Remote r;
  std::string sha = r.object("x");
  r.manifest("1", nlohmann::json::array({{{"path", "../x"}, {"size", 1}, {"sha256", sha}}}));
  r.manifest("2", nlohmann::json::array({{{"path", "/etc/x"}, {"size", 1}, {"sha256", sha}}}));
  for (const std::string& version : {"1", "2"})
    for (const auto& args : {std::vector<std::string>{"sync", "m/" + version, "--from", "nas", "--to", "cloud"},
                             std::vector<std::string>{"ls", "nas", "m/" + version}}) {
      CAPTURE(args[0]);
      auto result = r.run(args);
      REQUIRE_REFUSED(result, 3);
      CHECK(result.err.find("--out") == std::string::npos);
      CHECK(result.err.find("refusing to write outside the destination") != std::string::npos);
    }
}

TEST_CASE("pull: a path too long once under the staging folder is refused before anything is created, cut short") {
  Remote r;
  std::string sha = r.object("x");
  std::string deep;
  while (deep.size() < 4070) deep += "d/";
  deep += "f";  // under 4096 bytes, over PATH_MAX with the staging prefix
  r.manifest("1", nlohmann::json::array({{{"path", deep}, {"size", 1}, {"sha256", sha}}}));
  std::string wide;
  for (int i = 0; i < 31; ++i) wide += std::string(130, 'w') + "/";
  wide += "f";  // 31 long names: few levels, under 4096 bytes, over PATH_MAX with the staging prefix
  r.manifest("2", nlohmann::json::array({{{"path", wide}, {"size", 1}, {"sha256", sha}}}));
  std::string nested;
  for (int i = 0; i < 200; ++i) nested += "n/";
  nested += "f";  // short, but 200 folders deep
  r.manifest("3", nlohmann::json::array({{{"path", nested}, {"size", 1}, {"sha256", sha}}}));
  for (const std::string& version : {"1", "2", "3"}) {
    CAPTURE(version);
    auto result = r.run({"pull", "m/" + version, "--from", "nas", "--out", r.out().string()});
    REQUIRE_REFUSED(result, 3);
    CHECK(result.err.size() < 800);  // the path is cut, never printed whole
    CHECK_FALSE(fs::exists(r.out()));
    CHECK(pull_leftovers(r.dir.path()).empty());
  }
}

TEST_CASE("pull: bidi overrides and line separators (U+202E, U+2028) in manifest paths are refused, never raw") {
  Remote r;
  std::string sha = r.object("x");
  const std::vector<std::string> evil = {"a\xe2\x80\xae" "txt.exe", "line\xe2\x80\xa8sep.txt", "\xe2\x81\xa6iso.txt"};
  for (size_t i = 0; i < evil.size(); ++i) {
    CAPTURE(i);
    std::string version = std::to_string(i + 1);
    r.manifest(version, nlohmann::json::array({{{"path", evil[i]}, {"size", 1}, {"sha256", sha}}}));
    auto result = r.run({"pull", "m/" + version, "--from", "nas", "--out", r.out().string()});
    REQUIRE_REFUSED(result, 3);
    CHECK(result.err.find("(a control character)") != std::string::npos);
    CHECK_FALSE(has_raw_control_byte(result.err));
    CHECK(result.err.find("\xe2\x81\xa6") == std::string::npos);
  }
  CHECK_FALSE(fs::exists(r.out()));
}

TEST_CASE("pull: a manifest that is not JSON is refused without echoing its invalid UTF-8 or control bytes") {
  Remote r;
  t::write_text(r.dir / "nas/models/m/1.json", std::string("{\"format\": \"\xff\xfe\x1b[2J\x9b\x80 broken"));
  auto result = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string()});
  REQUIRE_REFUSED(result, 3);
  CHECK_FALSE(has_raw_control_byte(result.err));
  for (char c : result.err) CHECK(static_cast<unsigned char>(c) != 0x9b);
}

TEST_CASE("pull: a re-fetched object's bytes are counted once, and one object is singular") {
  Remote r;
  const std::string big = t::random_bytes(300000, 17);
  std::string text = r.honest("1", {{"big.bin", big}});
  StagingNames staging = staging_names(r.out(), text);
  fs::remove_all(staging.legacy);
  // A .part of the right size whose log claims chunks 0 and 1, with the wrong bytes there: the rest is
  // fetched, the whole is rejected, and all of it is fetched again. Only that last fetch counts.
  std::string big_sha = recmodel::sha256_hex(big);
  t::write_text(staging.current / "parts" / (big_sha + ".part"), std::string(big.size(), 'w'));
  t::write_text(staging.current / "parts" / (big_sha + ".log"), "recmodel-pull-chunks 65536 300000\n0\n1\n");
  auto result = r.run(cat({"--json", "pull", "m/1", "--from", "nas", "--out", r.out().string()}, kSmallParts));
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  auto document = nlohmann::json::parse(result.out);
  CHECK(document["transferred_bytes"] == big.size());
  CHECK(document["transferred_objects"] == 1);
  CHECK(tree(r.out()) == std::map<std::string, std::string>{{"big.bin", big}});
  fs::remove_all(r.out());
  auto human = r.run({"pull", "m/1", "--from", "nas", "--out", r.out().string()});
  REQUIRE(human.exit_code == 0);
  CHECK(human.out.find(": 1 file, 300.0 kB, SHA-256 verified") != std::string::npos);
  CHECK(human.out.find("downloaded 300.0 kB (1 object)\n") != std::string::npos);
}
