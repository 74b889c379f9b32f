// SVG line charts (hw/cost/svg_plot.h).
#include "hw/cost/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/errors.h"

namespace m3vit::hw {

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else o += c;
  }
  return o;
}

std::string num(double v) {
  char b[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-2)) std::snprintf(b, sizeof b, "%.0e", v);
  else if (std::fabs(v - std::round(v)) < 1e-9) std::snprintf(b, sizeof b, "%.0f", v);
  else std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

// "Nice" linear ticks covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi) {
  double span = hi - lo;
  if (span <= 0) span = std::fabs(hi) > 0 ? std::fabs(hi) : 1;
  double step = std::pow(10.0, std::floor(std::log10(span / 5)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (span / (step * m) <= 6) {
      step *= m;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(std::fabs(v) < 1e-12 ? 0 : v);
  return t;
}

}  // namespace

std::string render_svg(const PlotSpec& p) {
  if (p.series.empty()) throw ConfigError("plot '" + p.title + "' has no series");
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const auto& s : p.series) {
    if (s.x.size() != s.y.size() || s.x.empty())
      throw ConfigError("plot '" + p.title + "': series '" + s.name + "' has mismatched or empty x/y");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if ((p.log_x && s.x[i] <= 0) || (p.log_y && s.y[i] <= 0))
        throw ConfigError("plot '" + p.title + "': series '" + s.name + "' has a non-positive value on a log axis");
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!p.ref_label.empty()) {
    ymin = std::min(ymin, p.ref_y);
    ymax = std::max(ymax, p.ref_y);
  }
  auto tx = [&](double v) { return p.log_x ? std::log2(v) : v; };
  auto ty = [&](double v) { return p.log_y ? std::log10(v) : v; };
  double X0 = tx(xmin), X1 = tx(xmax), Y0, Y1;
  std::vector<double> yticks;
  if (p.log_y) {
    Y0 = std::floor(ty(ymin));
    Y1 = std::ceil(ty(ymax));
    if (Y1 == Y0) Y1 = Y0 + 1;
    for (double e = Y0; e <= Y1; e += 1) yticks.push_back(std::pow(10.0, e));
  } else {
    double lo = std::min(0.0, ymin), hi = ymax * 1.05;
    yticks = linear_ticks(lo, hi);
    Y0 = std::min(lo, yticks.front());
    Y1 = std::max(hi, yticks.back());
  }
  if (X1 == X0) X1 = X0 + 1;
  const double L = 70, R = 200, T = 40, B = 50;
  const double W = p.width, H = p.height, pw = W - L - R, ph = H - T - B;
  auto px = [&](double v) { return L + (tx(v) - X0) / (X1 - X0) * pw; };
  auto py = [&](double v) { return T + ph - (ty(v) - Y0) / (Y1 - Y0) * ph; };

  std::ostringstream os;
  os.precision(5);
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << esc(p.title) << "</text>\n";
  // Grid and ticks.
  for (double v : yticks) {
    double y = py(v);
    os << "<line x1=\"" << L << "\" y1=\"" << y << "\" x2=\"" << L + pw << "\" y2=\"" << y
       << "\" stroke=\"#ddd\"/>\n<text x=\"" << L - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << num(v)
       << "</text>\n";
  }
  std::vector<double> xticks;
  if (p.log_x) {
    for (double e = std::ceil(X0); e <= X1 + 1e-9; e += 1) xticks.push_back(std::pow(2.0, e));
  } else {
    xticks = linear_ticks(xmin, xmax);
  }
  for (double v : xticks) {
    double x = px(v);
    os << "<line x1=\"" << x << "\" y1=\"" << T << "\" x2=\"" << x << "\" y2=\"" << T + ph
       << "\" stroke=\"#eee\"/>\n<text x=\"" << x << "\" y=\"" << T + ph + 16 << "\" text-anchor=\"middle\">" << num(v)
       << "</text>\n";
  }
  os << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\"" << ph
     << "\" fill=\"none\" stroke=\"#333\"/>\n";
  os << "<text x=\"" << L + pw / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">" << esc(p.x_label)
     << "</text>\n";
  os << "<text transform=\"translate(16," << T + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << esc(p.y_label)
     << "</text>\n";
  if (!p.ref_label.empty()) {
    double y = py(p.ref_y);
    os << "<line x1=\"" << L << "\" y1=\"" << y << "\" x2=\"" << L + pw << "\" y2=\"" << y
       << "\" stroke=\"#555\" stroke-dasharray=\"2,3\"/>\n<text x=\"" << L + 4 << "\" y=\"" << y - 4
       << "\" fill=\"#555\">" << esc(p.ref_label) << "</text>\n";
  }
  // Series.
  for (size_t k = 0; k < p.series.size(); ++k) {
    const auto& s = p.series[k];
    std::string c = s.color.empty() ? kPalette[k % 6] : s.color;
    os << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\""
       << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
    for (size_t i = 0; i < s.x.size(); ++i) os << px(s.x[i]) << "," << py(s.y[i]) << " ";
    os << "\"/>\n";
    for (size_t i = 0; i < s.x.size(); ++i)
      os << "<circle cx=\"" << px(s.x[i]) << "\" cy=\"" << py(s.y[i]) << "\" r=\"3\" fill=\"" << c << "\"/>\n";
    double ly = T + 14 + 18 * k;
    os << "<line x1=\"" << L + pw + 10 << "\" y1=\"" << ly << "\" x2=\"" << L + pw + 34 << "\" y2=\"" << ly
       << "\" stroke=\"" << c << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "")
       << "/>\n<text x=\"" << L + pw + 40 << "\" y=\"" << ly + 4 << "\">" << esc(s.name) << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace m3vit::hw
