#include "data/labels.h"

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "common/error.h"
#include "common/text.h"
#include "data/cleaning.h"

namespace recmodel::data {

namespace {

bool is_integer(std::string_view text) {
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Compares integers written in decimal of any length: sign, then digit count, then digits.
bool integer_less(std::string_view a, std::string_view b) {
  bool neg_a = !a.empty() && a[0] == '-', neg_b = !b.empty() && b[0] == '-';
  if (!a.empty() && (a[0] == '-' || a[0] == '+')) a.remove_prefix(1);
  if (!b.empty() && (b[0] == '-' || b[0] == '+')) b.remove_prefix(1);
  while (a.size() > 1 && a[0] == '0') a.remove_prefix(1);
  while (b.size() > 1 && b[0] == '0') b.remove_prefix(1);
  if (a == "0") neg_a = false;
  if (b == "0") neg_b = false;
  if (neg_a != neg_b) return neg_a;
  bool magnitude_less = a.size() != b.size() ? a.size() < b.size() : a < b;
  bool magnitude_equal = a == b;
  if (magnitude_equal) return false;
  return neg_a ? !magnitude_less : magnitude_less;
}

// Returns whether `text` is [+-]digits[.digits][e[+-]digits] (or [+-].digits...).
bool is_decimal_number(std::string_view text) {
  size_t i = 0, n = text.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && text[i] >= '0' && text[i] <= '9') ++i;
    return i - start;
  };
  if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
  size_t whole = digits();
  size_t fraction = 0;
  if (i < n && text[i] == '.') {
    ++i;
    fraction = digits();
  }
  if (whole + fraction == 0) return false;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == n;
}

}  // namespace

const char* label_order_name(LabelOrder order) {
  switch (order) {
    case LabelOrder::given: return "given";
    case LabelOrder::numeric: return "numeric";
    case LabelOrder::lexicographic: return "lexicographic";
  }
  return "?";
}

std::vector<std::string> parse_label_list(std::string_view text) {
  std::vector<std::string> labels;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view part =
        trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (part.empty()) fail<UsageError>("--labels {}: empty label name; expected a list like neg,neu,pos", text);
    if (std::find(labels.begin(), labels.end(), part) != labels.end())
      fail<UsageError>("--labels {}: \"{}\" is listed twice", text, part);
    labels.emplace_back(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return labels;
}

LabelOrder sort_labels(std::vector<std::string>& labels) {
  bool numeric = !labels.empty() && std::all_of(labels.begin(), labels.end(), [](const std::string& l) {
    return is_integer(l);
  });
  if (numeric) {
    // "01" and "1" are different labels with the same value; the byte order breaks the tie.
    std::sort(labels.begin(), labels.end(), [](const std::string& a, const std::string& b) {
      if (integer_less(a, b)) return true;
      if (integer_less(b, a)) return false;
      return a < b;
    });
    return LabelOrder::numeric;
  }
  std::sort(labels.begin(), labels.end());
  return LabelOrder::lexicographic;
}

std::optional<float> parse_target(std::string_view text, std::string& why) {
  text = trim(text);
  if (text.empty()) {
    why = "missing target value";
    return std::nullopt;
  }
  // Only plain decimal notation: from_chars alone would also take "inf", "nan" and hex digits.
  std::string_view number = text[0] == '+' ? text.substr(1) : text;
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (!is_decimal_number(text) || ec == std::errc::invalid_argument || end != number.data() + number.size()) {
    why = fmt::format("target {} is not a number", quoted_for_message(text));
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || !std::isfinite(value) || std::fabs(value) > FLT_MAX) {
    why = fmt::format("target {} is out of range for a 32-bit float", quoted_for_message(text));
    return std::nullopt;
  }
  return static_cast<float>(value);
}

LabelMap::LabelMap(std::vector<std::string> labels) : fixed_(true), labels_(std::move(labels)) {
  for (size_t i = 0; i < labels_.size(); ++i) ids_.emplace(labels_[i], static_cast<int32_t>(i));
}

int32_t LabelMap::find(std::string_view label) const {
  auto found = ids_.find(std::string(label));
  return found == ids_.end() ? -1 : found->second;
}

int32_t LabelMap::add(std::string_view label) {
  int32_t id = find(label);
  if (id >= 0 || fixed_) return id;
  id = static_cast<int32_t>(labels_.size());
  labels_.emplace_back(label);
  ids_.emplace(labels_.back(), id);
  return id;
}

std::vector<std::string> LabelMap::finalize(std::vector<int32_t>& remap, LabelOrder& order,
                                            const std::vector<uint64_t>& counts) const {
  if (fixed_) {
    order = LabelOrder::given;
    remap.resize(labels_.size());
    std::iota(remap.begin(), remap.end(), 0);
    return labels_;
  }
  std::vector<std::string> sorted;
  for (size_t id = 0; id < labels_.size(); ++id)
    if (counts.empty() || (id < counts.size() && counts[id] > 0)) sorted.push_back(labels_[id]);
  order = sort_labels(sorted);
  remap.assign(labels_.size(), -1);
  for (size_t final_id = 0; final_id < sorted.size(); ++final_id)
    remap[static_cast<size_t>(find(sorted[final_id]))] = static_cast<int32_t>(final_id);
  return sorted;
}

}  // namespace recmodel::data
