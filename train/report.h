// The demo's HTML report: one self-contained file (pictures inlined as base64 PNG, charts as inline
// SVG) with the metrics before and after training, the loss curves read from the training log, input /
// ground truth / single-task prediction for a few validation images, and per MoE layer a heat map of
// which experts each task's router picks (the paper's Fig. 4 idea: tasks use different experts).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "train/evaluate.h"

namespace m3vit {

// One point of a loss curve: step and named values ("loss", "aux", per-task losses).
struct CurvePoint {
  int64_t step = 0;
  std::map<std::string, double> values;
};

// Reads the "train" records of a training log (train_log.jsonl).
std::vector<CurvePoint> read_loss_curve(const std::string& log_path);

// How often each expert is among a token's top-k, per task and MoE layer.
struct ExpertUsage {
  std::vector<std::string> tasks;
  std::vector<int> moe_blocks;  // block index of each MoE layer
  int experts = 0;
  // share[task][layer][expert] = selections / (tokens · k); each [task][layer] row sums to 1.
  std::vector<std::vector<std::vector<double>>> share;
};

// A row of the picture table: one validation image, the PNG files (relative to the report's folder).
struct PictureRow {
  std::string id;
  std::string input;                                             // input image
  std::map<std::string, std::pair<std::string, std::string>> gt_pred;  // task -> (ground truth, prediction)
};

struct DemoReport {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;  // shown as a two-column list (model, data, run)
  std::vector<std::string> tasks;
  bool has_before = false;
  EvalResult before, after;                                // metrics at initialisation and after training
  std::vector<CurvePoint> curve;
  std::vector<PictureRow> pictures;
  ExpertUsage usage;
};

// Writes `dir`/report.html atomically; the PNGs named in `pictures` are read from `dir` and inlined.
void write_report(const std::string& dir, const DemoReport& r);

// The pieces, for tests: an SVG line chart of several series over steps (each scaled to its own
// first value when `relative`), and an SVG heat map of a rows × cols matrix with labels.
std::string svg_line_chart(const std::vector<CurvePoint>& curve, const std::vector<std::string>& series,
                           const std::string& title, bool relative, int width = 640, int height = 260);
std::string svg_heat_map(const std::vector<std::vector<double>>& m, const std::vector<std::string>& row_labels,
                         const std::vector<std::string>& col_labels, const std::string& title);
std::string base64_encode(const std::string& bytes);
std::string html_escape(const std::string& s);

}  // namespace m3vit
