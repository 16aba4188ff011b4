// The small task the train tests share: a vocabulary, three product categories told apart by
// their nouns, the prepared dataset and a tiny `recmodel init` model.
#pragma once

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/support.h"

namespace recmodel::testing::train {


inline const char* kWords[] = {"red", "blue", "green", "shoe", "shirt", "lamp", "sofa", "phone", "cable", "apple",
                        "bread", "cheese", "size", "big", "small", "new", "cheap", "best", "for", "with"};

// Three categories told apart by their nouns, with shared filler words; deterministic.
inline std::string category_csv(int rows, uint32_t seed) {
  const char* nouns[3][3] = {{"shoe", "shirt", "size"}, {"lamp", "sofa", "cable"}, {"apple", "bread", "cheese"}};
  const char* names[3] = {"clothing", "home", "grocery"};
  const char* filler[] = {"red", "blue", "green", "big", "small", "new", "cheap", "best", "for", "with"};
  std::string csv = "id,title,category\n";
  uint32_t state = seed;
  auto next = [&] { return state = state * 1664525u + 1013904223u, state >> 8; };
  for (int i = 0; i < rows; ++i) {
    int label = static_cast<int>(next() % 3);
    std::string title;
    int words = 2 + static_cast<int>(next() % 5);
    for (int w = 0; w < words; ++w) title += std::string(filler[next() % 10]) + " ";
    title += nouns[label][next() % 3];
    csv += std::to_string(i) + "," + title + "," + names[label] + "\n";
  }
  return csv;
}

struct Fixture {
  testing::TempDir dir;
  std::string vocab, data, model;
  explicit Fixture(int rows = 600, const std::string& task = "classification") {
    std::string text = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (const char* w : kWords) text += std::string(w) + "\n";
    testing::write_text(dir / "vocab.txt", text);
    vocab = path("vocab.txt");
    testing::write_text(dir / "raw.csv", category_csv(rows, 11));
    data = path("data");
    auto prepared = testing::run_recmodel({"preprocess", "--input", path("raw.csv"), "--text-column", "title",
                                     "--label-column", "category", "--vocab", vocab, "--out", data, "--max-length", "16"});
    REQUIRE_MESSAGE(prepared.exit_code == 0, prepared.err);
    model = path("init");
    auto made = testing::run_recmodel({"init", "--preset", "tiny", "--data", data, "--out", model, "--seed", "3"});
    REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

inline std::vector<std::string> train_args(const Fixture& f, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"train", "--model", f.model, "--data", f.data, "--out", out};
  // Defaults the test does not set itself (options may be given once).
  const std::pair<const char*, const char*> defaults[] = {
      {"--batch-size", "16"}, {"--lr", "2e-3"}, {"--seed", "5"}, {"--threads", "1"}, {"--epochs", "2"}};
  for (const auto& [option, value] : defaults)
    if (std::find(extra.begin(), extra.end(), option) == extra.end()) args.insert(args.end(), {option, value});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

inline std::vector<nlohmann::json> read_jsonl(const testing::fs::path& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(testing::read_text(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace recmodel::testing::train
