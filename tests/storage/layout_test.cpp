// The storage pieces that need no server: XML, manifests and path checks, remote URLs and the
// config file, AWS profiles, sizes, and whole transfers against a file:// remote.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/files.h"
#include "common/text.h"
#include "storage/aws_config.h"
#include "storage/hashing.h"
#include "storage/manifest.h"
#include "storage/object_store.h"
#include "storage/remote_config.h"
#include "storage/remote_ref.h"
#include "storage/transfer.h"
#include "storage/xml.h"
#include "tests/support.h"

namespace s = recmodel::storage;
namespace t = recmodel::testing;
using recmodel::ExitCode;
namespace fs = std::filesystem;

namespace {

// Returns the exit code of the Error `body` throws, or 0.
template <typename F>
int code_of(F&& body, std::string* message = nullptr) {
  try {
    body();
  } catch (const recmodel::Error& e) {
    if (message) *message = e.what();
    return static_cast<int>(e.code());
  }
  return 0;
}

class EnvVar {
 public:
  EnvVar(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    if (old) old_ = old;
    had_ = old != nullptr;
    setenv(name, value.c_str(), 1);
  }
  ~EnvVar() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_;
};

}  // namespace

TEST_CASE("parse_xml reads S3 listings and errors, entities included, and rejects broken documents") {
  auto root = s::parse_xml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<IsTruncated>false</IsTruncated><Contents><Key>a&amp;b &lt;c&gt; &#233;&#x1F600;</Key><Size>12</Size></Contents>"
      "<Contents><Key>x</Key><Size>0</Size></Contents><Empty/></ListBucketResult>",
      "test");
  CHECK(root.name == "ListBucketResult");
  REQUIRE(root.all("Contents").size() == 2);
  CHECK(root.all("Contents")[0]->child_text("Key") == "a&b <c> \xC3\xA9\xF0\x9F\x98\x80");
  CHECK(root.child_text("IsTruncated") == "false");
  CHECK(code_of([] { s::parse_xml("<a><b></a>", "test"); }) == 5);
  CHECK(code_of([] { s::parse_xml("<a>&bogus;</a>", "test"); }) == 5);
  CHECK(code_of([] { s::parse_xml("<a></a><b/>", "test"); }) == 5);
  CHECK(s::xml_escape("\"a&b'<>") == "&quot;a&amp;b&apos;&lt;&gt;");
}

TEST_CASE("validate_relative_path refuses anything that could land outside --out") {
  for (const char* bad : {"../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/./b", "a\\b", "", "a/", ".."}) {
    CAPTURE(bad);
    CHECK(code_of([&] { s::validate_relative_path(bad, "m"); }) == 3);
  }
  for (const char* good : {"config.json", "onnx/model.onnx", "a/b/c.d", "..hidden", "x..y"}) {
    CAPTURE(good);
    CHECK(code_of([&] { s::validate_relative_path(good, "m"); }) == 0);
  }
  CHECK(code_of([] { s::validate_relative_path(std::string("a\0b", 3), "m"); }) == 3);
}

TEST_CASE("validate_relative_path refuses control characters like '..', and its message escapes them") {
  for (std::string bad : {"esc\x1b[31m", "new\nline", "tab\tx", "del\x7f", "cr\r/x", "c1\xc2\x9b" "2J", "bell\x07"}) {
    CAPTURE(bad);
    std::string message;
    CHECK(code_of([&] { s::validate_relative_path(bad, "m"); }, &message) == 3);
    CHECK(message.find("(a control character)") != std::string::npos);
    for (char c : message) CHECK(static_cast<unsigned char>(c) >= 0x20);
    CHECK(message.find('\x7f') == std::string::npos);
    CHECK(message.find("\xc2\x9b") == std::string::npos);
  }
  CHECK(recmodel::quoted_for_message("a\x1b[2Jb\xc2\x9b") == "'a\\x1b[2Jb\\u009b'");
  CHECK(recmodel::quoted_for_message(std::string(500, 'x')).size() < 130);
  CHECK(code_of([] { s::validate_relative_path(std::string(300, 'a'), "m"); }) == 3);
  CHECK(code_of([] { s::validate_relative_path(std::string(5000, 'a'), "m"); }) == 3);
  CHECK(code_of([] { s::validate_relative_path("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt", "m"); }) == 0);
}

TEST_CASE("manifests round-trip through JSON and parsing is strict") {
  t::TempDir dir;
  t::write_text(dir / "model/config.json", "{}");
  t::write_text(dir / "model/onnx/model.onnx", t::random_bytes(5000, 1));
  t::write_text(dir / "model/copy.bin", t::random_bytes(5000, 1));
  s::Manifest manifest = s::build_manifest(dir / "model", 2);
  manifest.name = "intent";
  manifest.version = "3";
  REQUIRE(manifest.files.size() == 3);
  CHECK(manifest.files[0].path == "config.json");
  CHECK(manifest.files[2].path == "onnx/model.onnx");
  CHECK(manifest.files[1].sha256 == manifest.files[2].sha256);
  CHECK(manifest.files[0].sha256 == recmodel::sha256_hex("{}"));
  CHECK(manifest.total_size() == 10002);
  std::string text = s::manifest_to_json(manifest);
  s::Manifest back = s::parse_manifest(text, "m.json");
  CHECK(back.same_contents(manifest));
  CHECK(back.name == "intent");
  CHECK(s::object_key(manifest.files[0].sha256) ==
        "objects/sha256/" + manifest.files[0].sha256.substr(0, 2) + "/" + manifest.files[0].sha256.substr(2));
  CHECK(s::manifest_key("intent", "3") == "models/intent/3.json");

  std::string message;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string copy = text;
    copy.replace(copy.find(from), from.size(), to);
    return copy;
  };
  CHECK(code_of([&] { s::parse_manifest(with("\"format_version\": 1", "\"format_version\": 9"), "m"); }, &message) == 3);
  CHECK(message.find("newer recmodel") != std::string::npos);
  CHECK(code_of([&] { s::parse_manifest(with("\"onnx/model.onnx\"", "\"../evil\""), "m"); }, &message) == 3);
  CHECK(message.find("unsafe path '../evil'") != std::string::npos);
  CHECK(code_of([&] { s::parse_manifest(with("\"onnx/model.onnx\"", "\"config.json\""), "m"); }) == 3);
  CHECK(code_of([&] { s::parse_manifest(with("\"onnx/model.onnx\"", "\"config.json/x\""), "m"); }) == 3);
  CHECK(code_of([&] { s::parse_manifest(with(manifest.files[0].sha256, "abc"), "m"); }) == 3);
  CHECK(code_of([&] { s::parse_manifest("{\"format\": \"x\"}", "m"); }) == 3);
  CHECK(code_of([&] { s::parse_manifest("not json", "m"); }) == 3);

  // One SHA-256 listed with two sizes: one entry lies, so the manifest is refused naming both.
  std::string copy_size = "\"size\": 5000,\n      \"sha256\": \"" + manifest.files[1].sha256;
  REQUIRE(text.find(copy_size) != std::string::npos);
  CHECK(code_of([&] { s::parse_manifest(with(copy_size, "\"size\": 5000000000000,\n      \"sha256\": \"" +
                                                          manifest.files[1].sha256),
                                         "m"); },
                &message) == 3);
  CHECK(message.find("'copy.bin' (5000000000000 bytes) and 'onnx/model.onnx' (5000 bytes) list the same SHA-256") !=
        std::string::npos);
  // Name and version must be key parts, other fields free of control characters; nothing echoed raw.
  CHECK(code_of([&] { s::parse_manifest(with("\"name\": \"intent\"", "\"name\": \"in/../x\""), "m"); }) == 3);
  CHECK(code_of([&] { s::parse_manifest(with("\"version\": \"3\"", "\"version\": \"3\\u001b[2J\""), "m"); },
                &message) == 3);
  CHECK(message.find('\x1b') == std::string::npos);
  CHECK(code_of([&] { s::parse_manifest(with("\"classification\": \"\"", "\"classification\": \"\\n\""), "m"); }) ==
        3);
  CHECK(code_of([&] { s::parse_manifest(with(manifest.files[0].sha256, "\\u001b[2J"), "m"); }, &message) == 3);
  CHECK(message.find('\x1b') == std::string::npos);
  // Nesting is bounded (no stack overflow), and so is the size.
  CHECK(code_of([&] { s::parse_manifest(std::string(100000, '[') + std::string(100000, ']'), "m"); }) == 3);
  CHECK(code_of([&] { s::parse_manifest(std::string(s::kMaxManifestBytes + 1, ' '), "m"); }) == 3);
}

TEST_CASE("remote URLs are checked and the config file keeps other tables") {
  auto spec = s::parse_remote_url("private", "s3://team-models/bert/intent/");
  CHECK(spec.kind == s::RemoteKind::s3);
  CHECK(spec.bucket == "team-models");
  CHECK(spec.prefix == "bert/intent");
  auto file = s::parse_remote_url("nas", "file:///mnt/nas/models%20v2/");
  CHECK(file.kind == s::RemoteKind::file);
  CHECK(file.path == "/mnt/nas/models v2");
  for (const char* bad : {"s3://AB/x", "s3://ab", "s3://key:secret@bucket/x", "file://relative/x", "http://x/y",
                          "s3://bucket/a//b", "s3://bucket/../b"}) {
    CAPTURE(bad);
    std::string message;
    CHECK(code_of([&] { s::parse_remote_url("r", bad); }, &message) == 2);
    CHECK(message.find("secret") == std::string::npos);
  }
  CHECK(code_of([] { s::validate_remote_name("bad name"); }) == 2);
  CHECK(code_of([] { s::validate_remote_name("-x"); }) == 2);

  t::TempDir dir;
  fs::path config = dir / "config.toml";
  t::write_text(config, "[other]\nkeep = 1\n");
  spec.endpoint = "http://127.0.0.1:7480";
  spec.path_style = true;
  spec.is_public = true;
  s::save_remotes(config, {spec, file});
  auto remotes = s::load_remotes(config);
  REQUIRE(remotes.size() == 2);
  CHECK(remotes[0].name == "nas");  // tables are kept in name order
  CHECK(remotes[1].endpoint == "http://127.0.0.1:7480");
  CHECK(remotes[1].path_style == std::optional<bool>(true));
  CHECK(remotes[1].is_public);
  CHECK(t::read_text(config).find("keep = 1") != std::string::npos);
  std::string message;
  CHECK(code_of([&] { s::find_remote(remotes, "privat", config); }, &message) == 4);
  CHECK(message.find("did you mean 'private'") != std::string::npos);

  t::write_text(config, "[remotes.x]\nurl = \"s3://bucket\"\npublik = true\n");
  CHECK(code_of([&] { s::load_remotes(config); }, &message) == 3);
  CHECK(message.find("config.toml:3:10: remote 'x': unknown key 'publik'") != std::string::npos);
  t::write_text(config, "[remotes.x]\nurl = \"s3://bucket\"\npublic = \"yes\"\n");
  CHECK(code_of([&] { s::load_remotes(config); }, &message) == 3);
  t::write_text(config, "[remotes.x\n");
  CHECK(code_of([&] { s::load_remotes(config); }, &message) == 3);
  CHECK(message.find("config.toml:1:") != std::string::npos);
  CHECK(s::load_remotes(dir / "missing.toml").empty());
}

TEST_CASE("AWS settings: environment, then profiles in ~/.aws, explicit profile first") {
  t::TempDir dir;
  t::write_text(dir / "credentials",
                "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = defaultsecret\n"
                "[dev]\naws_access_key_id=DEVKEY\naws_secret_access_key=devsecret\naws_session_token = tok\n");
  t::write_text(dir / "config", "[profile dev]\nregion = eu-west-3\ns3 =\n  addressing_style = path\n"
                                "endpoint_url = http://dev:9000\n[default]\nregion = us-west-2\n");
  EnvVar credentials("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").string());
  EnvVar config("AWS_CONFIG_FILE", (dir / "config").string());
  unsetenv("AWS_REGION");
  unsetenv("AWS_DEFAULT_REGION");
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_S3");
  unsetenv("AWS_PROFILE");
  {
    EnvVar id("AWS_ACCESS_KEY_ID", "ENVKEY");
    EnvVar secret("AWS_SECRET_ACCESS_KEY", "envsecret");
    auto env = s::resolve_aws_settings("");
    REQUIRE(env.credentials);
    CHECK(env.credentials->access_key_id == "ENVKEY");
    CHECK(env.region == "us-west-2");
    auto dev = s::resolve_aws_settings("dev");  // an explicit profile wins over the environment
    REQUIRE(dev.credentials);
    CHECK(dev.credentials->access_key_id == "DEVKEY");
    CHECK(dev.credentials->session_token == "tok");
    CHECK(dev.region == "eu-west-3");
    CHECK(dev.endpoint == "http://dev:9000");
    EnvVar region("AWS_REGION", "ap-south-1");
    EnvVar endpoint("AWS_ENDPOINT_URL_S3", "http://s3-only:1");
    CHECK(s::resolve_aws_settings("dev").region == "ap-south-1");
    CHECK(s::resolve_aws_settings("dev").endpoint == "http://s3-only:1");
  }
  auto fallback = s::resolve_aws_settings("");
  REQUIRE(fallback.credentials);
  CHECK(fallback.credentials->access_key_id == "DEFAULTKEY");
  std::string message;
  CHECK(code_of([] { s::resolve_aws_settings("nope"); }, &message) == 5);
  CHECK(message.find("'nope'") != std::string::npos);
  CHECK(message.find("devsecret") == std::string::npos);
}

TEST_CASE("parse_byte_size takes decimal and binary units and nothing else") {
  CHECK(s::parse_byte_size("65536") == std::optional<uint64_t>(65536));
  CHECK(s::parse_byte_size("64KiB") == std::optional<uint64_t>(65536));
  CHECK(s::parse_byte_size("8MiB") == std::optional<uint64_t>(8 << 20));
  CHECK(s::parse_byte_size("5MB") == std::optional<uint64_t>(5000000));
  CHECK(s::parse_byte_size("1GiB") == std::optional<uint64_t>(1ull << 30));
  for (const char* bad : {"", "abc", "8 MiB", "8mib", "-1", "1.5MiB", "8M"}) CHECK_FALSE(s::parse_byte_size(bad));
  CHECK(s::human_bytes(999) == "999 B");
  CHECK(s::human_bytes(12345678) == "12.3 MB");
}

TEST_CASE("remote references: NAME/VERSION and the models:/ forms") {
  auto plain = s::parse_remote_ref("intent/3");
  CHECK(plain.name == "intent");
  CHECK(plain.version == "3");
  CHECK_FALSE(plain.registry_uri);
  auto alias = s::parse_remote_ref("models:/intent@production");
  CHECK(alias.alias == "production");
  CHECK(alias.text() == "models:/intent@production");
  CHECK(s::parse_remote_ref("models:/intent/latest").latest);
  for (const char* bad : {"intent", "intent@prod", "a/b/c", "models:/intent", "../x/1", "a/..", "models:/x@"}) {
    CAPTURE(bad);
    CHECK(code_of([&] { s::parse_remote_ref(bad); }) == 2);
  }
}

TEST_CASE("file remotes: upload only what is missing, download verified, resume, corruption is exit 6") {
  t::TempDir dir;
  t::write_text(dir / "model/config.json", "{\"a\": 1}");
  t::write_text(dir / "model/weights.bin", t::random_bytes(300000, 2));
  t::write_text(dir / "model/sub/small.txt", "hello");
  s::Manifest manifest = s::build_manifest(dir / "model", 1);
  s::RemoteSpec spec = s::parse_remote_url("nas", "file://" + (dir / "remote").string());
  auto store = s::open_store(spec, {});
  s::TransferOptions options;
  options.jobs = 3;
  options.part_size = 65536;
  options.multipart_threshold = 100000;  // weights.bin goes in 5 parts

  auto first = s::upload_objects(dir / "model", manifest, *store, options, {});
  CHECK(first.objects == 3);
  CHECK(first.transferred_objects == 3);
  CHECK(first.transferred_bytes == manifest.total_size());
  auto second = s::upload_objects(dir / "model", manifest, *store, options, {});
  CHECK(second.transferred_objects == 0);
  CHECK(second.skipped_objects == 3);

  fs::path staging = dir / "staging";
  auto down = s::download_files(*store, manifest, staging, options, {});
  CHECK(down.transferred_bytes == manifest.total_size());
  CHECK(t::read_text(s::pull_tree(staging) / "weights.bin") == t::read_text(dir / "model/weights.bin"));
  CHECK(t::read_text(s::pull_tree(staging) / "sub/small.txt") == "hello");

  // An interrupted download: chunks 0 and 2 are on disk and logged; the rest is fetched.
  fs::remove_all(staging);
  fs::create_directories(staging / "parts");
  std::string weights = t::read_text(dir / "model/weights.bin");
  const std::string weights_sha = recmodel::sha256_hex(weights);
  {
    std::ofstream part(staging / "parts" / (weights_sha + ".part"), std::ios::binary);
    std::string image(weights.size(), '\0');
    image.replace(0, 65536, weights.substr(0, 65536));
    image.replace(131072, 65536, weights.substr(131072, 65536));
    part << image;
    std::ofstream log(staging / "parts" / (weights_sha + ".log"));
    log << "recmodel-pull-chunks 65536 300000\n0\n2\n";
  }
  auto resumed = s::download_files(*store, manifest, staging, options, {});
  CHECK(resumed.resumed_parts == 2);
  CHECK(resumed.resumed_bytes == 131072);
  CHECK(t::read_text(s::pull_tree(staging) / "weights.bin") == weights);
  CHECK(fs::is_empty(staging / "parts"));

  // Resumed chunks that lie (logged, but holding other bytes) are caught by the hash and fetched again.
  fs::remove_all(staging);
  fs::create_directories(staging / "parts");
  {
    std::ofstream part(staging / "parts" / (weights_sha + ".part"), std::ios::binary);
    part << std::string(weights.size(), 'x');
    std::ofstream log(staging / "parts" / (weights_sha + ".log"));
    log << "recmodel-pull-chunks 65536 300000\n0\n1\n99999999999999999999\n2\n";
  }
  auto lied = s::download_files(*store, manifest, staging, options, {});
  CHECK(lied.resumed_parts == 0);
  CHECK(t::read_text(s::pull_tree(staging) / "weights.bin") == weights);

  // A corrupted object: exit 6, and neither the file nor its partial copy stays behind.
  std::string key = s::object_key(manifest.files[2].sha256);  // weights.bin
  REQUIRE(manifest.files[2].path == "weights.bin");
  std::string corrupted = weights;
  corrupted[250000] ^= 1;
  t::write_text(dir / "remote" / key, corrupted);
  fs::path fresh = dir / "fresh";
  std::string message;
  CHECK(code_of([&] { s::download_files(*store, manifest, fresh, options, {}); }, &message) == 6);
  CHECK(message.find("checksum mismatch") != std::string::npos);
  CHECK(message.find("weights.bin") != std::string::npos);
  CHECK_FALSE(fs::exists(s::pull_tree(fresh) / "weights.bin"));
  CHECK(fs::is_empty(fresh / "parts"));

  // copy_objects between two file remotes refuses to spread the corrupt object.
  s::RemoteSpec other = s::parse_remote_url("other", "file://" + (dir / "other").string());
  auto other_store = s::open_store(other, {});
  CHECK(code_of([&] { s::copy_objects(*store, *other_store, manifest, options, {}); }, &message) == 6);
  CHECK_FALSE(other_store->size_of(key));
  t::write_text(dir / "remote" / key, weights);
  auto copied = s::copy_objects(*store, *other_store, manifest, options, {});
  CHECK(copied.transferred_bytes > 0);
  CHECK(t::read_text(dir / "other" / key) == weights);
}

TEST_CASE("a file changed between hashing and upload is exit 6 and nothing is stored") {
  t::TempDir dir;
  t::write_text(dir / "model/weights.bin", t::random_bytes(200000, 3));
  s::Manifest manifest = s::build_manifest(dir / "model", 1);
  t::write_text(dir / "model/weights.bin", t::random_bytes(200000, 4));
  auto store = s::open_store(s::parse_remote_url("nas", "file://" + (dir / "remote").string()), {});
  s::TransferOptions options;
  options.part_size = 65536;
  options.multipart_threshold = 65536;
  std::string message;
  CHECK(code_of([&] { s::upload_objects(dir / "model", manifest, *store, options, {}); }, &message) == 6);
  CHECK(message.find("changed while pushing") != std::string::npos);
  CHECK(store->list("objects/").empty());
}

TEST_CASE("md5_hex and Sha256Stream agree with known digests") {
  CHECK(s::md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  s::Sha256Stream sha;
  sha.update("ab");
  sha.update("c");
  CHECK(sha.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
