// Saliency: max-over-thresholds IoU ("mIoU") and maxF (authors' evaluation/eval_sal.py:21-65 with
// jaccard.py:12-48; docs/METRICS.md). For 15 thresholds tau = linspace(0.2, 0.9, 15) each image is binarised
// as pred/255 > tau; per image IoU (1 when prediction and ground truth are both empty), precision
// tp/(tp+fp+1e-12), recall tp/(tp+fn+1e-12). Per tau: mean IoU, mean P, mean R over images and
// F = 2 P R / (P + R + 1e-12). Reported: mIoU = max_tau mean IoU (used in Δm), maxF = max_tau F.
// The stored prediction is a uint8 value v, so v/255 and tau differ by at least 0.25/255 unless they
// are equal (v = 51, 102, 153, 204); equal values are not salient (strict >), in float32 as in float64.
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
