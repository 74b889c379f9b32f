// Saliency: max-over-thresholds IoU ("mIoU") and maxF (authors' evaluation/eval_sal.py:21-65 with
// jaccard.py:12-48; spec §7.2). For 15 thresholds tau = linspace(0.2, 0.9, 15) each image is binarised
// as pred/255 > tau; per image IoU (1 when prediction and ground truth are both empty), precision
// tp/(tp+fp+1e-12), recall tp/(tp+fn+1e-12). Per tau: mean IoU, mean P, mean R over images and
// F = 2 P R / (P + R + 1e-12). Reported: mIoU = max_tau mean IoU (used in Δm), maxF = max_tau F.
// The comparison pred/255 > tau is made in float32, as numpy 1.x and torch do for a float32 map
// against a float64 scalar (so 51/255 > 0.2 is false).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/sample.h"

namespace m3vit {

class SaliencyMeter {
 public:
  SaliencyMeter();

  // pred: the stored prediction, 0..255 (= 255 sigmoid, truncated); gt: {0,1} (non-zero = salient).
  void update(const ImageF& pred, const ImageF& gt, const std::string& what = "");

  struct Result {
    double miou = 0, max_f = 0;
    std::vector<double> thresholds, mean_iou, mean_precision, mean_recall, f;  // per threshold
    int64_t images = 0;
  };
  Result result() const;

  const std::vector<double>& thresholds() const { return tau_; }

 private:
  std::vector<double> tau_;
  std::vector<double> iou_sum_, p_sum_, r_sum_;
  int64_t images_ = 0;
};

}  // namespace m3vit
