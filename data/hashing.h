// Small, stable 64-bit hashing: the same bytes and seed give the same value on every
// platform and in every build, because splits and de-duplication depend on it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace recmodel::data {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "hash64 and the dataset files assume a little-endian machine");

// Returns the SplitMix64 finalizer of `x`: a bijective mix with full avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Returns a 64-bit hash of `bytes` under `seed`, eight bytes at a time.
inline uint64_t hash64(std::string_view bytes, uint64_t seed = 0) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t h = mix64(seed ^ 0x9e3779b97f4a7c15ULL ^ (static_cast<uint64_t>(n) * 0xff51afd7ed558ccdULL));
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ mix64(word)) * 0x9fb21c651e98df25ULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t word = 0;
    std::memcpy(&word, p, n);
    h = (h ^ mix64(word ^ (static_cast<uint64_t>(n) << 56))) * 0x9fb21c651e98df25ULL;
  }
  return mix64(h);
}

// A tiny deterministic generator (SplitMix64) for seeded shuffles; unlike the standard
// distributions its output is the same with every standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  // Returns the next 64 random bits.
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  // Returns a number in [0, bound) (bound > 0), without modulo bias worth noticing.
  uint64_t below(uint64_t bound) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64); }

 private:
  uint64_t state_;
};

}  // namespace recmodel::data
