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

// pred, gt: [h, w] binary maps (non-zero = boundary), row-major.
BoundaryMatch match_boundaries(const std::vector<uint8_t>& pred, const std::vector<uint8_t>& gt, int h, int w,
                               double max_dist);

}  // namespace m3vit
