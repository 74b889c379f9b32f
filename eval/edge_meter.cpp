// Boundary precision / recall over thresholds, ODS / OIS / AP (eval/edge_meter.h).
#include "eval/edge_meter.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "common/errors.h"
#include "data/edge_maps.h"
#include "eval/boundary_matching.h"

namespace m3vit {

double edge_tolerance_for(const std::string& dataset) {
  if (dataset == "pascal" || dataset == "synthetic") return 0.0075;
  if (dataset == "nyud") return 0.011;
  throw ConfigError("unknown data set '" + dataset + "' for the edge tolerance (pascal, nyud, synthetic)");
}

void boundary_prf(const EdgeMeter::Counts& c, double* p, double* r, double* f) {
  // BSDS: P = cntP / (sumP + (sumP == 0)), R likewise, F = 2PR / (P + R + ((P + R) == 0)).
  *p = static_cast<double>(c.matched) / (c.predicted + (c.predicted == 0));
  *r = static_cast<double>(c.matched) / (c.ground_truth + (c.ground_truth == 0));
  *f = 2 * *p * *r / (*p + *r + ((*p + *r) == 0));
}

EdgeMeter::EdgeMeter(EdgeMeterOptions opts) : opts_(opts) {
  if (opts_.thresholds < 1) throw ConfigError("edge meter needs at least one threshold");
  if (!(opts_.max_dist_ratio >= 0)) throw ConfigError("edge meter: the distance tolerance must be >= 0");
  total_.resize(opts_.thresholds);
}

std::vector<EdgeMeter::Counts> EdgeMeter::image_counts(const ImageF& pred, const ImageF& gt) const {
  const int h = gt.h, w = gt.w;
  const double max_dist = opts_.max_dist_ratio * std::sqrt(double(h) * h + double(w) * w);
  std::vector<uint8_t> g(gt.data.size());
  for (size_t k = 0; k < g.size(); ++k) g[k] = gt.data[k] >= 0.5f && gt.data[k] != kIgnoreLabel;
  const BoundaryTargets targets = make_boundary_targets(g, h, w, max_dist);
  std::vector<Counts> out(opts_.thresholds);
  // Thresholds are independent: spread them over the cores (each iteration owns its buffers).
#pragma omp parallel for schedule(dynamic)
  for (int t = 0; t < opts_.thresholds; ++t) {
    const double tau = (t + 1.0) / (opts_.thresholds + 1.0);
    std::vector<uint8_t> b(g.size());
    for (size_t k = 0; k < b.size(); ++k) b[k] = pred.data[k] / 255.0 >= tau;
    if (opts_.thin_prediction) thin_binary(b, h, w);
    const BoundaryMatch m = match_boundaries(b, targets);
    out[t] = {m.matched, m.predicted, m.ground_truth};
  }
  return out;
}

void EdgeMeter::update(const ImageF& pred, const ImageF& gt, const std::string& what) {
  if (!pred.same_shape(gt) || pred.c != 1)
    throw ShapeError("edge " + what + ": prediction " + shape_of(pred) + " vs ground truth " + shape_of(gt));
  for (float v : pred.data)
    if (!std::isfinite(v)) throw NumericError("edge " + what + ": the prediction has a NaN/Inf value");
  const std::vector<Counts> c = image_counts(pred, gt);
  int best = 0;
  double best_f = -1;
  for (int t = 0; t < opts_.thresholds; ++t) {
    total_[t].matched += c[t].matched;
    total_[t].predicted += c[t].predicted;
    total_[t].ground_truth += c[t].ground_truth;
    double p, r, f;
    boundary_prf(c[t], &p, &r, &f);
    if (f > best_f) best_f = f, best = t;
  }
  ois_total_.matched += c[best].matched;
  ois_total_.predicted += c[best].predicted;
  ois_total_.ground_truth += c[best].ground_truth;
  ++images_;
}

EdgeMeter::Result EdgeMeter::result() const {
  if (images_ == 0) throw ConfigError("edge meter: no images were evaluated");
  Result r;
  r.images = images_;
  for (int t = 0; t < opts_.thresholds; ++t) {
    double p, rc, f;
    boundary_prf(total_[t], &p, &rc, &f);
    r.thresholds.push_back((t + 1.0) / (opts_.thresholds + 1.0));
    r.precision.push_back(p);
    r.recall.push_back(rc);
    r.f.push_back(f);
    if (t == 0 || f > r.ods_f) r.ods_f = f, r.ods_precision = p, r.ods_recall = rc, r.ods_threshold = r.thresholds.back();
  }
  boundary_prf(ois_total_, &r.ois_precision, &r.ois_recall, &r.ois_f);
  // AP: keep one point per distinct recall (the highest threshold reaching it, as MATLAB's legacy
  // unique keeps the last occurrence), interpolate P linearly at R = 0:0.01:1 within the range.
  std::map<double, double> pr;  // recall -> precision
  for (int t = 0; t < opts_.thresholds; ++t) pr[r.recall[t]] = r.precision[t];
  if (pr.size() > 1) {
    std::vector<double> R, P;
    for (const auto& [rc, p] : pr) R.push_back(rc), P.push_back(p);
    double sum = 0;
    for (int i = 0; i <= 100; ++i) {
      const double q = i / 100.0;
      if (q < R.front() || q > R.back()) continue;
      const size_t j = std::upper_bound(R.begin(), R.end(), q) - R.begin();
      if (j == R.size()) {
        sum += P.back();
        continue;
      }
      const double t = (q - R[j - 1]) / (R[j] - R[j - 1]);
      sum += P[j - 1] + t * (P[j] - P[j - 1]);
    }
    r.ap = sum / 100;
  }
  return r;
}

}  // namespace m3vit
