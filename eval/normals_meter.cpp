// Angular error statistics for surface normals (eval/normals_meter.h).
#include "eval/normals_meter.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

namespace {
constexpr int kBins = 1 << 21;
constexpr double kBinWidth = 180.0 / kBins;
}  // namespace

NormalsMeter::NormalsMeter() : hist_(kBins, 0) {}

void NormalsMeter::update(const ImageF& pred, const ImageF& gt, const std::string& what) {
  accumulate(pred, true, gt, what);
}

void NormalsMeter::update_unit(const ImageF& pred, const ImageF& gt, const std::string& what) {
  accumulate(pred, false, gt, what);
}

void NormalsMeter::accumulate(const ImageF& pred, bool stored, const ImageF& gt, const std::string& what) {
  if (!pred.same_shape(gt) || pred.c != 3)
    throw ShapeError("normals " + what + ": prediction " + shape_of(pred) + " vs ground truth " + shape_of(gt));
  const size_t np = gt.plane_size();
  for (size_t k = 0; k < np; ++k) {
    const double g[3] = {gt.data[k], gt.data[np + k], gt.data[2 * np + k]};
    if (g[0] == kIgnoreLabel || g[1] == kIgnoreLabel || g[2] == kIgnoreLabel) continue;
    const double gn = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
    if (gn == 0) continue;
    float p[3];
    for (int c = 0; c < 3; ++c) {
      const float v = pred.data[c * np + k];
      if (!std::isfinite(v)) throw NumericError("normals " + what + ": the prediction has a NaN/Inf value");
      p[c] = stored ? 2.f * v / 255.f - 1.f : v;  // float32, as cv2.imread(...).astype(np.float32)
    }
    const double pn = std::sqrt(double(p[0]) * p[0] + double(p[1]) * p[1] + double(p[2]) * p[2]) + 1e-12;
    const double dot = (p[0] * g[0] + p[1] * g[1] + p[2] * g[2]) / (pn * (gn + 1e-12));
    const double deg = std::acos(std::clamp(dot, -1.0, 1.0)) * 180.0 / M_PI;
    sum_ += deg;
    sum_sq_ += deg * deg;
    ++n_;
    n11_ += deg < 11.25;
    n22_ += deg < 22.5;
    n30_ += deg < 30;
    ++hist_[std::min(kBins - 1, static_cast<int>(deg / kBinWidth))];
  }
}

NormalsMeter::Result NormalsMeter::result() const {
  if (n_ == 0) throw ConfigError("normals meter: no valid pixels were evaluated");
  Result r;
  r.pixels = n_;
  r.mean = sum_ / n_;
  r.rmse = std::sqrt(sum_sq_ / n_);
  r.within_11_25 = 100.0 * n11_ / n_;
  r.within_22_5 = 100.0 * n22_ / n_;
  r.within_30 = 100.0 * n30_ / n_;
  // numpy's median: the middle value, or the mean of the two middle values. Each is located in its
  // histogram bin and placed linearly inside it by rank.
  auto value_at_rank = [&](int64_t rank) {  // 0-based
    int64_t seen = 0;
    for (int b = 0; b < kBins; ++b) {
      if (seen + hist_[b] > rank) return (b + (rank - seen + 0.5) / hist_[b]) * kBinWidth;
      seen += hist_[b];
    }
    return 180.0;
  };
  r.median = n_ % 2 ? value_at_rank(n_ / 2) : 0.5 * (value_at_rank(n_ / 2 - 1) + value_at_rank(n_ / 2));
  return r;
}

}  // namespace m3vit
