// Saliency IoU / precision / recall over 15 thresholds (eval/saliency_meter.h).
#include "eval/saliency_meter.h"

#include "common/errors.h"

namespace m3vit {

SaliencyMeter::SaliencyMeter() {
  // np.linspace(0.2, 0.9, 15): start + i * step, the last one exactly the stop value.
  const int n = 15;
  const double step = (0.9 - 0.2) / (n - 1);
  for (int i = 0; i < n; ++i) tau_.push_back(i == n - 1 ? 0.9 : 0.2 + i * step);
  iou_sum_.assign(n, 0.0);
  p_sum_.assign(n, 0.0);
  r_sum_.assign(n, 0.0);
}

void SaliencyMeter::update(const ImageF& pred, const ImageF& gt, const std::string& what) {
  if (!pred.same_shape(gt) || pred.c != 1)
    throw ShapeError("saliency " + what + ": prediction " + shape_of(pred) + " vs ground truth " + shape_of(gt));
  const size_t n = gt.data.size();
  std::vector<float> p(n);
  for (size_t k = 0; k < n; ++k) p[k] = pred.data[k] / 255.f;
  for (size_t t = 0; t < tau_.size(); ++t) {
    const float tau = static_cast<float>(tau_[t]);
    int64_t tp = 0, fp = 0, fn = 0;
    for (size_t k = 0; k < n; ++k) {
      const bool g = gt.data[k] != 0.f, m = p[k] > tau;
      tp += g && m;
      fp += !g && m;
      fn += g && !m;
    }
    const double iou = (tp + fn == 0 && tp + fp == 0) ? 1.0 : static_cast<double>(tp) / static_cast<double>(tp + fp + fn);
    iou_sum_[t] += iou;
    p_sum_[t] += tp / (tp + fp + 1e-12);
    r_sum_[t] += tp / (tp + fn + 1e-12);
  }
  ++images_;
}

SaliencyMeter::Result SaliencyMeter::result() const {
  if (images_ == 0) throw ConfigError("saliency meter: no images were evaluated");
  Result r;
  r.images = images_;
  r.thresholds = tau_;
  for (size_t t = 0; t < tau_.size(); ++t) {
    const double iou = iou_sum_[t] / images_, p = p_sum_[t] / images_, rc = r_sum_[t] / images_;
    r.mean_iou.push_back(iou);
    r.mean_precision.push_back(p);
    r.mean_recall.push_back(rc);
    r.f.push_back(2 * p * rc / (p + rc + 1e-12));
    if (t == 0 || iou > r.miou) r.miou = iou;
    if (t == 0 || r.f.back() > r.max_f) r.max_f = r.f.back();
  }
  return r;
}

}  // namespace m3vit
