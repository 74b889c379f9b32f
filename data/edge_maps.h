// Boundary maps from label maps, as the authors build PASCAL edge ground truth:
//   edge = thin(|Laplacian(LabelMap)| > 0)            (data/pascal_context.py:290-295)
// with OpenCV's Laplacian (ksize 1: the 3x3 four-neighbour kernel, BORDER_REFLECT_101, 64-bit output)
// and scikit-image's `thin` (Guo & Hall two-subiteration thinning with the lookup tables of
// skimage.morphology._skeletonize, iterated to convergence). The synthetic scenes use the same rule on
// their semantic/part map, so their edges are one pixel wide and match what the PASCAL loader
// recomputes from a cached LabelMap.
#pragma once

#include <cstdint>
#include <vector>

namespace m3vit {

// Laplacian of a [h, w] map: sum of the four neighbours minus 4x the centre, border reflected
// without repeating the edge pixel (gfedcb|abcdefgh|gfedcba). Output [h, w].
std::vector<double> laplacian4(const std::vector<double>& map, int h, int w);

// skimage.morphology.thin on a [h, w] binary map (non-zero = foreground), in place, to convergence.
void thin_binary(std::vector<uint8_t>& bin, int h, int w);

// The two 256-entry deletion tables of the thinning (first and second subiteration), indexed by the
// 8-neighbourhood code: bit 0 east, 1 north-east, 2 north, 3 north-west, 4 west, 5 south-west,
// 6 south, 7 south-east. Exposed for tests.
const std::vector<uint8_t>& thin_lut(int subiteration);

// edge = thin(|laplacian4(labels)| > 0) as {0,1} floats, [h, w].
std::vector<float> label_boundaries(const std::vector<double>& labels, int h, int w);

}  // namespace m3vit
