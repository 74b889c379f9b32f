// Boundary detection: odsF, oisF and AP computed natively (the authors can only score edges through
// MATLAB + seism and have it switched off, evaluate_utils.py:324-327; AUTHORS_CODE.md Q35).
// Following the boundary benchmark (BSDS500 / seism 'fb'): for 99 thresholds tau = 0.01 .. 0.99 the
// stored prediction is binarised as v/255 >= tau (seism's read_one_png.m), thinned to one-pixel
// boundaries (skimage's thin, the algorithm of MATLAB's bwmorph 'thin'), and matched one-to-one to the
// ground-truth boundary pixels within max_dist = ratio x image diagonal (0.0075 PASCAL, 0.011 NYUD;
// eval/boundary_matching.h). Per threshold we count matched / predicted / ground-truth pixels.
//   P = matched / predicted (0 if none predicted), R = matched / gt (0 if none), F = 2PR / (P + R) (0 if 0).
//   odsF: counts summed over the set per threshold, best F over thresholds.
//   oisF: per image the threshold of best F, its counts summed over the set, F of the sums.
//   AP:   area under the set's P(R) curve, linearly interpolated at R = 0, 0.01, .., 1 inside the
//         recall range reached (BSDS collect_eval_bdry).
// Differences from BSDS: ODS/OIS take the best of the 99 thresholds without BSDS's interpolation
// between neighbouring thresholds; the matching is a maximum matching (not CSA's min-cost one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/sample.h"

namespace m3vit {

struct EdgeMeterOptions {
  double max_dist_ratio = 0.0075;  // of the image diagonal: 0.0075 PASCAL-Context, 0.011 NYUD
  int thresholds = 99;             // tau_k = k / (thresholds + 1), k = 1..thresholds
  bool thin_prediction = true;     // thin the binarised prediction (BSDS does)
};

// The tolerance the MTL literature uses per data set: 0.0075 for "pascal" (and "synthetic"), 0.011 for "nyud".
double edge_tolerance_for(const std::string& dataset);

class EdgeMeter {
 public:
  explicit EdgeMeter(EdgeMeterOptions opts = {});

  // pred: the stored prediction [1,H,W], 0..255 (255 sigmoid, truncated); gt: {0,1} boundary map.
  void update(const ImageF& pred, const ImageF& gt, const std::string& what = "");

  struct Counts {
    int64_t matched = 0, predicted = 0, ground_truth = 0;
  };
  struct Result {
    double ods_f = 0, ods_precision = 0, ods_recall = 0, ods_threshold = 0;
    double ois_f = 0, ois_precision = 0, ois_recall = 0;
    double ap = 0;
    std::vector<double> thresholds, precision, recall, f;  // per threshold, over the set
    int64_t images = 0;
  };
  Result result() const;

  // Counts of one image at every threshold (exposed for tests).
  std::vector<Counts> image_counts(const ImageF& pred, const ImageF& gt) const;

 private:
  EdgeMeterOptions opts_;
  std::vector<Counts> total_;  // per threshold
  Counts ois_total_;
  int64_t images_ = 0;
};

// P, R, F of counts with the benchmark's zero conventions.
void boundary_prf(const EdgeMeter::Counts& c, double* p, double* r, double* f);

}  // namespace m3vit
