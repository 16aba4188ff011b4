#include "data/split.h"

#include <charconv>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "common/error.h"
#include "data/hashing.h"

namespace recmodel::data {

namespace {

constexpr size_t kMaxCycle = 1000;
constexpr double kRatioTolerance = 1e-6;

// Builds the slot list of one cycle: the smallest N whose ratio * N are all whole numbers,
// or N = kMaxCycle with the largest-remainder rounding.
std::vector<uint8_t> cycle_slots(const SplitRatios& ratios) {
  std::array<size_t, kSplitCount> counts{};
  size_t cycle = 0;
  for (size_t n = 1; n <= kMaxCycle && cycle == 0; ++n) {
    bool whole = true;
    for (double r : ratios.values) {
      double scaled = r * static_cast<double>(n);
      if (std::fabs(scaled - std::round(scaled)) > kRatioTolerance * static_cast<double>(n)) whole = false;
    }
    if (whole) {
      cycle = n;
      for (int s = 0; s < kSplitCount; ++s)
        counts[s] = static_cast<size_t>(std::llround(ratios.values[s] * static_cast<double>(n)));
    }
  }
  if (cycle == 0) {
    cycle = kMaxCycle;
    std::array<double, kSplitCount> remainders{};
    size_t assigned = 0;
    for (int s = 0; s < kSplitCount; ++s) {
      double scaled = ratios.values[s] * static_cast<double>(cycle);
      counts[s] = static_cast<size_t>(std::floor(scaled));
      remainders[s] = scaled - std::floor(scaled);
      assigned += counts[s];
    }
    while (assigned < cycle) {
      int best = 0;
      for (int s = 1; s < kSplitCount; ++s)
        if (remainders[s] > remainders[best]) best = s;
      ++counts[best];
      remainders[best] = -1;
      ++assigned;
    }
  }
  // The rounding of the tolerance test could leave the total one off; train absorbs it.
  size_t total = counts[0] + counts[1] + counts[2];
  if (total != cycle) counts[0] = counts[0] + cycle - total;
  std::vector<uint8_t> slots;
  for (int s = 0; s < kSplitCount; ++s) slots.insert(slots.end(), counts[s], static_cast<uint8_t>(s));
  return slots;
}

}  // namespace

const char* split_name(int split) {
  switch (split) {
    case kTrain: return "train";
    case kDev: return "dev";
    case kTest: return "test";
  }
  return "?";
}

SplitRatios SplitRatios::parse(std::string_view text) {
  std::vector<double> parts;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    double value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || !std::isfinite(value))
      fail<UsageError>("--split {}: \"{}\" is not a number; expected ratios like 0.8,0.1,0.1", text, part);
    if (value < 0) fail<UsageError>("--split {}: ratios cannot be negative", text);
    parts.push_back(value);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (parts.size() < 2 || parts.size() > 3)
    fail<UsageError>("--split {}: expected 3 ratios (train,dev,test) or 2 (train,dev), found {}", text, parts.size());
  double sum = std::accumulate(parts.begin(), parts.end(), 0.0);
  if (std::fabs(sum - 1.0) > 1e-5)
    fail<UsageError>("--split {}: the ratios add up to {:.6g}, not 1", text, sum);
  if (parts[0] <= 0) fail<UsageError>("--split {}: the train share must be above 0", text);
  SplitRatios ratios;
  ratios.values = {parts[0], parts[1], parts.size() == 3 ? parts[2] : 0.0};
  return ratios;
}

std::string SplitRatios::text() const { return fmt::format("{},{},{}", values[0], values[1], values[2]); }

StratifiedSplitter::StratifiedSplitter(const SplitRatios& ratios, uint64_t seed)
    : seed_(seed), base_slots_(cycle_slots(ratios)) {}

int StratifiedSplitter::assign(std::string_view stratum) {
  auto found = strata_.find(std::string(stratum));
  if (found == strata_.end()) {
    Stratum fresh;
    fresh.key = hash64(stratum, 0x5354524154554dULL);
    found = strata_.emplace(std::string(stratum), std::move(fresh)).first;
  }
  Stratum& state = found->second;
  const size_t n = base_slots_.size();
  size_t position = static_cast<size_t>(state.count % n);
  if (position == 0) {
    // A new cycle: a fresh shuffle (Fisher-Yates) of the slots.
    state.slots = base_slots_;
    SplitMix64 random(mix64(seed_ ^ mix64(state.key ^ mix64(state.count / n + 1))));
    for (size_t i = n - 1; i > 0; --i) std::swap(state.slots[i], state.slots[random.below(i + 1)]);
  }
  ++state.count;
  return state.slots[position];
}

int assign_group(std::string_view group, const SplitRatios& ratios, uint64_t seed) {
  double u = static_cast<double>(hash64(group, mix64(seed) ^ 0x47524f5550ULL) >> 11) * 0x1.0p-53;
  double cumulative = 0;
  int last_nonzero = kTrain;
  for (int s = 0; s < kSplitCount; ++s) {
    if (ratios.values[s] <= 0) continue;
    last_nonzero = s;
    cumulative += ratios.values[s];
    if (u < cumulative) return s;
  }
  return last_nonzero;  // u fell in the rounding gap above the last share
}

}  // namespace recmodel::data
