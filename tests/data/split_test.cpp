#include "data/split.h"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"

using namespace recmodel::data;

TEST_CASE("SplitRatios::parse accepts three or two shares summing to 1") {
  CHECK(SplitRatios::parse("0.8,0.1,0.1").values == std::array<double, 3>{0.8, 0.1, 0.1});
  CHECK(SplitRatios::parse("0.9, 0.1").values == std::array<double, 3>{0.9, 0.1, 0.0});
  CHECK(SplitRatios::parse("1,0,0").values == std::array<double, 3>{1, 0, 0});
  CHECK(SplitRatios::parse("0.8,0.1,0.1").text() == "0.8,0.1,0.1");
  CHECK_THROWS_WITH_AS(SplitRatios::parse("0.8,0.3"), "--split 0.8,0.3: the ratios add up to 1.1, not 1",
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(SplitRatios::parse("0.8,abc,0.1"),
                       "--split 0.8,abc,0.1: \"abc\" is not a number; expected ratios like 0.8,0.1,0.1",
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(SplitRatios::parse("1"), "--split 1: expected 3 ratios (train,dev,test) or 2 (train,dev), found 1",
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(SplitRatios::parse("0.5,0.5,0.5,-0.5"),
                       "--split 0.5,0.5,0.5,-0.5: ratios cannot be negative", recmodel::UsageError);
  CHECK_THROWS_WITH_AS(SplitRatios::parse("0,0.5,0.5"), "--split 0,0.5,0.5: the train share must be above 0",
                       recmodel::UsageError);
  CHECK_THROWS_AS(SplitRatios::parse("0.8,,0.2"), recmodel::UsageError);
  CHECK_THROWS_AS(SplitRatios::parse("nan,0,0"), recmodel::UsageError);
}

TEST_CASE("StratifiedSplitter uses the smallest exact cycle") {
  CHECK(StratifiedSplitter(SplitRatios::parse("0.8,0.1,0.1"), 1).cycle_length() == 10);
  CHECK(StratifiedSplitter(SplitRatios::parse("0.7,0.15,0.15"), 1).cycle_length() == 20);
  CHECK(StratifiedSplitter(SplitRatios::parse("0.9,0.1"), 1).cycle_length() == 10);
  CHECK(StratifiedSplitter(SplitRatios::parse("1,0,0"), 1).cycle_length() == 1);
  CHECK(StratifiedSplitter(SplitRatios::parse("0.3333,0.3333,0.3334"), 1).cycle_length() == 1000);
}

TEST_CASE("StratifiedSplitter divides every label exactly by the ratios") {
  StratifiedSplitter splitter(SplitRatios::parse("0.8,0.1,0.1"), 42);
  std::array<std::array<int, 3>, 3> counts{};
  const char* labels[] = {"a", "b", "c"};
  // Labels interleave unevenly: a gets 1000 rows, b 500, c 30.
  for (int i = 0; i < 1000; ++i) {
    ++counts[0][splitter.assign(labels[0])];
    if (i % 2 == 0) ++counts[1][splitter.assign(labels[1])];
    if (i % 33 == 0 && i < 990) ++counts[2][splitter.assign(labels[2])];
  }
  CHECK(counts[0] == std::array<int, 3>{800, 100, 100});
  CHECK(counts[1] == std::array<int, 3>{400, 50, 50});
  CHECK(counts[2] == std::array<int, 3>{24, 3, 3});
}

TEST_CASE("StratifiedSplitter is deterministic per seed and independent of interleaving") {
  auto sequence = [](uint64_t seed, bool interleave) {
    StratifiedSplitter splitter(SplitRatios::parse("0.8,0.1,0.1"), seed);
    std::string out;
    for (int i = 0; i < 200; ++i) {
      out += static_cast<char>('0' + splitter.assign("label"));
      if (interleave) splitter.assign("other");
    }
    return out;
  };
  CHECK(sequence(42, false) == sequence(42, false));
  CHECK(sequence(42, false) == sequence(42, true));
  CHECK(sequence(42, false) != sequence(43, false));
  // Slots are shuffled, not a fixed pattern: the first cycle is not simply 8 trains then dev, test.
  std::string cycles = sequence(42, false);
  bool some_cycle_differs = false;
  for (size_t c = 0; c + 10 <= cycles.size(); c += 10) some_cycle_differs |= cycles.substr(c, 10) != cycles.substr(0, 10);
  CHECK(some_cycle_differs);
}

TEST_CASE("assign_group keeps a group together and follows the ratios over many groups") {
  SplitRatios ratios = SplitRatios::parse("0.8,0.1,0.1");
  CHECK(assign_group("query 17", ratios, 42) == assign_group("query 17", ratios, 42));
  std::array<int, 3> counts{};
  const int groups = 20000;
  for (int g = 0; g < groups; ++g) ++counts[assign_group("group-" + std::to_string(g), ratios, 42)];
  CHECK(std::abs(counts[0] - 16000) < 400);
  CHECK(std::abs(counts[1] - 2000) < 250);
  CHECK(std::abs(counts[2] - 2000) < 250);
  int moved = 0;
  for (int g = 0; g < 1000; ++g)
    moved += assign_group("group-" + std::to_string(g), ratios, 42) != assign_group("group-" + std::to_string(g), ratios, 7);
  CHECK(moved > 100);  // another seed reshuffles groups
  SplitRatios no_test = SplitRatios::parse("0.5,0.5");
  for (int g = 0; g < 1000; ++g) CHECK(assign_group(std::to_string(g), no_test, 1) != kTest);
}

TEST_CASE("split_name") {
  CHECK(std::string(split_name(kTrain)) == "train");
  CHECK(std::string(split_name(kDev)) == "dev");
  CHECK(std::string(split_name(kTest)) == "test");
}
