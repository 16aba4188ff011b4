// `recmodel push/pull/sync/ls` against real S3 servers: throw-away single-node Ceph RADOS
// Gateway clusters on loopback (tests/storage/rgw_fixture.sh), one standing for the private
// cloud and one for the public cloud, plus a fault-injecting proxy (tests/storage/fault_proxy.py).
// The clusters start once per process; each SUBCASE works under its own key prefix.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "storage/object_store.h"
#include "storage/remote_config.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace s = recmodel::storage;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = RECMODEL_SOURCE_DIR;

std::string shell(const std::string& command, int* status = nullptr) {
  std::string out;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int code = pclose(pipe);
  if (status) *status = WIFEXITED(code) ? WEXITSTATUS(code) : -1;
  return out;
}

std::string unique(const std::string& stem) {
  static std::mt19937 random{std::random_device{}()};
  return stem + "-" + std::to_string(random() % 1000000);
}

bool have_ceph() { return fs::exists("/usr/bin/radosgw") && fs::exists("/usr/bin/ceph-mon") && fs::exists("/usr/bin/ceph-osd"); }

// One throw-away Ceph cluster with a gateway, stopped when the process ends.
class Cluster {
 public:
  explicit Cluster(const std::string& name) {
    dir_ = fs::temp_directory_path() / unique("recmodel-rgw-" + name);
    int status = -1;
    std::string out = shell("OWNER_PID=" + std::to_string(getpid()) + " " + script() + " start " + dir_.string() +
                                " 2>&1",
                            &status);
    if (status != 0) throw std::runtime_error("rgw_fixture.sh start failed:\n" + out);
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  ~Cluster() { shell(script() + " stop " + dir_.string() + " >/dev/null 2>&1"); }
  std::string endpoint() const { return env_.at("RGW_ENDPOINT"); }
  std::string port() const { return env_.at("RGW_PORT"); }
  std::string access_key() const { return env_.at("AK"); }
  std::string secret() const { return env_.at("SK"); }
  void kill_gateway() { shell(script() + " kill-rgw " + dir_.string() + " 2>&1"); }
  void start_gateway() {
    int status = -1;
    std::string out = shell(script() + " start-rgw " + dir_.string() + " 2>&1", &status);
    REQUIRE_MESSAGE(status == 0, out);
  }

 private:
  static std::string script() { return (kSource / "tests/storage/rgw_fixture.sh").string(); }
  fs::path dir_;
  std::map<std::string, std::string> env_;
};

Cluster& private_cloud() {
  static Cluster cluster("private");
  return cluster;
}
Cluster& public_cloud() {
  static Cluster cluster("public");
  return cluster;
}

// The fault-injecting proxy in front of a gateway.
class Proxy {
 public:
  Proxy(const Cluster& cluster, const std::string& flags) : stats_(fs::temp_directory_path() / unique("proxy-stats")) {
    fs::path port_file = fs::temp_directory_path() / unique("proxy-port");
    std::string command = "/usr/bin/python3 " + (kSource / "tests/storage/fault_proxy.py").string() + " 127.0.0.1:" +
                          cluster.port() + " " + flags + " --stats " + stats_.string() + " > " + port_file.string() +
                          " 2>/dev/null & echo $!";
    pid_ = std::stoi(shell(command));
    for (int i = 0; i < 200 && port_.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::string text = fs::exists(port_file) ? t::read_text(port_file) : "";
      if (text.rfind("PORT=", 0) == 0 && text.back() == '\n') port_ = text.substr(5, text.size() - 6);
    }
    fs::remove(port_file);
    REQUIRE_MESSAGE(!port_.empty(), "the fault proxy did not start");
  }
  ~Proxy() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove(stats_, ec);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + port_; }
  // Returns the proxy's counters so far (requests, failed, dropped, redirected).
  std::map<std::string, int> counts() const {
    std::map<std::string, int> counts;
    std::ifstream in(stats_);
    for (std::string line; std::getline(in, line);)
      if (line.find('=') != std::string::npos)
        counts[line.substr(0, line.find('='))] = std::stoi(line.substr(line.find('=') + 1));
    return counts;
  }
  // Returns the counters after stopping the proxy.
  std::map<std::string, int> stop_and_count() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return counts();
  }
  // Waits (up to two minutes) until the proxy has seen `requests` requests.
  void wait_for_requests(int requests) const {
    for (int i = 0; i < 12000; ++i) {
      auto c = counts();
      if (c.count("requests") && c["requests"] >= requests) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  int pid_ = -1;
  std::string port_;
  fs::path stats_;
};

struct World {
  t::TempDir dir;
  std::vector<std::string> env;
  std::string prefix = unique("t");
  explicit World(const Cluster& cluster) {
    env = {"RECMODEL_CONFIG=" + (dir / "config.toml").string(), "RECMODEL_REGISTRY=" + (dir / "registry.db").string(),
           "AWS_ACCESS_KEY_ID=" + cluster.access_key(), "AWS_SECRET_ACCESS_KEY=" + cluster.secret(),
           "AWS_SHARED_CREDENTIALS_FILE=" + (dir / "none").string(), "AWS_CONFIG_FILE=" + (dir / "none").string(),
           "AWS_REGION=us-east-1"};
    t::write_text(dir / "model/config.json", "{\"num_labels\": 3}");
    t::write_text(dir / "model/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    t::write_text(dir / "model/model.safetensors", t::random_bytes(3 << 20, 11));
  }
  // Runs recmodel; `extra` NAME=VALUE entries replace those of `env` with the same name.
  t::RunResult run(std::vector<std::string> args, std::vector<std::string> extra = {}) {
    std::vector<std::string> all;
    for (const auto& entry : env) {
      std::string name = entry.substr(0, entry.find('=') + 1);
      bool replaced = std::any_of(extra.begin(), extra.end(), [&](const auto& e) { return e.rfind(name, 0) == 0; });
      if (!replaced) all.push_back(entry);
    }
    all.insert(all.end(), extra.begin(), extra.end());
    return t::run_recmodel(args, "", all);
  }
  nlohmann::json json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto result = run(args);
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
    return nlohmann::json::parse(result.out);
  }
  void add(const std::string& name, const std::string& bucket, const std::string& endpoint,
           std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {"remote", "add", name, "s3://" + bucket + "/" + prefix, "--endpoint", endpoint,
                                     "--create-bucket"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto result = run(args);
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
  }
  std::string model() const { return (dir / "model").string(); }
  std::vector<std::string> small_parts() const {
    return {"--multipart-threshold", "256KiB", "--part-size", "128KiB", "--jobs", "4"};
  }
};

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).generic_string()] = t::read_text(entry.path());
  return files;
}

}  // namespace

TEST_CASE("push, pull, sync and ls against Ceph RGW: the private and the public cloud") {
  REQUIRE_MESSAGE(have_ceph(), "Ceph (radosgw, ceph-mon, ceph-osd) is not installed (scripts/install-deps.sh)");
  Cluster& priv = private_cloud();
  Cluster& pub = public_cloud();
  World w(priv);
  w.add("priv", "models-private", priv.endpoint());
  w.add("pub", "models-public", pub.endpoint(), {"--public"});

  SUBCASE("multipart push with parallel parts, verified pull, and a second version moving only its changes") {
    auto pushed = w.json(cat({"push", w.model(), "--to", "priv", "--name", "intent", "--version", "1"}, w.small_parts()));
    CHECK(pushed["transferred_objects"] == 3);
    CHECK(pushed["transferred_bytes"] == pushed["bytes"]);
    auto pulled = w.json(cat({"pull", "intent/1", "--from", "priv", "--out", (w.dir / "back").string()}, w.small_parts()));
    CHECK(pulled["transferred_bytes"] == pushed["bytes"]);
    CHECK(tree(w.dir / "back") == tree(w.dir / "model"));

    // 90% shared: a new config.json and a new small file; the 3 MiB weights stay.
    t::write_text(w.dir / "model/config.json", "{\"num_labels\": 4}");
    t::write_text(w.dir / "model/extra.bin", t::random_bytes(300000, 12));
    auto second = w.json(cat({"push", w.model(), "--to", "priv", "--name", "intent", "--version", "2"}, w.small_parts()));
    CHECK(second["transferred_objects"] == 2);
    CHECK(second["transferred_bytes"] == fs::file_size(w.dir / "model/config.json") + 300000);
    CHECK(second["skipped_objects"] == 2);
    auto listing = w.json({"ls", "priv"});
    REQUIRE(listing["versions"].size() == 2);
    CHECK(listing["versions"][0]["name"] == "intent");
    auto table = w.run({"ls", "priv", "intent/2"});
    CHECK(table.out.find("intent/2 on priv (s3://models-private/" + w.prefix + "): 4 files") == 0);
  }

  SUBCASE("virtual-hosted addressing (BUCKET.localhost) and single-part objects") {
    auto result = w.run({"remote", "add", "vhost", "s3://models-private/" + w.prefix + "-v", "--endpoint",
                         "http://localhost:" + priv.port()});
    REQUIRE(result.exit_code == 0);
    auto pushed = w.json({"push", w.model(), "--to", "vhost", "--name", "m", "--version", "1"});
    CHECK(pushed["transferred_objects"] == 3);
    auto pulled = w.json({"pull", "m/1", "--from", "vhost", "--out", (w.dir / "v").string()});
    CHECK(tree(w.dir / "v") == tree(w.dir / "model"));
    // The same objects are visible path-style at the IP address.
    result = w.run({"remote", "add", "path", "s3://models-private/" + w.prefix + "-v", "--endpoint", priv.endpoint(),
                    "--path-style"});
    REQUIRE(result.exit_code == 0);
    CHECK(w.json({"ls", "path", "m"})["versions"].size() == 1);
  }

  SUBCASE("sync streams a version from the private to the public cloud; private versions are refused") {
    REQUIRE(w.run(cat({"push", w.model(), "--to", "priv", "--name", "shared", "--version", "1"}, w.small_parts()))
                .exit_code == 0);
    auto synced = w.json(cat({"sync", "shared/1", "--from", "priv", "--to", "pub"}, w.small_parts()));
    CHECK(synced["transferred_objects"] == 3);
    auto pulled = w.json({"pull", "shared/1", "--from", "pub", "--out", (w.dir / "p").string()});
    CHECK(tree(w.dir / "p") == tree(w.dir / "model"));

    REQUIRE(w.run({"push", w.model(), "--to", "priv", "--name", "secret", "--version", "1", "--private"}).exit_code == 0);
    auto refused = w.run({"sync", "secret/1", "--from", "priv", "--to", "pub"});
    CHECK(refused.exit_code == 5);
    CHECK(refused.err.find("refusing to put secret/1 on remote 'pub'") != std::string::npos);
    auto direct = w.run({"push", w.model(), "--to", "pub", "--name", "secret", "--version", "1", "--private"});
    CHECK(direct.exit_code == 5);
    CHECK(w.json({"ls", "pub"})["versions"].size() == 1);
  }

  SUBCASE("a wrong secret is exit 5 'authentication failed' and the secret is never shown") {
    const std::string wrong = "WrongSecret-do-not-print-0123456789";
    for (auto args : std::vector<std::vector<std::string>>{
             {"push", w.model(), "--to", "priv", "--name", "m", "--version", "1", "--retries", "0"},
             {"pull", "m/1", "--from", "priv", "--out", (w.dir / "x").string(), "--retries", "0"},
             {"ls", "priv"}}) {
      CAPTURE(args[0]);
      auto result = w.run(args, {"AWS_SECRET_ACCESS_KEY=" + wrong});
      CHECK(result.exit_code == 5);
      CHECK(result.err.find("authentication failed") != std::string::npos);
      CHECK(result.err.find("HTTP 403") != std::string::npos);  // HEAD answers carry no error code
      if (args[0] == "ls") CHECK(result.err.find("SignatureDoesNotMatch") != std::string::npos);
      CHECK(result.err.find(wrong) == std::string::npos);
      CHECK(result.out.find(wrong) == std::string::npos);
      CHECK(result.err.find(priv.secret()) == std::string::npos);
      CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    }
    auto unknown_key = w.run({"ls", "priv"}, {"AWS_ACCESS_KEY_ID=NOSUCHKEY"});
    CHECK(unknown_key.exit_code == 5);
    CHECK(unknown_key.err.find("authentication failed") != std::string::npos);
    auto none = w.run({"ls", "priv"}, {"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="});
    CHECK(none.exit_code == 5);
    CHECK(none.err.find("no AWS credentials") != std::string::npos);
  }

  SUBCASE("an object corrupted on the server is exit 6 and nothing is written") {
    REQUIRE(w.run(cat({"push", w.model(), "--to", "priv", "--name", "c", "--version", "1"}, w.small_parts()))
                .exit_code == 0);
    std::string weights = t::read_text(w.dir / "model/model.safetensors");
    std::string sha = recmodel::sha256_hex(weights);
    weights[100000] ^= 1;
    s::RemoteSpec spec = s::parse_remote_url("priv", "s3://models-private/" + w.prefix);
    spec.endpoint = priv.endpoint();
    setenv("AWS_ACCESS_KEY_ID", priv.access_key().c_str(), 1);
    setenv("AWS_SECRET_ACCESS_KEY", priv.secret().c_str(), 1);
    auto store = s::open_store(spec, {});
    store->write("objects/sha256/" + sha.substr(0, 2) + "/" + sha.substr(2), weights, "");
    for (bool parts : {false, true}) {
      CAPTURE(parts);
      auto args = std::vector<std::string>{"pull", "c/1", "--from", "priv", "--out", (w.dir / "c").string()};
      auto result = w.run(parts ? cat(args, w.small_parts()) : args);
      CHECK(result.exit_code == 6);
      CHECK(result.err.find("checksum mismatch: s3://models-private/" + w.prefix + "/objects/sha256/") !=
            std::string::npos);
      CHECK_FALSE(fs::exists(w.dir / "c"));
    }
  }

  SUBCASE("a missing bucket is exit 4, a missing version exit 4") {
    REQUIRE(w.run({"remote", "add", "nobucket", "s3://no-such-bucket-here", "--endpoint", priv.endpoint()}).exit_code ==
            0);
    auto result = w.run({"ls", "nobucket"});
    CHECK(result.exit_code == 4);
    CHECK(result.err.find("bucket 'no-such-bucket-here' does not exist") != std::string::npos);
    auto missing = w.run({"pull", "nope/1", "--out", (w.dir / "n").string()});
    CHECK(missing.exit_code == 4);
    CHECK(missing.err.find("nope/1 is on none of the remotes ('nobucket', 'priv', 'pub'); 'recmodel ls REMOTE' lists what each has") != std::string::npos);
  }

  SUBCASE("region discovery: a redirect naming the bucket's region is followed and re-signed") {
    Proxy proxy(priv, "--redirect-region eu-test-1");
    REQUIRE(w.run({"remote", "add", "far", "s3://models-private/" + w.prefix + "-far", "--endpoint", proxy.endpoint(),
                   "--region", "us-east-1"})
                .exit_code == 0);
    auto pushed = w.run({"-v", "push", w.model(), "--to", "far", "--name", "r", "--version", "1"});
    CHECK(pushed.exit_code == 0);
    CHECK(pushed.err.find("is in region eu-test-1, not us-east-1") != std::string::npos);
    auto counts = proxy.stop_and_count();
    CHECK(counts["redirected"] >= 1);
  }
}

TEST_CASE("faults: a flaky endpoint, and a server killed in the middle of a push and of a pull") {
  REQUIRE_MESSAGE(have_ceph(), "Ceph (radosgw, ceph-mon, ceph-osd) is not installed (scripts/install-deps.sh)");
  Cluster& cluster = private_cloud();
  World w(cluster);
  w.add("direct", "models-faults", cluster.endpoint());

  SUBCASE("503 SlowDown and dropped connections are retried with backoff and the transfer completes") {
    Proxy proxy(cluster, "--fail-every 4 --drop-every 7");
    REQUIRE(w.run({"remote", "add", "flaky", "s3://models-faults/" + w.prefix, "--endpoint", proxy.endpoint()})
                .exit_code == 0);
    auto pushed = w.json(cat({"push", w.model(), "--to", "flaky", "--name", "f", "--version", "1", "--retries", "8"},
                             w.small_parts()));
    CHECK(pushed["transferred_bytes"] == pushed["bytes"]);
    auto pulled = w.json(cat({"pull", "f/1", "--from", "flaky", "--out", (w.dir / "f").string(), "--retries", "8"},
                             w.small_parts()));
    CHECK(tree(w.dir / "f") == tree(w.dir / "model"));
    auto counts = proxy.stop_and_count();
    CHECK(counts["failed"] >= 3);
    CHECK(counts["dropped"] >= 3);
    // What went through the flaky endpoint is whole on the server.
    auto direct = w.json({"pull", "f/1", "--from", "direct", "--out", (w.dir / "d").string()});
    CHECK(tree(w.dir / "d") == tree(w.dir / "model"));
  }

  SUBCASE("server killed mid push: exit 5; after a restart the push resumes from the uploaded parts") {
    Proxy proxy(cluster, "--delay-ms 120");
    REQUIRE(w.run({"remote", "add", "slow", "s3://models-faults/" + w.prefix, "--endpoint", proxy.endpoint()})
                .exit_code == 0);
    // The gateway dies once the transfer is well under way (about 12 of its 50 requests).
    std::thread killer([&] {
      proxy.wait_for_requests(proxy.counts()["requests"] + 12);
      cluster.kill_gateway();
    });
    auto args = cat({"push", w.model(), "--to", "slow", "--name", "k", "--version", "1", "--retries", "1",
                     "--multipart-threshold", "128KiB", "--part-size", "64KiB", "--jobs", "2"},
                    {});
    auto killed = w.run(args);
    killer.join();
    CHECK(killed.exit_code == 5);
    CHECK(killed.err.find("cannot reach") != std::string::npos);
    cluster.start_gateway();
    args.insert(args.begin(), "--json");
    auto resumed = w.run(args);
    REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
    auto document = nlohmann::json::parse(resumed.out);
    CHECK(document["resumed_parts"].get<int>() > 0);
    CHECK(document["transferred_bytes"].get<uint64_t>() < document["bytes"].get<uint64_t>());
    auto pulled = w.json({"pull", "k/1", "--from", "direct", "--out", (w.dir / "k").string()});
    CHECK(tree(w.dir / "k") == tree(w.dir / "model"));
  }

  SUBCASE("server killed mid pull: exit 5, no partial file at --out; after a restart the pull resumes") {
    REQUIRE(w.run({"push", w.model(), "--to", "direct", "--name", "p", "--version", "1"}).exit_code == 0);
    Proxy proxy(cluster, "--delay-ms 120");
    REQUIRE(w.run({"remote", "add", "slow", "s3://models-faults/" + w.prefix, "--endpoint", proxy.endpoint()})
                .exit_code == 0);
    // The gateway dies once the transfer is well under way (about 12 of its 50 requests).
    std::thread killer([&] {
      proxy.wait_for_requests(proxy.counts()["requests"] + 12);
      cluster.kill_gateway();
    });
    auto args = std::vector<std::string>{"pull", "p/1", "--from", "slow", "--out", (w.dir / "p").string(), "--retries",
                                         "1", "--multipart-threshold", "128KiB", "--part-size", "64KiB", "--jobs", "2"};
    auto killed = w.run(args);
    killer.join();
    CHECK(killed.exit_code == 5);
    CHECK(killed.err.find("cannot reach") != std::string::npos);
    CHECK_FALSE(fs::exists(w.dir / "p"));
    cluster.start_gateway();
    args.insert(args.begin(), "--json");
    auto resumed = w.run(args);
    REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
    auto document = nlohmann::json::parse(resumed.out);
    CHECK(document["resumed_bytes"].get<uint64_t>() > 0);
    CHECK(document["transferred_bytes"].get<uint64_t>() < document["bytes"].get<uint64_t>());
    CHECK(tree(w.dir / "p") == tree(w.dir / "model"));
  }

  SUBCASE("encrypted: a push and a pull killed mid transfer resume from their sealed parts") {
    REQUIRE(w.run({"remote", "keygen", (w.dir / "remote.key").string()}).exit_code == 0);
    const std::string key = (w.dir / "remote.key").string();
    w.add("sealed", "models-faults-enc", cluster.endpoint(), {"--encrypt", "--key-file", key, "--public"});
    Proxy proxy(cluster, "--delay-ms 120");
    REQUIRE(w.run({"remote", "add", "slow", "s3://models-faults-enc/" + w.prefix, "--endpoint", proxy.endpoint(),
                   "--encrypt", "--key-file", key, "--public"})
                .exit_code == 0);
    std::thread killer([&] {
      proxy.wait_for_requests(proxy.counts()["requests"] + 24);  // past the keyring, headers and small objects
      cluster.kill_gateway();
    });
    auto push = std::vector<std::string>{"push", w.model(), "--to", "slow", "--name", "e", "--version", "1", "--retries",
                                         "1", "--multipart-threshold", "128KiB", "--part-size", "64KiB", "--jobs", "2"};
    auto killed = w.run(push);
    killer.join();
    CHECK(killed.exit_code == 5);
    cluster.start_gateway();
    push.insert(push.begin(), "--json");
    auto resumed = w.run(push);
    REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
    CHECK(nlohmann::json::parse(resumed.out)["resumed_parts"].get<int>() > 0);

    std::thread pull_killer([&] {
      proxy.wait_for_requests(proxy.counts()["requests"] + 24);  // past the keyring, headers and small objects
      cluster.kill_gateway();
    });
    auto pull = std::vector<std::string>{"pull", "e/1", "--from", "slow", "--out", (w.dir / "e").string(), "--retries",
                                         "1", "--multipart-threshold", "128KiB", "--part-size", "64KiB", "--jobs", "2"};
    auto cut = w.run(pull);
    pull_killer.join();
    CHECK(cut.exit_code == 5);
    CHECK_FALSE(fs::exists(w.dir / "e"));
    cluster.start_gateway();
    pull.insert(pull.begin(), "--json");
    auto finished = w.run(pull);
    REQUIRE_MESSAGE(finished.exit_code == 0, finished.err);
    CHECK(nlohmann::json::parse(finished.out)["resumed_bytes"].get<uint64_t>() > 0);
    CHECK(tree(w.dir / "e") == tree(w.dir / "model"));
  }
}
