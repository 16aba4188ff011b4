#include "data/labels.h"

#include <doctest/doctest.h>

#include "common/error.h"

using namespace recmodel::data;

TEST_CASE("parse_label_list trims and refuses empty names and duplicates") {
  CHECK(parse_label_list("neg, neu ,pos") == std::vector<std::string>{"neg", "neu", "pos"});
  CHECK(parse_label_list("only") == std::vector<std::string>{"only"});
  CHECK_THROWS_WITH_AS(parse_label_list("a,,b"), "--labels a,,b: empty label name; expected a list like neg,neu,pos",
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(parse_label_list("a,b,a"), "--labels a,b,a: \"a\" is listed twice", recmodel::UsageError);
}

TEST_CASE("sort_labels orders integers numerically and everything else by bytes") {
  std::vector<std::string> stars = {"10", "2", "1", "-3", "5"};
  CHECK(sort_labels(stars) == LabelOrder::numeric);
  CHECK(stars == std::vector<std::string>{"-3", "1", "2", "5", "10"});
  std::vector<std::string> padded = {"02", "1", "2"};
  CHECK(sort_labels(padded) == LabelOrder::numeric);
  CHECK(padded == std::vector<std::string>{"1", "02", "2"});
  std::vector<std::string> names = {"toys", "Books", "electronics", "10"};
  CHECK(sort_labels(names) == LabelOrder::lexicographic);
  CHECK(names == std::vector<std::string>{"10", "Books", "electronics", "toys"});
  std::vector<std::string> decimals = {"1.5", "1"};
  CHECK(sort_labels(decimals) == LabelOrder::lexicographic);
}

TEST_CASE("parse_target accepts decimal numbers only") {
  std::string why;
  CHECK(parse_target("4", why) == 4.0f);
  CHECK(parse_target(" -0.5 ", why) == -0.5f);
  CHECK(parse_target("+3.2e1", why) == 32.0f);
  CHECK(parse_target(".5", why) == 0.5f);
  CHECK(parse_target("5.", why) == 5.0f);
  for (const char* bad : {"abc", "nan", "NaN", "inf", "-infinity", "0x10", "1,5", "4 stars", "1e", ".", "--1"}) {
    CAPTURE(bad);
    why.clear();
    CHECK_FALSE(parse_target(bad, why).has_value());
    CHECK(why == "target '" + std::string(bad) + "' is not a number");
  }
  CHECK_FALSE(parse_target("", why).has_value());
  CHECK(why == "missing target value");
  CHECK_FALSE(parse_target("1e39", why).has_value());
  CHECK(why == "target '1e39' is out of range for a 32-bit float");
  CHECK_FALSE(parse_target("1e999", why).has_value());
}

TEST_CASE("LabelMap: open maps learn labels and finalize to sorted ids") {
  LabelMap map;
  CHECK_FALSE(map.fixed());
  CHECK(map.add("pos") == 0);
  CHECK(map.add("neg") == 1);
  CHECK(map.add("pos") == 0);
  CHECK(map.add("neu") == 2);
  CHECK(map.find("other") == -1);
  std::vector<int32_t> remap;
  LabelOrder order;
  CHECK(map.finalize(remap, order) == std::vector<std::string>{"neg", "neu", "pos"});
  CHECK(order == LabelOrder::lexicographic);
  CHECK(remap == std::vector<int32_t>{2, 0, 1});
  // A label only rejected rows had (no kept rows) is dropped.
  CHECK(map.finalize(remap, order, {5, 0, 1}) == std::vector<std::string>{"neu", "pos"});
  CHECK(remap == std::vector<int32_t>{1, -1, 0});
}

TEST_CASE("LabelMap: fixed maps keep the given order and refuse unknown labels") {
  LabelMap map({"pos", "neg"});
  CHECK(map.fixed());
  CHECK(map.find("neg") == 1);
  CHECK(map.add("neu") == -1);
  CHECK(map.size() == 2);
  std::vector<int32_t> remap;
  LabelOrder order;
  CHECK(map.finalize(remap, order) == std::vector<std::string>{"pos", "neg"});
  CHECK(order == LabelOrder::given);
  CHECK(remap == std::vector<int32_t>{0, 1});
}
