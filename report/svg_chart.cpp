#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace recmodel::report {

namespace {

constexpr const char* kDashes[] = {"", "7 4", "2 3", "9 3 2 3"};
constexpr double kCharWidth = 6.8;  // average advance of a 12px sans-serif character
constexpr const char* kText = "#1a1a1a";
constexpr const char* kGrid = "#e3e3e3";
constexpr const char* kFrame = "#8c8c8c";

// Returns the length of the UTF-8 sequence starting with `lead` at `s[i]` when it is valid, else 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  uint32_t code = 0;
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) length = 2, code = lead & 0x1F;
  else if ((lead & 0xF0) == 0xE0) length = 3, code = lead & 0x0F;
  else if ((lead & 0xF8) == 0xF0) length = 4, code = lead & 0x07;
  else return 0;
  if (i + length > s.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

// Returns how many characters `text` shows (UTF-8 sequences counted once).
size_t display_length(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Returns `text` cut to `max_chars` characters (at a character boundary), "…" when cut.
std::string shortened(std::string_view text, size_t max_chars) {
  if (display_length(text) <= max_chars) return std::string(text);
  size_t chars = 0, i = 0;
  while (i < text.size() && chars + 1 < max_chars) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
    ++chars;
  }
  return std::string(text.substr(0, i)) + "\u2026";
}

double text_width(std::string_view text) { return static_cast<double>(display_length(text)) * kCharWidth; }

// Returns a coordinate for an SVG attribute: two decimals, no trailing zeros.
std::string px(double v) {
  std::string s = fmt::format("{:.2f}", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

// Returns a data value for a data-* attribute: as many digits as it takes to read it back.
std::string data_value(double v) { return fmt::format("{}", v); }

std::string text_element(double x, double y, std::string_view text, std::string_view anchor = "start",
                         std::string_view extra = "") {
  return fmt::format("<text x=\"{}\" y=\"{}\"{}{}>{}</text>", px(x), px(y),
                     anchor == "start" ? std::string() : fmt::format(" text-anchor=\"{}\"", anchor),
                     extra.empty() ? std::string() : " " + std::string(extra), escape(text));
}

std::string svg_open(const std::string& id, const std::string& cls, double width, double height,
                     const std::string& title) {
  return fmt::format(
      "<svg id=\"{0}\" class=\"chart {1}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{2}\" height=\"{3}\" "
      "viewBox=\"0 0 {2} {3}\" role=\"img\" aria-labelledby=\"{0}-title\" font-family=\"system-ui, -apple-system, "
      "'Segoe UI', Roboto, 'DejaVu Sans', sans-serif\" font-size=\"12\" fill=\"{4}\">"
      "<title id=\"{0}-title\">{5}</title>",
      escape(id), cls, px(width), px(height), kText, escape(title));
}

// A linear map from data to pixels.
struct Scale {
  double d0, d1, p0, p1;
  double operator()(double v) const { return d1 == d0 ? p0 : p0 + (v - d0) / (d1 - d0) * (p1 - p0); }
};

// Horizontal grid lines and labels for the y ticks of a plot area.
std::string y_grid(const Axis& axis, const Scale& y, double left, double right) {
  std::string out;
  for (double tick : axis.ticks) {
    const double py = y(tick);
    out += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/>", px(left), px(py),
                       px(right), px(py), kGrid);
    out += text_element(left - 6, py + 4, tick_label(tick, axis.step), "end", "class=\"tick\"");
  }
  return out;
}

// Vertical grid lines for the x ticks, with labels below `label_y` when it is set.
std::string x_grid(const Axis& axis, const Scale& x, double top, double bottom, std::optional<double> label_y) {
  std::string out;
  for (double tick : axis.ticks) {
    const double pxv = x(tick);
    out += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/>", px(pxv), px(top),
                       px(pxv), px(bottom), kGrid);
    if (label_y) out += text_element(pxv, *label_y, tick_label(tick, axis.step), "middle", "class=\"tick\"");
  }
  return out;
}

std::string frame(double left, double top, double right, double bottom) {
  return fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{}\"/>",
                     px(left), px(top), px(right - left), px(bottom - top), kFrame);
}

// A rotated axis title centred on the left of a plot area.
std::string y_title(std::string_view title, double x, double top, double bottom) {
  const double cy = (top + bottom) / 2;
  return fmt::format("<text class=\"axis-title\" x=\"{0}\" y=\"{1}\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 {0} {1})\">{2}</text>",
                     px(x), px(cy), escape(title));
}

double nice_number(double x, bool round) {
  const double exponent = std::floor(std::log10(x));
  const double fraction = x / std::pow(10.0, exponent);
  double nice;
  if (round) nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  else nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * std::pow(10.0, exponent);
}

// Returns the finite extremes of `values` (none when there is no finite value).
std::optional<std::pair<double, double>> extent(const std::vector<double>& values) {
  std::optional<std::pair<double, double>> out;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (!out) out = std::pair{v, v};
    out->first = std::min(out->first, v);
    out->second = std::max(out->second, v);
  }
  return out;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t length = utf8_sequence(text, i);
    if (length == 0) {
      out += "\uFFFD";
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        // Control characters are not allowed in XML text: the SVG would not parse on its own.
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) out += "\uFFFD";
        else out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

Axis nice_axis(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  target = std::max(target, 2);
  const double range = nice_number(hi - lo, false);
  Axis axis;
  axis.step = nice_number(range / (target - 1), true);
  const double first = std::floor(lo / axis.step + 1e-9);
  const double last = std::ceil(hi / axis.step - 1e-9);
  axis.lo = first * axis.step;
  axis.hi = last * axis.step;
  // Each tick from its index, so the labels carry no accumulated rounding (0.30000000000000004).
  for (double k = first; k <= last + 0.5; ++k) {
    double tick = k * axis.step;
    if (std::abs(tick) < axis.step * 1e-9) tick = 0;
    axis.ticks.push_back(tick);
  }
  return axis;
}

std::string tick_label(double value, double step) {
  if (value == 0) return "0";
  const double magnitude = std::max(std::abs(value), std::abs(step));
  if (step < 1e-3 || magnitude >= 1e7) {
    // Scientific with the digits the step needs: 2e-05, 2.5e-05.
    const int step_exponent = static_cast<int>(std::floor(std::log10(step)));
    const int value_exponent = static_cast<int>(std::floor(std::log10(std::abs(value))));
    const int digits = std::clamp(value_exponent - step_exponent + 1, 0, 3);
    std::string s = fmt::format("{:.{}e}", value, digits);
    // 2.500e-05 -> 2.5e-05
    size_t e = s.find('e');
    std::string mantissa = s.substr(0, e);
    if (mantissa.find('.') != std::string::npos) {
      while (mantissa.back() == '0') mantissa.pop_back();
      if (mantissa.back() == '.') mantissa.pop_back();
    }
    return mantissa + s.substr(e);
  }
  int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  // A step of 2.5 × 10^k needs one digit more than 10^k.
  const double scaled = step / std::pow(10.0, -decimals);
  if (std::abs(scaled - std::round(scaled)) > 1e-6) ++decimals;
  return fmt::format("{:.{}f}", value, decimals);
}

std::string viridis(double t) {
  // matplotlib's viridis sampled at k/9 (the palette R's viridis(10) gives).
  static const unsigned char anchors[10][3] = {{0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3E, 0x4A, 0x89},
                                               {0x31, 0x68, 0x8E}, {0x26, 0x82, 0x8E}, {0x1F, 0x9E, 0x89},
                                               {0x35, 0xB7, 0x79}, {0x6D, 0xCD, 0x59}, {0xB4, 0xDE, 0x2C},
                                               {0xFD, 0xE7, 0x25}};
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * 9;
  const int k = std::min(8, static_cast<int>(std::floor(t)));
  const double f = t - k;
  int rgb[3];
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<int>(std::lround(anchors[k][c] + (anchors[k + 1][c] - anchors[k][c]) * f));
  return fmt::format("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
}

std::string line_chart(const LineChart& chart) {
  constexpr double left = 68, right_margin = 18, header = 24, gap = 10, axis_below = 44;
  const double width = chart.width;
  const double right = width - right_margin;
  const double height = chart.panels.size() * chart.panel_height + axis_below;

  std::vector<double> xs;
  for (const auto& panel : chart.panels)
    for (const auto& s : panel.series) xs.insert(xs.end(), s.x.begin(), s.x.end());
  if (chart.marker_x) xs.push_back(*chart.marker_x);
  auto x_extent = extent(xs).value_or(std::pair{0.0, 1.0});
  Axis x_axis = nice_axis(x_extent.first, x_extent.second, 7);
  Scale x{x_axis.lo, x_axis.hi, left, right};

  std::string out = svg_open(chart.id, "line-chart", width, height, chart.title);
  size_t colour = 0;
  for (size_t p = 0; p < chart.panels.size(); ++p) {
    const Panel& panel = chart.panels[p];
    const double top = p * chart.panel_height + header;
    const double bottom = (p + 1) * chart.panel_height - gap;
    std::vector<double> ys;
    for (const auto& s : panel.series) ys.insert(ys.end(), s.y.begin(), s.y.end());
    auto y_extent = extent(ys).value_or(std::pair{0.0, 1.0});
    if (panel.y_from_zero) y_extent.first = std::min(0.0, y_extent.first);
    Axis y_axis = nice_axis(y_extent.first, y_extent.second, 4);
    Scale y{y_axis.lo, y_axis.hi, bottom, top};

    out += fmt::format("<g class=\"panel\" data-panel=\"{}\">", escape(panel.y_label));
    out += text_element(left, top - 8, panel.y_label, "start", "class=\"panel-title\" font-weight=\"600\"");
    // The legend follows the panel's title on its line.
    double cursor = left + text_width(panel.y_label) + 22;
    const size_t first_colour = colour;
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const char* stroke = kSeriesColors[(first_colour + s) % kSeriesColors.size()];
      const char* dash = kDashes[s % 4];
      out += fmt::format("<line class=\"legend-line\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
                         "stroke-width=\"2.5\"{}/>",
                         px(cursor), px(top - 12), px(cursor + 20), px(top - 12), stroke,
                         *dash ? fmt::format(" stroke-dasharray=\"{}\"", dash) : "");
      const std::string name = panel.series[s].x.empty() ? panel.series[s].name + " (no data)" : panel.series[s].name;
      out += text_element(cursor + 25, top - 8, name, "start", "class=\"legend\"");
      cursor += 25 + text_width(name) + 18;
    }
    out += y_grid(y_axis, y, left, right);
    const bool last = p + 1 == chart.panels.size();
    out += x_grid(x_axis, x, top, bottom, last ? std::optional<double>(bottom + 16) : std::nullopt);
    out += frame(left, top, right, bottom);
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const Series& series = panel.series[s];
      const char* stroke = kSeriesColors[(colour++) % kSeriesColors.size()];
      const char* dash = kDashes[s % 4];
      std::string points;
      size_t shown = 0;
      for (size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
        if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
        points += fmt::format("{}{},{}", points.empty() ? "" : " ", px(x(series.x[i])), px(y(series.y[i])));
        ++shown;
      }
      out += fmt::format("<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
                         "stroke-width=\"2\" stroke-linejoin=\"round\"{}/>",
                         escape(series.name), points, stroke,
                         *dash ? fmt::format(" stroke-dasharray=\"{}\"", dash) : "");
      if (shown <= 60) {
        for (size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
          if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
          out += fmt::format("<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>",
                             px(x(series.x[i])), px(y(series.y[i])), stroke,
                             escape(fmt::format("{} at {}: {}", series.name, data_value(series.x[i]),
                                                data_value(series.y[i]))));
        }
      }
    }
    if (chart.marker_x) {
      const double mx = x(*chart.marker_x);
      out += fmt::format("<line class=\"marker\" data-x=\"{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000\" "
                         "stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>",
                         data_value(*chart.marker_x), px(mx), px(top), px(mx), px(bottom));
      if (p == 0 && !chart.marker_label.empty()) {
        const bool fits_right = mx + 6 + text_width(chart.marker_label) < right;
        out += text_element(fits_right ? mx + 5 : mx - 5, top + 14, chart.marker_label, fits_right ? "start" : "end",
                            "class=\"marker-label\" font-weight=\"600\"");
      }
    }
    out += "</g>";
  }
  out += text_element((left + right) / 2, height - 6, chart.x_label, "middle", "class=\"axis-title\"");
  out += "</svg>";
  return out;
}

std::string bar_chart(const BarChart& chart) {
  const bool categorical = !chart.categories.empty();
  const size_t bins = categorical ? chart.categories.size() : (chart.edges.empty() ? 0 : chart.edges.size() - 1);
  size_t longest = 0;
  for (const auto& c : chart.categories) longest = std::max(longest, display_length(c));
  constexpr double left = 68, right_margin = 18, top = 34;
  const double width = chart.width;
  const double right = width - right_margin;
  const double band = bins ? (right - left) / static_cast<double>(bins) : right - left;
  const bool rotate = categorical && (bins > 12 || static_cast<double>(longest) * kCharWidth > band - 4);
  const double label_room = rotate ? std::min<double>(16, longest) * kCharWidth * 0.72 + 14 : 20;
  const double bottom = chart.height - label_room - 24;
  const double height = chart.height;

  double highest = 0;
  for (const auto& s : chart.series)
    for (double v : s.values)
      if (std::isfinite(v)) highest = std::max(highest, v);
  Axis y_axis = nice_axis(0, highest > 0 ? highest : 1, 5);
  Scale y{y_axis.lo, y_axis.hi, bottom, top};
  Scale x{0, 1, left, right};
  Axis x_axis;
  if (!categorical && bins) {
    x = Scale{chart.edges.front(), chart.edges.back(), left, right};
    x_axis = nice_axis(chart.edges.front(), chart.edges.back(), 7);
    // Only the ticks inside the bins' range.
    std::vector<double> inside;
    for (double t : x_axis.ticks)
      if (t >= chart.edges.front() - 1e-12 && t <= chart.edges.back() + 1e-12) inside.push_back(t);
    x_axis.ticks = inside;
  }

  std::string out = svg_open(chart.id, "bar-chart", width, height, chart.title);
  // Legend, top left.
  double cursor = left;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    out += fmt::format("<rect class=\"legend-swatch\" x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>",
                       px(cursor), px(top - 24), kSeriesColors[s % kSeriesColors.size()]);
    out += text_element(cursor + 17, top - 14, chart.series[s].name, "start", "class=\"legend\"");
    cursor += 17 + text_width(chart.series[s].name) + 20;
  }
  out += y_grid(y_axis, y, left, right);
  if (!categorical) out += x_grid(x_axis, x, top, bottom, bottom + 16);
  out += y_title(chart.y_label, 16, top, bottom);

  const size_t count = std::max<size_t>(1, chart.series.size());
  for (size_t b = 0; b < bins; ++b) {
    const double x0 = categorical ? left + band * b : x(chart.edges[b]);
    const double x1 = categorical ? left + band * (b + 1) : x(chart.edges[b + 1]);
    const double inner = (x1 - x0) * (categorical ? 0.8 : 0.9);
    const double bar = inner / count;
    const double start = x0 + ((x1 - x0) - inner) / 2;
    const std::string bin_name =
        categorical ? chart.categories[b]
                    : fmt::format("{} to {}", data_value(chart.edges[b]), data_value(chart.edges[b + 1]));
    for (size_t s = 0; s < chart.series.size(); ++s) {
      const double v = b < chart.series[s].values.size() ? chart.series[s].values[b] : 0;
      const double value = std::isfinite(v) ? std::max(0.0, v) : 0;
      const double py = y(value);
      out += fmt::format("<rect class=\"bar\" data-series=\"{}\" data-bin=\"{}\" data-value=\"{}\" x=\"{}\" y=\"{}\" "
                         "width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                         escape(chart.series[s].name), b, data_value(v), px(start + bar * s), px(py),
                         px(std::max(0.5, bar - 0.5)), px(bottom - py), kSeriesColors[s % kSeriesColors.size()],
                         escape(fmt::format("{}, {}: {}", chart.series[s].name, bin_name, data_value(v))));
    }
    if (categorical) {
      const double cx = (x0 + x1) / 2;
      const std::string label = shortened(chart.categories[b], rotate ? 16 : 40);
      if (rotate)
        out += fmt::format("<text class=\"tick\" x=\"{0}\" y=\"{1}\" text-anchor=\"end\" "
                           "transform=\"rotate(-45 {0} {1})\">{2}</text>",
                           px(cx + 4), px(bottom + 12), escape(label));
      else
        out += text_element(cx, bottom + 16, label, "middle", "class=\"tick\"");
    }
  }
  out += frame(left, top, right, bottom);
  out += text_element((left + right) / 2, height - 6, chart.x_label, "middle", "class=\"axis-title\"");
  out += "</svg>";
  return out;
}

std::string heatmap(const Heatmap& map) {
  const size_t n = map.labels.size();
  const double cell = std::clamp(std::floor(520.0 / static_cast<double>(std::max<size_t>(n, 1))), 4.0, 56.0);
  const bool show_labels = cell >= 10;
  size_t longest = 0;
  for (const auto& l : map.labels) longest = std::max(longest, std::min<size_t>(display_length(l), 18));
  const double label_width = show_labels ? static_cast<double>(longest) * kCharWidth + 8 : 0;
  const double left = 30 + label_width;
  const double top = 10;
  const double grid = cell * static_cast<double>(n);
  const double column_room = show_labels ? static_cast<double>(longest) * kCharWidth * 0.72 + 16 : 8;
  const double height = top + grid + column_room + 28;
  const double bar_x = left + grid + 28;
  const double width = bar_x + 16 + 110;

  std::string out = svg_open(map.id, "heatmap", width, height, map.title);
  const std::string gradient = map.id + "-scale";
  out += fmt::format("<defs><linearGradient id=\"{}\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">", escape(gradient));
  for (int k = 0; k <= 10; ++k)
    out += fmt::format("<stop offset=\"{}\" stop-color=\"{}\"/>", px(k / 10.0), viridis(k / 10.0));
  out += "</linearGradient></defs>";

  for (size_t r = 0; r < n; ++r) {
    int64_t row_total = 0;
    for (size_t c = 0; c < n && r < map.counts.size() && c < map.counts[r].size(); ++c) row_total += map.counts[r][c];
    for (size_t c = 0; c < n; ++c) {
      const int64_t count = r < map.counts.size() && c < map.counts[r].size() ? map.counts[r][c] : 0;
      const double share = row_total > 0 ? static_cast<double>(count) / static_cast<double>(row_total) : 0;
      const double x0 = left + cell * c, y0 = top + cell * r;
      out += fmt::format(
          "<rect class=\"cell\" data-row=\"{}\" data-column=\"{}\" data-count=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" "
          "height=\"{}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"{}\"><title>{}</title></rect>",
          r, c, count, px(x0), px(y0), px(cell), px(cell), viridis(share), cell >= 12 ? 1 : 0,
          escape(fmt::format("{} {}, {} {}: {} ({:.1f}% of the row)", map.row_title, map.labels[r], map.column_title,
                             map.labels[c], count, share * 100)));
      const std::string digits = std::to_string(count);
      const double size = std::min(12.0, (cell - 4) / (0.62 * static_cast<double>(digits.size())));
      if (size >= 7) {
        // Light text on viridis' dark end, dark text on its light end.
        out += fmt::format("<text class=\"cell-count\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" "
                           "fill=\"{}\">{}</text>",
                           px(x0 + cell / 2), px(y0 + cell / 2 + size * 0.36), px(size), share > 0.55 ? "#000" : "#fff",
                           digits);
      }
    }
  }
  if (show_labels) {
    for (size_t i = 0; i < n; ++i) {
      const std::string label = shortened(map.labels[i], 18);
      out += text_element(left - 6, top + cell * i + cell / 2 + 4, label, "end", "class=\"row-label\"");
      const double cx = left + cell * i + cell / 2 + 4;
      out += fmt::format("<text class=\"column-label\" x=\"{0}\" y=\"{1}\" text-anchor=\"end\" "
                         "transform=\"rotate(-45 {0} {1})\">{2}</text>",
                         px(cx), px(top + grid + 12), escape(label));
    }
  }
  out += y_title(map.row_title, 14, top, top + grid);
  out += text_element(left + grid / 2, height - 6, map.column_title, "middle", "class=\"axis-title\"");
  // Colour bar: the share of the row a cell holds.
  const double bar_height = std::min(grid, 220.0);
  out += fmt::format("<rect class=\"scale\" x=\"{}\" y=\"{}\" width=\"16\" height=\"{}\" fill=\"url(#{})\" "
                     "stroke=\"{}\"/>",
                     px(bar_x), px(top), px(bar_height), escape(gradient), kFrame);
  for (int k = 0; k <= 2; ++k) {
    const double py = top + bar_height - bar_height * k / 2.0;
    out += text_element(bar_x + 22, py + 4, fmt::format("{}%", k * 50), "start", "class=\"tick\"");
  }
  out += text_element(bar_x, top + bar_height + 18, "share of row", "start", "class=\"legend\"");
  out += "</svg>";
  return out;
}

std::string reliability_chart(const ReliabilityChart& chart) {
  constexpr double left = 60, top = 14, size = 300, legend = 64;
  const double right = left + size, bottom = top + size;
  const double width = right + 24, height = bottom + 40 + legend;
  Scale x{0, 1, left, right}, y{0, 1, bottom, top};
  Axis axis = nice_axis(0, 1, 6);

  std::string out = svg_open(chart.id, "reliability", width, height, chart.title);
  out += y_grid(axis, y, left, right);
  out += x_grid(axis, x, top, bottom, bottom + 16);
  out += y_title("accuracy (share correct)", 16, top, bottom);
  out += text_element((left + right) / 2, bottom + 34, "confidence (probability of the predicted class)", "middle",
                      "class=\"axis-title\"");
  std::string curve;
  for (const auto& bin : chart.calibration.bins) {
    if (bin.count == 0) continue;
    const double x0 = x(bin.lower), x1 = x(bin.upper), py = y(bin.accuracy);
    out += fmt::format("<rect class=\"bin\" data-count=\"{}\" data-accuracy=\"{}\" data-confidence=\"{}\" x=\"{}\" "
                       "y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"0.55\" stroke=\"{}\">"
                       "<title>{}</title></rect>",
                       bin.count, data_value(bin.accuracy), data_value(bin.mean_confidence), px(x0 + 1), px(py),
                       px(std::max(0.5, x1 - x0 - 2)), px(bottom - py), kSeriesColors[5], kSeriesColors[0],
                       escape(fmt::format("confidence {} to {}: {} predictions, accuracy {:.4f}, mean confidence {:.4f}",
                                          data_value(bin.lower), data_value(bin.upper), bin.count, bin.accuracy,
                                          bin.mean_confidence)));
    curve += fmt::format("{}{},{}", curve.empty() ? "" : " ", px(x(bin.mean_confidence)), px(py));
  }
  out += fmt::format("<line class=\"diagonal\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000\" "
                     "stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>",
                     px(left), px(bottom), px(right), px(top));
  out += fmt::format("<polyline class=\"curve\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>", curve,
                     kSeriesColors[3]);
  for (const auto& bin : chart.calibration.bins) {
    if (bin.count == 0) continue;
    out += fmt::format("<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>", px(x(bin.mean_confidence)),
                       px(y(bin.accuracy)), kSeriesColors[3]);
  }
  out += frame(left, top, right, bottom);
  out += text_element(left + 8, top + 18, fmt::format("ECE {:.4f}", chart.calibration.ece), "start",
                      "class=\"ece\" font-weight=\"600\"");
  // Legend below the plot, one entry a line.
  const double ly = bottom + 54;
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"18\" height=\"10\" fill=\"{}\" fill-opacity=\"0.55\" "
                     "stroke=\"{}\"/>",
                     px(left), px(ly - 9), kSeriesColors[5], kSeriesColors[0]);
  out += text_element(left + 24, ly, "accuracy in each confidence bin", "start", "class=\"legend\"");
  out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>", px(left),
                     px(ly + 14), px(left + 18), px(ly + 14), kSeriesColors[3]);
  out += text_element(left + 24, ly + 18, "mean confidence against accuracy", "start", "class=\"legend\"");
  out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000\" stroke-width=\"1.5\" "
                     "stroke-dasharray=\"5 4\"/>",
                     px(left), px(ly + 32), px(left + 18), px(ly + 32));
  out += text_element(left + 24, ly + 36, "perfect calibration", "start", "class=\"legend\"");
  out += "</svg>";
  return out;
}

}  // namespace recmodel::report
