#include "report/svg_chart.h"

#include <doctest/doctest.h>

#include <fmt/format.h>

using namespace recmodel::report;

namespace {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("report escape: markup, quotes, control characters and invalid UTF-8") {
  CHECK(escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  CHECK(escape("caf\xC3\xA9 \xE4\xB8\xAD") == "caf\xC3\xA9 \xE4\xB8\xAD");
  CHECK(escape("a\x01" "b") == "a\uFFFD" "b");
  CHECK(escape("bad \xFF byte") == "bad \uFFFD byte");
  CHECK(escape("cut \xE4\xB8") == "cut \uFFFD\uFFFD");
  CHECK(escape("overlong \xC0\xAF") == "overlong \uFFFD\uFFFD");
}

TEST_CASE("report nice_axis picks round ticks covering the range") {
  Axis a = nice_axis(0, 0.93);
  CHECK(a.step == doctest::Approx(0.2));
  REQUIRE(a.ticks.size() == 6);
  CHECK(a.ticks.front() == 0.0);
  CHECK(a.ticks.back() == doctest::Approx(1.0));
  Axis b = nice_axis(3, 97);
  CHECK(b.step == 20.0);
  CHECK(b.ticks == std::vector<double>{0, 20, 40, 60, 80, 100});
  Axis c = nice_axis(-0.37, 0.41, 5);
  CHECK(c.lo <= -0.37);
  CHECK(c.hi >= 0.41);
  CHECK(c.step == doctest::Approx(0.2));
  Axis flat = nice_axis(5, 5);
  CHECK(flat.lo < 5);
  CHECK(flat.hi > 5);
  Axis zero = nice_axis(0, 0);
  CHECK(zero.lo == -1.0);
  CHECK(zero.hi == 1.0);
  Axis small = nice_axis(0, 2e-3);
  CHECK(small.step == doctest::Approx(5e-4));
  CHECK(small.ticks.size() == 5);
}

TEST_CASE("report tick_label prints the digits the step needs") {
  CHECK(tick_label(0.30000000000000004, 0.1) == "0.3");
  CHECK(tick_label(0.25, 0.25) == "0.25");
  CHECK(tick_label(1200, 200) == "1200");
  CHECK(tick_label(0, 0.2) == "0");
  CHECK(tick_label(1.5e-3, 5e-4) == "1.5e-03");
  CHECK(tick_label(2e-5, 1e-5) == "2e-05");
}

TEST_CASE("report viridis runs from dark purple to yellow") {
  CHECK(viridis(0) == "#440154");
  CHECK(viridis(1) == "#fde725");
  CHECK(viridis(-3) == "#440154");
  CHECK(viridis(5.0 / 9) == "#1f9e89");
}

TEST_CASE("report heatmap has one cell per pair of labels with its count") {
  Heatmap map{"confusion-matrix", "t", "true class", "predicted class", {"a", "<b>", "c"},
              {{5, 1, 0}, {2, 7, 1}, {0, 0, 4}}};
  const std::string svg = heatmap(map);
  CHECK(svg.rfind("<svg id=\"confusion-matrix\"", 0) == 0);
  CHECK(occurrences(svg, "<rect class=\"cell\"") == 9);
  CHECK(svg.find("data-row=\"1\" data-column=\"2\" data-count=\"1\"") != std::string::npos);
  CHECK(svg.find("data-row=\"1\" data-column=\"1\" data-count=\"7\"") != std::string::npos);
  // The counts are text, the label escaped.
  CHECK(svg.find(">7</text>") != std::string::npos);
  CHECK(svg.find("&lt;b&gt;") != std::string::npos);
  CHECK(svg.find("<b>") == std::string::npos);
  // Row 1's largest share (7 of 10) takes the colour of 0.7.
  CHECK(svg.find("data-count=\"7\" x=\"" ) != std::string::npos);
  CHECK(svg.find(viridis(0.7)) != std::string::npos);

  Heatmap big{"m", "t", "r", "c", {}, {}};
  for (int i = 0; i < 120; ++i) big.labels.push_back("class" + std::to_string(i));
  big.counts.assign(120, std::vector<int64_t>(120, 1));
  CHECK(occurrences(heatmap(big), "<rect class=\"cell\"") == 120 * 120);
}

TEST_CASE("report bar_chart draws each series in each bin") {
  BarChart chart;
  chart.id = "drift-score";
  chart.edges = {0, 0.5, 1, 1.5};
  chart.series = {{"reference", {0.2, 0.5, 0.3}}, {"live", {0.1, 0.4, 0.5}}};
  const std::string svg = bar_chart(chart);
  CHECK(occurrences(svg, "<rect class=\"bar\"") == 6);
  CHECK(svg.find("data-series=\"live\" data-bin=\"2\" data-value=\"0.5\"") != std::string::npos);
  CHECK(svg.find(">reference</text>") != std::string::npos);
  BarChart categories;
  categories.id = "drift-label";
  categories.categories = {"x", "y"};
  categories.series = {{"reference", {0.5, 0.5}}};
  const std::string svg2 = bar_chart(categories);
  CHECK(occurrences(svg2, "<rect class=\"bar\"") == 2);
  CHECK(svg2.find(">y</text>") != std::string::npos);
}

TEST_CASE("report line_chart draws every series and the marked step") {
  LineChart chart;
  chart.id = "training-curves";
  chart.x_label = "step";
  chart.panels = {{"loss", {{"training loss", {10, 20, 30}, {1.2, 0.8, 0.5}}}, false},
                  {"dev metrics", {{"dev accuracy", {15, 30}, {0.6, 0.9}}}, false}};
  chart.marker_x = 30;
  chart.marker_label = "best step 30";
  const std::string svg = line_chart(chart);
  CHECK(occurrences(svg, "<polyline class=\"series\"") == 2);
  CHECK(occurrences(svg, "<circle class=\"point\"") == 5);
  CHECK(occurrences(svg, "<line class=\"marker\" data-x=\"30\"") == 2);
  CHECK(svg.find(">best step 30</text>") != std::string::npos);
  CHECK(svg.find("data-series=\"dev accuracy\"") != std::string::npos);
}

TEST_CASE("report reliability_chart has the diagonal and one bar per non-empty bin") {
  ReliabilityChart chart{"reliability", "t", recmodel::metrics::calibration({0.95, 0.9, 0.15, 0.92}, {1, 0, 1, 0}, 10)};
  const std::string svg = reliability_chart(chart);
  CHECK(occurrences(svg, "<line class=\"diagonal\"") == 1);
  CHECK(occurrences(svg, "<rect class=\"bin\"") == 3);
  CHECK(svg.find("data-count=\"2\" data-accuracy=\"0.5\"") != std::string::npos);
  CHECK(svg.find("ECE " + fmt::format("{:.4f}", chart.calibration.ece)) != std::string::npos);
}
