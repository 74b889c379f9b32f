// The demo's HTML report (see report.h). Plain HTML + inline SVG, no script, no external resource.
#include "train/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/visualize.h"
#include "eval/delta_m.h"

namespace m3vit {

namespace {

std::string num(double v, const char* f = "%.4g") {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string rgb(const std::array<uint8_t, 3>& c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

// Distinct line colours (colour-blind-safe palette of Wong, Nature Methods 2011).
const char* kLineColors[] = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442"};

std::string img_tag(const std::string& dir, const std::string& file, const std::string& alt) {
  if (file.empty()) return "<td></td>";
  const std::string png = read_file(dir + "/" + file);
  return "<td><img alt=\"" + html_escape(alt) + "\" src=\"data:image/png;base64," + base64_encode(png) + "\"></td>";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string base64_encode(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::vector<CurvePoint> read_loss_curve(const std::string& log_path) {
  std::vector<CurvePoint> out;
  std::istringstream in(read_file(log_path));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw FormatError(log_path + ": a line is not JSON: " + line.substr(0, 80));
    }
    if (j.value("type", "") != "train") continue;
    CurvePoint p;
    p.step = j.at("step").get<int64_t>();
    p.values["loss"] = j.at("loss").get<double>();
    if (j.contains("aux")) p.values["aux"] = j["aux"].get<double>();
    if (j.contains("losses"))
      for (auto& [k, v] : j["losses"].items())
        if (v.is_number()) p.values[k] = v.get<double>();
    out.push_back(std::move(p));
  }
  return out;
}

std::string svg_line_chart(const std::vector<CurvePoint>& curve, const std::vector<std::string>& series,
                           const std::string& title, bool relative, int width, int height) {
  const double ml = 56, mr = 150, mt = 24, mb = 32;  // margins: axis labels left/bottom, legend right
  const double pw = width - ml - mr, ph = height - mt - mb;
  // Smoothed series (exponential moving average, 0.9) so that the trend shows through batch noise.
  std::vector<std::vector<std::pair<double, double>>> pts(series.size());
  double xmax = 1, ymin = 1e300, ymax = -1e300;
  for (size_t s = 0; s < series.size(); ++s) {
    double ema = 0, scale = 1;
    bool started = false;
    for (const auto& p : curve) {
      auto it = p.values.find(series[s]);
      if (it == p.values.end() || !std::isfinite(it->second)) continue;
      ema = started ? 0.9 * ema + 0.1 * it->second : it->second;
      if (!started && relative) scale = std::abs(it->second) > 1e-12 ? it->second : 1;
      started = true;
      const double y = ema / scale;
      pts[s].emplace_back(static_cast<double>(p.step), y);
      xmax = std::max(xmax, static_cast<double>(p.step));
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  if (ymin > ymax) ymin = 0, ymax = 1;
  if (relative) ymin = std::min(ymin, 0.0);
  if (ymax - ymin < 1e-12) ymax = ymin + 1;
  auto X = [&](double x) { return ml + pw * x / xmax; };
  auto Y = [&](double y) { return mt + ph * (1 - (y - ymin) / (ymax - ymin)); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<text x=\"" << ml << "\" y=\"15\" font-size=\"13\" font-weight=\"bold\">" << html_escape(title) << "</text>\n";
  o << "<rect x=\"" << ml << "\" y=\"" << mt << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (int k = 0; k <= 4; ++k) {  // y ticks
    const double y = ymin + (ymax - ymin) * k / 4;
    o << "<line x1=\"" << ml - 4 << "\" x2=\"" << ml << "\" y1=\"" << Y(y) << "\" y2=\"" << Y(y) << "\" stroke=\"#999\"/>"
      << "<text x=\"" << ml - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">" << num(y, "%.3g") << "</text>\n";
  }
  for (int k = 0; k <= 4; ++k) {  // x ticks
    const double x = xmax * k / 4;
    o << "<text x=\"" << X(x) << "\" y=\"" << height - mb + 14 << "\" text-anchor=\"middle\">" << num(x, "%.0f")
      << "</text>\n";
  }
  o << "<text x=\"" << ml + pw / 2 << "\" y=\"" << height - 4 << "\" text-anchor=\"middle\">step</text>\n";
  for (size_t s = 0; s < series.size(); ++s) {
    if (pts[s].empty()) continue;
    const char* col = kLineColors[s % 8];
    o << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [x, y] : pts[s]) o << num(X(x), "%.1f") << "," << num(Y(y), "%.1f") << " ";
    o << "\"/>\n";
    const double ly = mt + 14 * s + 8;
    o << "<line x1=\"" << width - mr + 10 << "\" x2=\"" << width - mr + 28 << "\" y1=\"" << ly << "\" y2=\"" << ly
      << "\" stroke=\"" << col << "\" stroke-width=\"2\"/><text x=\"" << width - mr + 32 << "\" y=\"" << ly + 4
      << "\">" << html_escape(series[s]) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string svg_heat_map(const std::vector<std::vector<double>>& m, const std::vector<std::string>& row_labels,
                         const std::vector<std::string>& col_labels, const std::string& title) {
  const int cell = 26, ml = 96, mt = 36;
  const int rows = static_cast<int>(m.size()), cols = rows ? static_cast<int>(m[0].size()) : 0;
  double vmax = 1e-12;
  for (const auto& r : m)
    for (double v : r) vmax = std::max(vmax, v);
  std::ostringstream o;
  const int w = ml + cols * cell + 8, h = mt + rows * cell + 8;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<text x=\"0\" y=\"13\" font-size=\"12\" font-weight=\"bold\">" << html_escape(title) << "</text>\n";
  for (int c = 0; c < cols; ++c)
    o << "<text x=\"" << ml + c * cell + cell / 2 << "\" y=\"" << mt - 6 << "\" text-anchor=\"middle\">"
      << html_escape(c < static_cast<int>(col_labels.size()) ? col_labels[c] : std::to_string(c)) << "</text>\n";
  for (int r = 0; r < rows; ++r) {
    o << "<text x=\"" << ml - 6 << "\" y=\"" << mt + r * cell + cell / 2 + 4 << "\" text-anchor=\"end\">"
      << html_escape(r < static_cast<int>(row_labels.size()) ? row_labels[r] : std::to_string(r)) << "</text>\n";
    for (int c = 0; c < cols; ++c) {
      const double v = m[r][c];
      o << "<rect x=\"" << ml + c * cell << "\" y=\"" << mt + r * cell << "\" width=\"" << cell - 1 << "\" height=\""
        << cell - 1 << "\" fill=\"" << rgb(heat_color(static_cast<float>(v / vmax))) << "\"><title>"
        << html_escape(r < static_cast<int>(row_labels.size()) ? row_labels[r] : "") << ", expert " << c << ": "
        << num(100 * v, "%.1f") << "%</title></rect>\n";
    }
  }
  o << "</svg>\n";
  return o.str();
}

void write_report(const std::string& dir, const DemoReport& r) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << html_escape(r.title)
    << "</title>\n<style>\n"
       "body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}\n"
       "table{border-collapse:collapse;margin:8px 0 20px}td,th{padding:3px 10px;border-bottom:1px solid #ddd;"
       "text-align:left}\n"
       "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
       "img{width:128px;height:auto;image-rendering:pixelated;display:block}\n"
       ".pics td{padding:2px;border:none;vertical-align:top}.pics th{font-weight:normal;font-size:12px}\n"
       ".maps svg{margin:0 18px 18px 0}\n"
       "</style></head><body>\n";
  o << "<h1>" << html_escape(r.title) << "</h1>\n<table>\n";
  for (const auto& [k, v] : r.facts) o << "<tr><th>" << html_escape(k) << "</th><td>" << html_escape(v) << "</td></tr>\n";
  o << "</table>\n";

  // Metrics.
  o << "<h2>Validation metrics</h2>\n<p>Scored as the authors do: predictions resized to the original "
       "resolution, dataset-level mIoU, max-over-thresholds saliency IoU, pooled normal angles and depth "
       "errors; arrows say which direction is better. The metric marked * is the one Δm uses.</p>\n";
  o << "<table><tr><th>task</th><th>metric</th>" << (r.has_before ? "<th>at initialisation</th>" : "")
    << "<th>after training</th></tr>\n";
  for (const auto& t : r.tasks) {
    auto it = r.after.metrics.find(t);
    if (it == r.after.metrics.end()) continue;
    for (const auto& [name, v] : it->second) {
      if (name == "images") continue;
      const bool lower = name == "mean" || name == "median" || name == "rmse" || name == "log_rmse";
      const bool headline = name == delta_m_metric(t);
      o << "<tr><td>" << t << "</td><td>" << name << (lower ? " ↓" : " ↑") << (headline ? " *" : "") << "</td>";
      if (r.has_before) {
        double b = NAN;
        auto bt = r.before.metrics.find(t);
        if (bt != r.before.metrics.end() && bt->second.count(name)) b = bt->second.at(name);
        o << "<td class=\"n\">" << num(b) << "</td>";
      }
      o << "<td class=\"n\"><b>" << num(v) << "</b></td></tr>\n";
    }
  }
  o << "</table>\n";
  if (!std::isnan(r.after.delta_m))
    o << "<p>Δm against the references " << html_escape(nlohmann::json(r.after.references).dump()) << ": <b>"
      << num(r.after.delta_m, "%+.2f") << " %</b></p>\n";

  // Loss curves.
  if (!r.curve.empty()) {
    o << "<h2>Training loss</h2>\n<p>Exponential moving average (0.9) of the per-step values from "
         "train_log.jsonl. Left: the weighted total (tasks + 0.01 × router load-balancing loss). Right: each "
         "task's unweighted loss relative to its first value.</p>\n<div>";
    o << svg_line_chart(r.curve, {"loss"}, "total loss", false, 480, 260);
    o << svg_line_chart(r.curve, r.tasks, "task losses (relative to step 1)", true, 560, 260);
    o << "</div>\n";
  }

  // Pictures.
  if (!r.pictures.empty()) {
    o << "<h2>Single-task inference on validation images</h2>\n<p>Each prediction comes from one backbone "
         "pass with that task's routers and that task's head only (the paper's single-task inference). "
         "Ground truth left, prediction right.</p>\n<table class=\"pics\"><tr><th>input</th>";
    for (const auto& t : r.tasks) o << "<th>" << t << " (truth)</th><th>" << t << " (prediction)</th>";
    o << "</tr>\n";
    for (const auto& row : r.pictures) {
      o << "<tr>" << img_tag(dir, row.input, row.id);
      for (const auto& t : r.tasks) {
        auto it = row.gt_pred.find(t);
        if (it == row.gt_pred.end()) {
          o << "<td></td><td></td>";
          continue;
        }
        o << img_tag(dir, it->second.first, row.id + " " + t + " truth")
          << img_tag(dir, it->second.second, row.id + " " + t + " prediction");
      }
      o << "</tr>\n";
    }
    o << "</table>\n";
  }

  // Expert usage.
  if (!r.usage.share.empty()) {
    o << "<h2>Which experts each task's router uses</h2>\n<p>Share of a task's top-" << "k selections that go "
         "to each expert, over every token of the validation images, per MoE layer (rows: tasks; columns: "
         "experts; brighter = more often). Hover a cell for its value.</p>\n<div class=\"maps\">";
    std::vector<std::string> cols;
    for (int e = 0; e < r.usage.experts; ++e) cols.push_back(std::to_string(e));
    for (size_t l = 0; l < r.usage.moe_blocks.size(); ++l) {
      std::vector<std::vector<double>> m;
      for (size_t t = 0; t < r.usage.tasks.size(); ++t) m.push_back(r.usage.share[t][l]);
      o << svg_heat_map(m, r.usage.tasks, cols, "MoE layer " + std::to_string(l) + " (block " +
                                                   std::to_string(r.usage.moe_blocks[l]) + ")");
    }
    o << "</div>\n";
  }
  o << "</body></html>\n";
  write_file_atomic(dir + "/report.html", o.str());
}

}  // namespace m3vit
