// Minimal SVG line charts for docs/HARDWARE.md (memory and latency against the expert count):
// several named series over a shared x axis, optional log2 x and log10 y scales, a legend, and an
// optional horizontal reference line (e.g. the board's on-chip capacity). Pure text, no deps.
#pragma once

#include <string>
#include <vector>

namespace m3vit::hw {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
  std::string color;  // CSS colour; empty picks from a palette
  bool dashed = false;
};

struct PlotSpec {
  std::string title, x_label, y_label;
  bool log_x = false;  // base 2 (expert counts)
  bool log_y = false;  // base 10
  std::vector<PlotSeries> series;
  double ref_y = 0;          // draw a horizontal line at this y when ref_label is set
  std::string ref_label;
  int width = 680, height = 400;
};

// Throws ConfigError on an empty plot, mismatched x/y sizes, or non-positive values on a log axis.
std::string render_svg(const PlotSpec& spec);

}  // namespace m3vit::hw
