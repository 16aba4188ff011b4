// Transfer buffers are bounded in total, whatever --jobs asks: a store that counts the bytes
// being read at once sees no more than the memory budget.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "storage/manifest.h"
#include "storage/object_store.h"
#include "storage/transfer.h"
#include "tests/support.h"

namespace s = recmodel::storage;
namespace t = recmodel::testing;

namespace {

// Objects held in memory; read_range dawdles so concurrent reads overlap, and records the most
// bytes ever being read at once.
class CountingStore : public s::ObjectStore {
 public:
  std::map<std::string, std::string> objects;
  std::atomic<uint64_t> in_flight{0}, most{0};

  std::string describe(const std::string& key) const override { return "mem://" + key; }
  std::optional<uint64_t> size_of(const std::string& key) override {
    auto found = objects.find(key);
    if (found == objects.end()) return std::nullopt;
    return found->second.size();
  }
  std::string read(const std::string& key) override { return objects.at(key); }
  void read_range(const std::string& key, uint64_t offset, uint64_t length, char* out) override {
    uint64_t now = in_flight += length;
    uint64_t seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::memcpy(out, objects.at(key).data() + offset, length);
    in_flight -= length;
  }
  void write(const std::string&, std::string_view, const std::string&) override {}
  std::unique_ptr<s::PartWriter> write_parts(const std::string&, uint64_t, uint64_t) override { return nullptr; }
  std::vector<s::StoreEntry> list(const std::string&) override { return {}; }
  void remove(const std::string&) override {}

  s::ManifestFile add(const std::string& path, const std::string& bytes) {
    std::string sha = recmodel::sha256_hex(bytes);
    objects[s::object_key(sha)] = bytes;
    return s::ManifestFile{path, bytes.size(), sha};
  }
};

std::string pattern(size_t size, char seed) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(seed + i * 31 + (i >> 12));
  return out;
}

}  // namespace

TEST_CASE("pull: part buffers in flight stay within the memory budget whatever --jobs asks") {
  t::TempDir dir;
  CountingStore store;
  s::Manifest manifest;
  manifest.name = "m";
  manifest.version = "1";
  manifest.files.push_back(store.add("big.bin", pattern(24 << 20, 1)));
  for (int i = 0; i < 40; ++i) manifest.files.push_back(store.add("small" + std::to_string(i), pattern(512 << 10, 2 + i)));
  std::sort(manifest.files.begin(), manifest.files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  s::TransferOptions options;
  options.jobs = 64;
  options.part_size = 1 << 20;
  options.multipart_threshold = 1 << 20;
  options.memory_budget = 4 << 20;
  s::download_files(store, manifest, dir / "staging", options, {});
  INFO("most bytes read at once: " << store.most.load());
  CHECK(store.most.load() <= options.memory_budget);
  CHECK(store.most.load() >= (1 << 20));
  CHECK(t::read_text(dir / "staging/files/big.bin") == pattern(24 << 20, 1));
  CHECK(t::read_text(dir / "staging/files/small7") == pattern(512 << 10, 9));
}

TEST_CASE("pull: the default budget holds 512 MiB of parts, so --jobs 256 of 64 MiB parts runs 8 at once") {
  CHECK(s::TransferOptions{}.memory_budget == s::kTransferMemoryBudget);
  CHECK(s::kTransferMemoryBudget == (uint64_t{512} << 20));
  CHECK(s::kMaxPartBuffer * 8 == s::kTransferMemoryBudget);
}
