// Validation as the authors score it (docs/TRAINING.md; evaluation/evaluate_utils.py:275-385): the model in
// eval mode at the fixed input size, each task's output post-processed (argmax / 255·sigmoid /
// (n+1)·255/2 / raw depth), resized to the image's ORIGINAL resolution (nearest for labels, bilinear
// otherwise), quantised to uint8 like their PNGs (depth stays float), and scored against the
// original-resolution ground truth with the metric meters of eval/. Δm is taken against single-task
// references (the authors' hard-coded numbers by default).
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/multitask_model.h"

namespace m3vit {

struct EvalOptions {
  int batch_size = 8;
  int workers = 2;
  std::vector<std::string> tasks;             // empty: every task of the model
  std::map<std::string, double> references;   // Δm references; empty: the data set's defaults
  std::string png_dir;                        // non-empty: write <png_dir>/<task>/<id>.png per image
  int64_t max_images = 0;                     // > 0: only the first images of the split
  bool progress = true;
  bool single_task = false;                   // one backbone pass per task (forward_task) even for a
                                              // shared gate; multi-gate/task_cond are per task anyway
};

struct EvalResult {
  std::string dataset;                                        // "pascal", "nyud", "synthetic"
  std::vector<std::string> tasks;                             // evaluated tasks, model order
  std::map<std::string, std::map<std::string, double>> metrics;  // task -> metric name -> value
  std::map<std::string, double> headline;                     // task -> the value Δm uses
  std::map<std::string, double> references;                   // task -> S_t used for Δm
  double delta_m = std::numeric_limits<double>::quiet_NaN();  // percent; NaN without references
  int64_t images = 0;
  double seconds = 0;
};

// A model built from `cfg` with weights from a training checkpoint (m3vit-train-v1, whose model config
// must equal `cfg`) or anything model/checkpoint.h reads (our export, the authors' .pth or shard
// directory), strictly: every tensor must be present. Returned in eval mode.
MultiTaskModel load_model_for_eval(const ModelConfig& cfg, const std::string& weights);

// Scores `model` on `val`. The model is switched to eval mode (and left there).
EvalResult evaluate_model(MultiTaskModelImpl& model, const Dataset& val, const EvalOptions& opt);

// Δm of the result against references (task -> value), over the tasks present in both.
double delta_m_of(const EvalResult& r, const std::map<std::string, double>& references);

// A fixed-width table for the terminal, and the JSON form ({"dataset", "images", "tasks": {task:
// {metric: value}}, "delta_m", "references"}).
std::string eval_table(const EvalResult& r);
std::string eval_json(const EvalResult& r);

}  // namespace m3vit
