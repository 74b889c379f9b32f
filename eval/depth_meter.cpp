// Depth RMSE / log-RMSE (eval/depth_meter.h).
#include "eval/depth_meter.h"

#include <cmath>

#include "common/errors.h"

namespace m3vit {

void DepthMeter::update(const ImageF& pred, const ImageF& gt, const std::string& what) {
  if (!pred.same_shape(gt) || pred.c != 1)
    throw ShapeError("depth " + what + ": prediction " + shape_of(pred) + " vs ground truth " + shape_of(gt));
  for (size_t k = 0; k < gt.data.size(); ++k) {
    const double g = gt.data[k];
    if (g == 0 || g == kIgnoreLabel) continue;
    double p = pred.data[k];
    if (!std::isfinite(p)) throw NumericError("depth " + what + ": the prediction has a NaN/Inf value");
    if (p <= 0) p = 1e-9;
    se_ += (g - p) * (g - p);
    const double dl = std::log(g) - std::log(p);
    log_se_ += dl * dl;
    ++n_;
  }
}

DepthMeter::Result DepthMeter::result() const {
  if (n_ == 0) throw ConfigError("depth meter: no valid pixels were evaluated");
  Result r;
  r.pixels = n_;
  r.rmse = std::sqrt(se_ / n_);
  r.log_rmse = std::sqrt(log_se_ / n_);
  return r;
}

}  // namespace m3vit
