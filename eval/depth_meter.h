// Depth: RMSE and log-RMSE pooled over every valid pixel of the set (authors' evaluation/eval_depth.py:
// 19-58; docs/METRICS.md). valid = ground truth != 0; predictions <= 0 become 1e-9 before the log;
//   rmse = sqrt(sum (gt - pred)^2 / n_valid),  log_rmse = sqrt(sum (ln gt - ln pred)^2 / n_valid).
// A ground-truth value of 255 (the transform's ignore value) is invalid too.
#pragma once

#include <cstdint>
#include <string>

#include "data/sample.h"

namespace m3vit {

class DepthMeter {
 public:
  // pred and gt in metres, [1,H,W]. Throws NumericError naming `what` for a NaN/Inf prediction.
  void update(const ImageF& pred, const ImageF& gt, const std::string& what = "");

  struct Result {
    double rmse = 0, log_rmse = 0;
    int64_t pixels = 0;
  };
  Result result() const;

 private:
  double se_ = 0, log_se_ = 0;
  int64_t n_ = 0;
};

}  // namespace m3vit
