// Registry throughput and latency, through the library the CLI uses (process start-up, which
// is dominated by loading libtorch, is measured separately by registry_bench.sh):
//   register/s with a pre-hashed manifest, one process and P processes at once;
//   list and show latency with V versions of one model.
// LOCATION names the three registries it fills: a directory (DIR/single.db, DIR/multi.db,
// DIR/large.db) or a PostgreSQL URL prefix ending in '/' (URL/single, URL/multi, URL/large: three
// empty databases). Built and run by bench/registry_bench.sh.
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/error.h"
#include "registry/database.h"
#include "registry/registry.h"

namespace r = recmodel::registry;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds of this process so far: on a busy machine wall times inflate, CPU times do not.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// A manifest like a small BERT model directory's, hashes already known.
r::Manifest fake_manifest() {
  r::Manifest manifest;
  for (const char* path : {"config.json", "model.safetensors", "recmodel.json", "special_tokens_map.json",
                           "tokenizer.json", "tokenizer_config.json", "vocab.txt", "onnx/model.onnx"})
    manifest.files.push_back({path, 1000, std::string(64, 'a')});
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const r::FileEntry& a, const r::FileEntry& b) { return a.path < b.path; });
  return manifest;
}

r::RegisterRequest request(const std::string& name, const r::Manifest& manifest) {
  r::RegisterRequest request;
  request.name = name;
  request.path = "/models/" + name;
  request.manifest = manifest;
  request.metrics = {{"accuracy", 0.91}, {"f1_macro", 0.88}};
  request.params = {{"lr", 5e-05}, {"epochs", 3}};
  request.tags = {{"team", "search"}};
  return request;
}

r::RegistryOptions options() {
  r::RegistryOptions options;
  options.user = "bench@host";
  options.lock_timeout_ms = 600000;
  return options;
}

// The registry called `name` under LOCATION (see the top of this file).
std::string registry_at(const std::string& location, const std::string& name) {
  if (r::is_postgresql_url(location)) return location + name;
  return location + "/" + name + ".db";
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: registry_bench LOCATION SINGLE_COUNT PROCESSES VERSIONS\n");
    return 2;
  }
  std::string location = argv[1];
  int single = std::atoi(argv[2]), processes = std::atoi(argv[3]), versions = std::atoi(argv[4]);
  int each = std::max(1, single / 4);
  r::Manifest manifest = fake_manifest();
  try {
    {
      r::Registry registry(registry_at(location, "single"), r::Registry::Access::write, options());
      auto start = Clock::now();
      double cpu = cpu_seconds();
      for (int i = 0; i < single; ++i) registry.register_version(request("intent", manifest));
      double elapsed = seconds_since(start);
      std::printf("register, 1 process:    %6d versions in %6.2f s = %7.0f /s (%.2f ms CPU each)\n", single, elapsed,
                  single / elapsed, (cpu_seconds() - cpu) * 1000 / single);
    }
    {
      std::string path = registry_at(location, "multi");
      { r::Registry create(path, r::Registry::Access::write, options()); }
      auto start = Clock::now();
      std::vector<pid_t> children;
      for (int p = 0; p < processes; ++p) {
        pid_t pid = fork();
        if (pid == 0) {
          int code = 0;
          try {
            r::Registry registry(path, r::Registry::Access::write, options());
            for (int i = 0; i < each; ++i) registry.register_version(request("intent", manifest));
          } catch (const std::exception& e) {
            std::fprintf(stderr, "process %d: %s\n", p, e.what());
            code = 1;
          }
          _exit(code);
        }
        children.push_back(pid);
      }
      int failed = 0;
      for (pid_t pid : children) {
        int status = 0;
        waitpid(pid, &status, 0);
        failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      }
      double elapsed = seconds_since(start);
      r::Registry check(path, r::Registry::Access::read, options());
      size_t count = check.list_versions("intent").size();
      std::printf("register, %2d processes: %6zu versions in %6.2f s = %7.0f /s (%d failed processes)\n", processes,
                  count, elapsed, count / elapsed, failed);
    }
    {
      std::string path = registry_at(location, "large");
      r::Registry registry(path, r::Registry::Access::write, options());
      for (int i = 0; i < versions; ++i) registry.register_version(request("intent", manifest));
      for (int i = 0; i < 20; ++i) registry.register_version(request("model-" + std::to_string(i), manifest));
      registry.promote({r::ModelRef::Kind::version, "intent", versions / 2, ""}, "production", "bench");
      // A server's autovacuum analyzes a table this size within a minute of the inserts; the
      // script runs that ANALYZE now (REGISTRY_BENCH_AFTER_FILL) rather than timing a planner
      // that has no statistics yet.
      if (const char* after_fill = std::getenv("REGISTRY_BENCH_AFTER_FILL"))
        if (std::system(after_fill) != 0) throw std::runtime_error(std::string("failed: ") + after_fill);
      std::vector<double> list_all, list_all_cpu, list_50, show, models;
      for (int run = 0; run < 7; ++run) {
        auto start = Clock::now();
        double cpu = cpu_seconds();
        size_t n = registry.list_versions("intent").size();
        list_all.push_back(seconds_since(start) * 1000);
        list_all_cpu.push_back((cpu_seconds() - cpu) * 1000);
        if (n != static_cast<size_t>(versions)) throw std::runtime_error("list returned the wrong count");
        r::VersionFilter filter;
        filter.limit = 50;
        start = Clock::now();
        registry.list_versions("intent", filter);
        list_50.push_back(seconds_since(start) * 1000);
        start = Clock::now();
        registry.version({r::ModelRef::Kind::alias, "intent", 0, "production"}, true);
        show.push_back(seconds_since(start) * 1000);
        start = Clock::now();
        registry.list_models();
        models.push_back(seconds_since(start) * 1000);
      }
      std::printf("with %d versions of one model (median of 7, in-process):\n", versions);
      std::printf("  list NAME (all %d):    %8.2f ms (%.2f ms CPU)\n", versions, median(list_all), median(list_all_cpu));
      std::printf("  list NAME --limit 50:  %8.2f ms\n", median(list_50));
      std::printf("  show NAME@production:  %8.2f ms\n", median(show));
      std::printf("  list (21 models):      %8.2f ms\n", median(models));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "registry_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
