// Adapter between the evaluation driver (train/evaluate.cpp) and the metric meters of eval/: one
// meter per task, fed with the stored prediction at original resolution (eval/prediction.h) and the
// raw ground truth (data/sample.h conventions). The metric of each task that enters Δm is
// eval/delta_m.h's delta_m_metric (evaluate_utils.py:45-70; docs/METRICS.md).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/sample.h"
#include "core/config.h"
#include "train/evaluate.h"

namespace m3vit {

class EvalScorer {
 public:
  // dataset: "pascal", "nyud" or "synthetic" (picks the edge matching tolerance).
  EvalScorer(const std::string& dataset, const ModelConfig& cfg, const std::vector<std::string>& tasks);
  ~EvalScorer();
  // pred: stored prediction (class ids / 0..255 values / depth in metres); gt: the raw label.
  void add(const std::string& task, const ImageF& pred, const ImageF& gt, const std::string& what);
  // Fills r.metrics (task -> metric -> value) and r.headline (task -> its Δm metric).
  void finish(EvalResult& r) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The authors' references for pascal / nyud restricted to `tasks`; empty for other data sets.
std::map<std::string, double> default_references(const std::string& dataset, const std::vector<std::string>& tasks);

}  // namespace m3vit
