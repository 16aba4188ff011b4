#include "metrics/gates.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "common/error.h"

namespace recmodel::metrics {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view option_of(GateKind kind) { return kind == GateKind::at_least ? "--fail-under" : "--max"; }

}  // namespace

std::vector<Gate> parse_gates(std::string_view spec, GateKind kind, std::string_view option) {
  std::vector<Gate> gates;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string_view item = trim(spec.substr(start, comma - start));
    start = comma + 1;
    if (item.empty())
      fail<UsageError>("{} '{}': empty item; expected metric=value[,metric=value...], such as accuracy=0.9", option,
                       spec);
    size_t equals = item.find('=');
    if (equals == std::string_view::npos)
      fail<UsageError>("{} '{}': expected metric=value, such as {}=0.9", option, item, trim(item));
    std::string name(trim(item.substr(0, equals)));
    std::string_view number = trim(item.substr(equals + 1));
    if (name.empty())
      fail<UsageError>("{} '{}': no metric name; expected metric=value, such as accuracy=0.9", option, item);
    require_metric_name(name, option);
    double threshold = 0;
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), threshold);
    if (number.empty() || ec != std::errc() || ptr != number.data() + number.size() || !std::isfinite(threshold))
      fail<UsageError>("{} {}: '{}' is not a number; expected a value such as {}=0.9", option, name, number, name);
    for (const Gate& g : gates)
      if (g.metric == name) fail<UsageError>("{}: metric {} is given twice", option, name);
    gates.push_back({name, kind, threshold});
  }
  return gates;
}

std::string GateFailure::describe() const {
  if (!value)
    return fmt::format("{} is undefined ({}), so {} {}={} cannot be met", gate.metric, reason, option_of(gate.kind),
                       gate.metric, gate.threshold);
  return fmt::format("{} {} is {} {} ({})", gate.metric, *value,
                     gate.kind == GateKind::at_least ? "below" : "above", gate.threshold, option_of(gate.kind));
}

std::vector<GateFailure> check_gates(const std::vector<Gate>& gates,
                                     const std::function<MetricValue(std::string_view)>& lookup) {
  std::vector<GateFailure> failures;
  for (const Gate& gate : gates) {
    MetricValue v = lookup(gate.metric);
    if (!v.applicable)
      fail<UsageError>("{} {}: {} does not apply here: {}", option_of(gate.kind), gate.metric, gate.metric, v.reason);
    if (!v.value) {
      failures.push_back({gate, std::nullopt, v.reason});
      continue;
    }
    bool met = gate.kind == GateKind::at_least ? *v.value >= gate.threshold : *v.value <= gate.threshold;
    if (!met) failures.push_back({gate, v.value, {}});
  }
  return failures;
}

}  // namespace recmodel::metrics
