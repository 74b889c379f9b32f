// Surface normals: angular error statistics pooled over every valid pixel of the set (authors'
// evaluation/eval_normals.py:24-65; docs/METRICS.md). pred = 2 v / 255 - 1 from the stored RGB prediction,
// L2-normalised (+1e-12); valid = ground truth of non-zero norm; the ground truth is normalised too;
// angle = degrees(arccos(clip(<pred, gt>, -1, 1))). Reported: mean, median, RMSE = sqrt(mean angle^2),
// and the percentages of pixels under 11.25, 22.5 and 30 degrees.
// The median comes from a 2^21-bin histogram over [0, 180] degrees, interpolated inside the bin, so it
// is exact to within 1e-4 degrees (pooling every angle of PASCAL's val set would take gigabytes); the
// other statistics are exact sums.
// A ground-truth pixel with a channel equal to 255 (the transform's ignore value) is invalid too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/sample.h"

namespace m3vit {

class NormalsMeter {
 public:
  NormalsMeter();

  // pred: the stored prediction [3,H,W], 0..255 per channel; gt: [3,H,W] normals (zero = invalid).
  void update(const ImageF& pred, const ImageF& gt, const std::string& what = "");
  // The same with a prediction already in [-1, 1] (any length; normalised here), e.g. network output.
  void update_unit(const ImageF& pred, const ImageF& gt, const std::string& what = "");

  struct Result {
    double mean = 0, median = 0, rmse = 0;
    double within_11_25 = 0, within_22_5 = 0, within_30 = 0;  // percent
    int64_t pixels = 0;
  };
  Result result() const;

 private:
  void accumulate(const ImageF& pred, bool stored, const ImageF& gt, const std::string& what);
  double sum_ = 0, sum_sq_ = 0;
  int64_t n_ = 0, n11_ = 0, n22_ = 0, n30_ = 0;
  std::vector<uint32_t> hist_;
};

}  // namespace m3vit
