#include "metrics/classification.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"

namespace recmodel::metrics {

namespace {

// scikit-learn's _prf_divide with zero_division=0.
double divide_or_zero(double numerator, double denominator) {
  return denominator == 0.0 ? 0.0 : numerator / denominator;
}

// scikit-learn 1.2's F1 from precision and recall (beta = 1): 2pr / (p + r), 0 when p + r = 0.
double f1_of(double precision, double recall) {
  double denominator = precision + recall;
  if (denominator == 0.0) denominator = 1;
  return 2 * precision * recall / denominator;
}

// The ranking part of roc_curve / precision_recall_curve (scikit-learn's _binary_clf_curve):
// cumulative true and false positives at each distinct score, highest score first.
struct Curve {
  std::vector<double> tps;
  std::vector<double> fps;
};

Curve binary_curve(const std::vector<int>& truth, const std::vector<double>& score) {
  size_t n = truth.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // argsort(kind="mergesort")[::-1]: ascending stable, reversed.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  std::reverse(order.begin(), order.end());
  Curve curve;
  double tp = 0;
  for (size_t i = 0; i < n; ++i) {
    tp += truth[order[i]] == 1 ? 1 : 0;
    bool last_of_value = i + 1 == n || score[order[i + 1]] != score[order[i]];
    if (last_of_value) {
      curve.tps.push_back(tp);
      curve.fps.push_back(static_cast<double>(i + 1) - tp);
    }
  }
  return curve;
}

// roc_auc_score for two classes: trapezoidal area under (fpr, tpr), starting at (0, 0).
std::optional<double> roc_auc_of(const Curve& curve) {
  double positives = curve.tps.back(), negatives = curve.fps.back();
  if (positives == 0 || negatives == 0) return std::nullopt;
  double area = 0, previous_fpr = 0, previous_tpr = 0;
  for (size_t i = 0; i < curve.tps.size(); ++i) {
    double fpr = curve.fps[i] / negatives, tpr = curve.tps[i] / positives;
    area += (fpr - previous_fpr) * (tpr + previous_tpr) / 2.0;
    previous_fpr = fpr;
    previous_tpr = tpr;
  }
  return area;
}

// average_precision_score: sum over thresholds of (R_i - R_{i-1}) * P_i. With no positive
// example scikit-learn sets recall to 1 everywhere, which makes the score 0.
double average_precision_of(const Curve& curve) {
  double positives = curve.tps.back();
  double sum = 0, previous_recall = 0;
  for (size_t i = 0; i < curve.tps.size(); ++i) {
    double precision = divide_or_zero(curve.tps[i], curve.tps[i] + curve.fps[i]);
    double recall = positives == 0 ? 1.0 : curve.tps[i] / positives;
    sum += (recall - previous_recall) * precision;
    previous_recall = recall;
  }
  return sum;
}

// top_k_accuracy_score. Three or more classes: a hit when the truth is among the k highest
// scores, ties broken towards the higher class index (argsort mergesort, reversed). Two classes:
// scikit-learn's binary path on column 1 — k = 1 thresholds it, k >= 2 is always a hit.
double top_k_accuracy_of(const std::vector<int>& truth, const std::vector<double>& probabilities, int num_classes,
                         int k) {
  size_t n = truth.size();
  size_t hits = 0;
  if (num_classes == 2) {
    if (k >= 2) return 1.0;
    double low = probabilities[1], high = probabilities[1];
    for (size_t i = 0; i < n; ++i) {
      low = std::min(low, probabilities[i * 2 + 1]);
      high = std::max(high, probabilities[i * 2 + 1]);
    }
    double threshold = low >= 0 && high <= 1 ? 0.5 : 0.0;
    for (size_t i = 0; i < n; ++i) hits += (probabilities[i * 2 + 1] > threshold ? 1 : 0) == truth[i];
    return static_cast<double>(hits) / static_cast<double>(n);
  }
  for (size_t i = 0; i < n; ++i) {
    const double* row = &probabilities[i * num_classes];
    double own = row[truth[i]];
    // Classes ranked before the truth: higher score, or equal score and higher index.
    int ahead = 0;
    for (int c = 0; c < num_classes; ++c)
      if (row[c] > own || (row[c] == own && c > truth[i])) ++ahead;
    hits += ahead < k;
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

}  // namespace

ClassificationMetrics classification_metrics(const std::vector<int>& truth, const std::vector<int>& predicted,
                                             int num_classes, const std::vector<double>& probabilities,
                                             const ClassificationOptions& options) {
  if (num_classes < 1) fail<DataError>("classification metrics need at least one class, got {}", num_classes);
  if (truth.size() != predicted.size())
    fail<DataError>("classification metrics: {} true labels but {} predictions", truth.size(), predicted.size());
  if (truth.empty()) fail<DataError>("classification metrics: no examples to evaluate");
  const size_t n = truth.size();
  for (size_t i = 0; i < n; ++i) {
    if (truth[i] < 0 || truth[i] >= num_classes)
      fail<DataError>("classification metrics: true class {} of example {} is outside 0..{}", truth[i], i,
                      num_classes - 1);
    if (predicted[i] < 0 || predicted[i] >= num_classes)
      fail<DataError>("classification metrics: predicted class {} of example {} is outside 0..{}", predicted[i], i,
                      num_classes - 1);
  }
  if (!probabilities.empty()) {
    if (probabilities.size() != n * static_cast<size_t>(num_classes))
      fail<DataError>("classification metrics: {} probabilities for {} examples x {} classes", probabilities.size(),
                      n, num_classes);
    for (size_t i = 0; i < probabilities.size(); ++i)
      if (!std::isfinite(probabilities[i]))
        fail<DataError>("classification metrics: probability of class {} for example {} is not a finite number",
                        i % num_classes, i / num_classes);
  }
  if (options.top_k < 0) fail<UsageError>("top-k must be 1 or more (0 = the default), got {}", options.top_k);
  const int top_k = options.top_k > 0 ? options.top_k : default_top_k(num_classes);
  if (!options.class_values.empty() && options.class_values.size() != static_cast<size_t>(num_classes))
    fail<DataError>("classification metrics: {} class values for {} classes", options.class_values.size(),
                    num_classes);

  ClassificationMetrics m;
  m.num_classes = num_classes;
  m.examples = static_cast<int64_t>(n);

  std::vector<int64_t> true_count(num_classes, 0), predicted_count(num_classes, 0), correct(num_classes, 0);
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    ++true_count[truth[i]];
    ++predicted_count[predicted[i]];
    if (truth[i] == predicted[i]) {
      ++correct[truth[i]];
      ++hits;
    }
  }
  m.accuracy = static_cast<double>(hits) / static_cast<double>(n);

  if (options.labels.empty()) {
    for (int c = 0; c < num_classes; ++c) {
      if (true_count[c] > 0 || predicted_count[c] > 0)
        m.labels.push_back(c);
      else
        m.absent.push_back(c);
    }
  } else {
    for (size_t i = 0; i < options.labels.size(); ++i) {
      int c = options.labels[i];
      if (c < 0 || c >= num_classes) fail<DataError>("classification metrics: label {} is outside 0..{}", c, num_classes - 1);
      if (i > 0 && c <= options.labels[i - 1])
        fail<DataError>("classification metrics: labels must be ascending and unique ({} after {})", c,
                        options.labels[i - 1]);
    }
    m.labels = options.labels;
  }

  std::vector<int> position(num_classes, -1);
  for (size_t i = 0; i < m.labels.size(); ++i) position[m.labels[i]] = static_cast<int>(i);
  m.confusion.assign(m.labels.size(), std::vector<int64_t>(m.labels.size(), 0));
  for (size_t i = 0; i < n; ++i) {
    int row = position[truth[i]], column = position[predicted[i]];
    if (row >= 0 && column >= 0) ++m.confusion[row][column];
  }

  double tp_sum = 0, predicted_sum = 0, true_sum = 0;
  double macro_p = 0, macro_r = 0, macro_f = 0, weighted_p = 0, weighted_r = 0, weighted_f = 0;
  for (int c : m.labels) {
    ClassScores s;
    s.label = c;
    s.support = true_count[c];
    s.predicted = predicted_count[c];
    s.precision = divide_or_zero(static_cast<double>(correct[c]), static_cast<double>(s.predicted));
    s.recall = divide_or_zero(static_cast<double>(correct[c]), static_cast<double>(s.support));
    s.f1 = f1_of(s.precision, s.recall);
    if (s.predicted == 0) m.never_predicted.push_back(c);
    if (s.support == 0) m.no_true_samples.push_back(c);
    tp_sum += static_cast<double>(correct[c]);
    predicted_sum += static_cast<double>(s.predicted);
    true_sum += static_cast<double>(s.support);
    macro_p += s.precision;
    macro_r += s.recall;
    macro_f += s.f1;
    weighted_p += s.precision * static_cast<double>(s.support);
    weighted_r += s.recall * static_cast<double>(s.support);
    weighted_f += s.f1 * static_cast<double>(s.support);
    m.per_class.push_back(s);
  }
  double count = static_cast<double>(m.labels.size());
  if (count > 0) m.macro = {macro_p / count, macro_r / count, macro_f / count};
  m.micro.precision = divide_or_zero(tp_sum, predicted_sum);
  m.micro.recall = divide_or_zero(tp_sum, true_sum);
  m.micro.f1 = f1_of(m.micro.precision, m.micro.recall);
  // With no true example among the labels every weighted value is zero_division = 0.
  if (true_sum > 0) m.weighted = {weighted_p / true_sum, weighted_r / true_sum, weighted_f / true_sum};

  if (!probabilities.empty() && num_classes >= 2) {
    m.has_probabilities = true;
    m.top_k = top_k;
    m.top_k_accuracy = top_k_accuracy_of(truth, probabilities, num_classes, top_k);
    if (num_classes == 2) {
      std::vector<double> positive_score(n);
      for (size_t i = 0; i < n; ++i) positive_score[i] = probabilities[i * 2 + 1];
      Curve curve = binary_curve(truth, positive_score);
      m.roc_auc = roc_auc_of(curve);
      m.pr_auc = average_precision_of(curve);
    }
  }

  if (!options.class_values.empty()) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i)
      sum += std::abs(options.class_values[truth[i]] - options.class_values[predicted[i]]);
    m.mae = sum / static_cast<double>(n);
  }
  return m;
}

MetricValue ClassificationMetrics::get(std::string_view name) const {
  require_metric_name(name, "the metric lookup");
  auto value = [](double v) { return MetricValue{v, true, {}}; };
  if (name == "accuracy") return value(accuracy);
  if (name == "precision_macro") return value(macro.precision);
  if (name == "recall_macro") return value(macro.recall);
  if (name == "f1_macro") return value(macro.f1);
  if (name == "precision_micro") return value(micro.precision);
  if (name == "recall_micro") return value(micro.recall);
  if (name == "f1_micro") return value(micro.f1);
  if (name == "precision_weighted") return value(weighted.precision);
  if (name == "recall_weighted") return value(weighted.recall);
  if (name == "f1_weighted") return value(weighted.f1);
  if (name == "top_k_accuracy") {
    if (num_classes < 2) return {std::nullopt, false, "the task has a single class"};
    if (!has_probabilities) return {std::nullopt, false, "it needs class probabilities"};
    return value(*top_k_accuracy);
  }
  if (name == "roc_auc" || name == "pr_auc") {
    if (num_classes != 2)
      return {std::nullopt, false, fmt::format("it is defined for two classes only (this task has {})", num_classes)};
    if (!has_probabilities) return {std::nullopt, false, "it needs class probabilities"};
    const std::optional<double>& v = name == "roc_auc" ? roc_auc : pr_auc;
    if (!v) return {std::nullopt, true, "the truth holds one class only"};
    return value(*v);
  }
  if (name == "mae") {
    if (!mae) return {std::nullopt, false, "the class labels are not numbers"};
    return value(*mae);
  }
  return {std::nullopt, false, "it is a regression metric and this is a classification task"};
}

int default_top_k(int num_classes) { return std::max(1, std::min(5, num_classes - 1)); }

std::vector<double> numeric_label_values(const std::vector<std::string>& label_names) {
  std::vector<double> values;
  for (const std::string& name : label_names) {
    double v = 0;
    const char* begin = name.data();
    const char* end = begin + name.size();
    if (begin != end && *begin == '+') ++begin;
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (name.empty() || ec != std::errc() || ptr != end || !std::isfinite(v)) return {};
    values.push_back(v);
  }
  return values;
}

nlohmann::ordered_json to_json(const ClassificationMetrics& m, const std::vector<std::string>& label_names) {
  auto label = [&](int c) { return c < static_cast<int>(label_names.size()) ? label_names[c] : std::to_string(c); };
  nlohmann::ordered_json out;
  out["examples"] = m.examples;
  for (const std::string& name : metric_names()) {
    MetricValue v = m.get(name);
    if (!v.applicable) continue;
    if (v.value)
      out[name] = *v.value;
    else
      out[name] = nullptr;
    if (name == "top_k_accuracy") out["top_k"] = m.top_k;
  }
  nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
  for (const ClassScores& s : m.per_class)
    per_class[label(s.label)] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
  out["per_class"] = per_class;
  nlohmann::ordered_json names = nlohmann::ordered_json::array();
  for (int c : m.labels) names.push_back(label(c));
  out["confusion_matrix"] = {{"labels", names}, {"matrix", m.confusion}};
  return out;
}

std::vector<std::string> zero_division_warnings(const ClassificationMetrics& m,
                                                const std::vector<std::string>& label_names) {
  auto names = [&](const std::vector<int>& classes) {
    std::vector<std::string> quoted;
    for (int c : classes)
      quoted.push_back(fmt::format("'{}'", c < static_cast<int>(label_names.size()) ? label_names[c] : std::to_string(c)));
    return fmt::format("{}", fmt::join(quoted, ", "));
  };
  auto plural = [](const std::vector<int>& classes) { return classes.size() == 1 ? "class" : "classes"; };
  std::vector<std::string> lines;
  if (!m.never_predicted.empty())
    lines.push_back(fmt::format("precision and F1 of {} {} set to 0: never predicted", plural(m.never_predicted),
                                names(m.never_predicted)));
  if (!m.no_true_samples.empty())
    lines.push_back(fmt::format("recall and F1 of {} {} set to 0: no true example", plural(m.no_true_samples),
                                names(m.no_true_samples)));
  if (!m.absent.empty())
    lines.push_back(fmt::format("{} {} neither in the truth nor in the predictions: left out of the averages",
                                plural(m.absent), names(m.absent)));
  if (m.has_probabilities && m.top_k >= m.num_classes)
    lines.push_back(fmt::format("top_k_accuracy with k = {} and {} classes is always 1", m.top_k, m.num_classes));
  if (m.num_classes == 2 && m.has_probabilities && !m.roc_auc)
    lines.push_back("roc_auc is undefined: the truth holds one class only");
  if (m.num_classes == 2 && m.has_probabilities && m.per_class.size() > 0) {
    bool positives = false;
    for (const ClassScores& s : m.per_class)
      if (s.label == 1 && s.support > 0) positives = true;
    if (!positives) lines.push_back(fmt::format("pr_auc is 0: the truth has no example of the positive class {}", names({1})));
  }
  return lines;
}

}  // namespace recmodel::metrics
