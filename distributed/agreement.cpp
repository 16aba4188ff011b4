#include "distributed/agreement.h"

#include <fmt/format.h>

#include "common/json.h"

namespace recmodel::distributed {

namespace {

// The first key (in rank 0's order, then the other's) whose value differs, or "" when none does.
std::string first_difference(const nlohmann::json& main, const nlohmann::json& other) {
  for (const auto& [key, value] : main.items())
    if (!other.contains(key) || other[key] != value) return key;
  for (const auto& [key, value] : other.items())
    if (!main.contains(key)) return key;
  return "";
}

std::string shown(const nlohmann::json& document, const std::string& key) {
  return document.contains(key) ? json_excerpt(document[key], 80) : "unset";
}

}  // namespace

void agree_to_start(ProcessGroup& group, const nlohmann::json& fingerprint, const Error* own_error) {
  nlohmann::json mine = own_error ? nlohmann::json{{"error", own_error->what()}, {"code", static_cast<int>(own_error->code())}}
                                  : nlohmann::json{{"fingerprint", fingerprint}};
  const std::vector<std::string> posted = group.exchange("setup", mine.dump());
  if (own_error) throw *own_error;
  std::vector<nlohmann::json> ranks;
  for (const auto& text : posted) ranks.push_back(nlohmann::json::parse(text));
  for (size_t r = 0; r < ranks.size(); ++r) {
    if (ranks[r].contains("error"))
      throw Error(static_cast<ExitCode>(ranks[r]["code"].get<int>()),
                  fmt::format("rank {} of {} stopped before training: {}", r, ranks.size(),
                              ranks[r]["error"].get<std::string>()));
  }
  const nlohmann::json& main = ranks[0]["fingerprint"];
  for (size_t r = 1; r < ranks.size(); ++r) {
    const nlohmann::json& other = ranks[r]["fingerprint"];
    const std::string key = first_difference(main, other);
    if (key.empty()) continue;
    fail<DataError>("rank {} of {} disagrees with rank 0 on {}: {} there, {} on rank 0; every rank must be started "
                    "with the same data, model and settings",
                    r, ranks.size(), key, shown(other, key), shown(main, key));
  }
}

}  // namespace recmodel::distributed
