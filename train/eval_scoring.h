// Adapter between the evaluation driver (train/evaluate.cpp) and the metric meters of eval/: one
// meter per task, fed with the post-processed prediction at original resolution and the raw ground
// truth (data/sample.h conventions), and the metric each task contributes to Δm (spec §7.2-7.3):
//   semseg, human_parts: mIoU (higher is better); sal: max-over-thresholds mean IoU (higher);
//   normals: mean angular error in degrees (lower); depth: RMSE (lower); edge: odsF (higher).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/sample.h"
#include "model/config.h"
#include "train/evaluate.h"

namespace m3vit {

class EvalScorer {
 public:
  EvalScorer(const std::string& dataset, const ModelConfig& cfg, const std::vector<std::string>& tasks);
  ~EvalScorer();
  // pred: [1,H,W] class ids / 0..255 uint8 values / depth; [3,H,W] normals 0..255. gt: raw label.
  void add(const std::string& task, const ImageF& pred, const ImageF& gt);
  // Fills r.metrics and r.headline.
  void finish(EvalResult& r) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The authors' single-task references (evaluate_utils.py:354-385): PASCAL semseg 0.662,
// human_parts 0.599, sal 0.663, normals 13.9; NYUD semseg 0.439, depth 0.585, normals 19.763.
// Values are in the units of headline metrics (fractions for IoU). Empty for other data sets.
std::map<std::string, double> default_references(const std::string& dataset);
bool lower_is_better(const std::string& task);
std::string headline_metric(const std::string& task);

}  // namespace m3vit
