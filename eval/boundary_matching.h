// One-to-one correspondence of predicted and ground-truth boundary pixels within a distance, the core
// of the boundary benchmark (BSDS `correspondPixels`, used by the seism toolbox the authors call in
// evaluation/eval_edge.py). A predicted pixel may match a ground-truth pixel at Euclidean distance
// <= max_dist pixels; each pixel matches at most once; we compute a maximum-cardinality matching with
// Hopcroft-Karp over the bipartite graph of such pairs (greedy nearest-first start, then augmenting
// paths). BSDS solves a min-cost assignment with outlier costs (CSA), which yields a maximum matching
// too but prefers shorter pairs among equal-size matchings; the number of matches, the only thing the
// precision/recall counts use, is the same whenever CSA finds the maximum.
#pragma once

#include <cstdint>
#include <vector>

namespace m3vit {

struct BoundaryMatch {
  int64_t matched = 0;       // pairs in the matching (= matched predicted = matched ground-truth pixels)
  int64_t predicted = 0;     // predicted boundary pixels
  int64_t ground_truth = 0;  // ground-truth boundary pixels
};

// The ground-truth side of the matching, built once per image and reused for every threshold.
struct BoundaryTargets {
  int h = 0, w = 0;
  double max_dist = 0;
  int64_t count = 0;              // ground-truth boundary pixels
  std::vector<int> index;         // [h*w]: ground-truth pixel number, or -1
  std::vector<uint8_t> in_reach;  // [h*w]: 1 where some ground-truth pixel lies within max_dist
  struct Offset {
    int dy, dx;
  };
  std::vector<Offset> offsets;    // all offsets within max_dist, nearest first
};
BoundaryTargets make_boundary_targets(const std::vector<uint8_t>& gt, int h, int w, double max_dist);

// pred: [h, w] binary map (non-zero = boundary), row-major.
BoundaryMatch match_boundaries(const std::vector<uint8_t>& pred, const BoundaryTargets& targets);
// Convenience form building the targets on the fly.
BoundaryMatch match_boundaries(const std::vector<uint8_t>& pred, const std::vector<uint8_t>& gt, int h, int w,
                               double max_dist);

}  // namespace m3vit
