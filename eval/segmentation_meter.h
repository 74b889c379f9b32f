// Dataset-level mIoU for semseg and human parts (authors' evaluation/eval_semseg.py:36-80 and
// eval_human_parts.py:21-75; docs/METRICS.md). Over the whole set, per class c:
//   TP_c = #(gt = c, pred = c), FP_c = #(gt != c, pred = c), FN_c = #(gt = c, pred != c), gt != 255 only;
//   IoU_c = TP_c / max(TP_c + FP_c + FN_c, 1e-8);  mIoU = mean over all classes (an absent class counts 0).
// Human parts additionally skip images whose ground truth is one value, 0 or 255 (no person).
#pragma once

#include <cstdint>
#include <vector>

#include "data/sample.h"

namespace m3vit {

class SegmentationMeter {
 public:
  // num_classes: 21 PASCAL semseg, 40 NYUD, 8 synthetic, 7 human parts.
  explicit SegmentationMeter(int num_classes, bool skip_background_only_images = false);

  // pred: class ids (the stored prediction, [1,H,W]); gt: class ids with 255 = ignore, same shape.
  // Throws ShapeError naming `what` on a shape mismatch.
  void update(const ImageF& pred, const ImageF& gt, const std::string& what = "");

  struct Result {
    double miou = 0;
    std::vector<double> iou;  // per class
    int64_t images = 0;       // images counted
  };
  Result result() const;

  const std::vector<int64_t>& tp() const { return tp_; }
  const std::vector<int64_t>& fp() const { return fp_; }
  const std::vector<int64_t>& fn() const { return fn_; }

 private:
  int n_;
  bool skip_bg_;
  std::vector<int64_t> tp_, fp_, fn_;
  int64_t images_ = 0;
};

}  // namespace m3vit
