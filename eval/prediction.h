// From a network output to the prediction the metrics score, as the authors' dump does
// (utils/utils.py:60-78 get_output, evaluation/evaluate_utils.py:275-316; docs/METRICS.md):
//   semseg, human_parts  argmax over channels -> nearest resize to the original size -> class ids
//   sal, edge            255 sigmoid(x)       -> bilinear resize -> uint8 (truncated)
//   normals              n / max(|n|, 1e-12), (n + 1) 255 / 2 -> bilinear resize -> uint8 (truncated)
//   depth                raw                   -> bilinear resize (float, metres)
// The uint8 values are what the authors write as PNG and read back for scoring; the meters of eval/
// take exactly these "stored" maps. The authors skip images whose transformed label is all 255 (no
// file written): see all_ignored().
#pragma once

#include <string>

#include "data/sample.h"

namespace m3vit {

// output: one image's head output [C, h, w] for `task`; returns the stored prediction at
// orig_h x orig_w ([1,H,W], or [3,H,W] for normals). Throws ShapeError on a channel count that
// does not fit the task (normals 3; sal, edge, depth 1; semseg / human_parts >= 2).
ImageF stored_prediction(const std::string& task, const ImageF& output, int orig_h, int orig_w);

// True if every value of a (transformed) label map is 255: the authors write no prediction for it.
bool all_ignored(const ImageF& label);

// Writes a stored prediction the way the authors do: PNG (gray, or RGB for normals) for every task but
// depth, which goes to a .mat file with variable `depth` (float). Atomic.
void save_stored_prediction(const std::string& path, const std::string& task, const ImageF& stored);
// Reads it back as a stored prediction map (PNG values / .mat `depth`).
ImageF load_stored_prediction(const std::string& path, const std::string& task);

}  // namespace m3vit
