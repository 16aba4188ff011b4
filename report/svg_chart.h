// Charts as inline SVG for the HTML report: line charts of several series, two-series bar
// histograms, a labelled heatmap and a reliability diagram. Every number is a real <text>
// element (selectable, searchable, printed), every text is escaped, and the colours are
// Okabe–Ito for series and viridis for the heatmap, each series also told apart by its dash
// pattern or place, so no chart relies on telling red from green.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/calibration.h"

namespace recmodel::report {

// Okabe–Ito colours in the order series take them: blue, orange, bluish green, vermillion,
// reddish purple, sky blue, black.
inline constexpr std::array<const char*, 7> kSeriesColors = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                                             "#CC79A7", "#56B4E9", "#000000"};

// Returns `text` safe inside HTML/SVG text and quoted attribute values (& < > " ' escaped);
// invalid UTF-8 becomes U+FFFD so the page always decodes.
std::string escape(std::string_view text);

// An axis range with round tick values: 1, 2 or 5 × 10^k apart (Heckbert's "nice numbers").
struct Axis {
  double lo = 0;
  double hi = 1;
  double step = 0.2;
  std::vector<double> ticks;  // lo, lo + step, ..., hi
};

// Returns an axis covering [lo, hi] with about `target` ticks; an empty range is widened.
Axis nice_axis(double lo, double hi, int target = 5);

// Returns `value` printed as a tick `step` apart needs: "0.25", "1200", "2e-05".
std::string tick_label(double value, double step);

// Returns the viridis colour at `t` (clamped to [0, 1]) as "#rrggbb".
std::string viridis(double t);

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

// One plot of a line chart; panels share the x axis and stack top to bottom. The y label is
// the panel's title, written above it with the legend.
struct Panel {
  std::string y_label;
  std::vector<Series> series;
  bool y_from_zero = false;  // the y axis starts at 0 (counts, rates)
};

struct LineChart {
  std::string id;
  std::string title;  // for screen readers (<title>) and the figure's caption
  std::string x_label;
  std::vector<Panel> panels;
  std::optional<double> marker_x;  // a vertical line through every panel (the best step)
  std::string marker_label;
  int width = 960;
  int panel_height = 170;
};

// Returns the chart as an <svg id=...> element: each series a <polyline class="series"
// data-series=NAME> (with <circle class="point"> markers when it has few points), the marker a
// <line class="marker" data-x=X>.
std::string line_chart(const LineChart& chart);

struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per bin
};

// A histogram of one or two series side by side over numeric bins (`edges`, one more than the
// values) or named categories.
struct BarChart {
  std::string id;
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<double> edges;
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
  int width = 760;
  int height = 260;
};

// Returns the chart as an <svg id=...>: each bar a <rect class="bar" data-series=NAME
// data-bin=I data-value=V> with a <title> naming the bin and the value.
std::string bar_chart(const BarChart& chart);

// A square matrix of counts, coloured by each cell's share of its row.
struct Heatmap {
  std::string id;
  std::string title;
  std::string row_title;     // e.g. "true class"
  std::string column_title;  // e.g. "predicted class"
  std::vector<std::string> labels;
  std::vector<std::vector<int64_t>> counts;  // [row][column], labels.size() squared
};

// Returns the heatmap as an <svg id=...>: one <rect class="cell" data-row=R data-column=C
// data-count=N> per cell (labels² of them), the count written in each cell large enough to
// read, and a colour bar for the row share.
std::string heatmap(const Heatmap& map);

struct ReliabilityChart {
  std::string id;
  std::string title;
  metrics::Calibration calibration;
};

// Returns the reliability diagram as an <svg id=...>: the diagonal of perfect calibration
// (<line class="diagonal">), one <rect class="bin" data-count=N> per non-empty bin up to its
// accuracy, and the curve of (mean confidence, accuracy) as <polyline class="curve">.
std::string reliability_chart(const ReliabilityChart& chart);

}  // namespace recmodel::report
