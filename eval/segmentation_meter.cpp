// Dataset-level confusion counts and mIoU (eval/segmentation_meter.h).
#include "eval/segmentation_meter.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

SegmentationMeter::SegmentationMeter(int num_classes, bool skip_background_only_images)
    : n_(num_classes), skip_bg_(skip_background_only_images), tp_(num_classes, 0), fp_(num_classes, 0),
      fn_(num_classes, 0) {
  if (num_classes < 1) throw ConfigError("segmentation meter needs at least one class");
}

void SegmentationMeter::update(const ImageF& pred, const ImageF& gt, const std::string& what) {
  if (!pred.same_shape(gt) || pred.c != 1)
    throw ShapeError("segmentation " + what + ": prediction " + shape_of(pred) + " vs ground truth " + shape_of(gt) +
                     " (resize the prediction to the original size first)");
  if (skip_bg_ && !gt.data.empty()) {
    // eval_human_parts.py:34-36: an image whose ground truth is all 0 or all 255 has no person.
    const float v0 = gt.data[0];
    if ((v0 == 0.f || v0 == kIgnoreLabel) &&
        std::all_of(gt.data.begin(), gt.data.end(), [&](float v) { return v == v0; }))
      return;
  }
  for (size_t k = 0; k < gt.data.size(); ++k) {
    const float g = gt.data[k], p = pred.data[k];
    if (g == kIgnoreLabel) continue;
    // Ids are compared as values, as the authors' (gt == c), (pred == c) masks do.
    const bool g_in = g >= 0 && g < n_ && g == std::floor(g), p_in = p >= 0 && p < n_ && p == std::floor(p);
    if (g_in && p_in && g == p) {
      ++tp_[static_cast<int>(g)];
    } else {
      if (p_in) ++fp_[static_cast<int>(p)];
      if (g_in) ++fn_[static_cast<int>(g)];
    }
  }
  ++images_;
}

SegmentationMeter::Result SegmentationMeter::result() const {
  Result r;
  r.images = images_;
  r.iou.resize(n_);
  double sum = 0;
  for (int c = 0; c < n_; ++c) {
    r.iou[c] = static_cast<double>(tp_[c]) / std::max(static_cast<double>(tp_[c] + fp_[c] + fn_[c]), 1e-8);
    sum += r.iou[c];
  }
  r.miou = sum / n_;
  return r;
}

}  // namespace m3vit
