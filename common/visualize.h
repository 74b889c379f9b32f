// Pictures of task outputs, torch-free: a task head's raw output for one image, [C, H, W] floats,
// becomes an RGB Image8 that `m3vit infer` and the demo write as PNG.
//   semseg, human_parts  argmax over channels -> PASCAL VOC palette colour per label
//   normals              per-pixel L2 normalisation, RGB = (n + 1) * 255 / 2 (utils/utils.py:60-78)
//   sal, edge            sigmoid -> heat map (the authors' PNG is 255 * sigmoid)
//   depth                min-max over the image -> heat map (bright = far)
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/image_io.h"

namespace m3vit {

// Picture for a task. `logits` is C-contiguous [channels, height, width]. Throws ConfigError for an
// unknown task, ShapeError for a channel count the task cannot have (normals != 3, sal/edge/depth
// != 1, semseg/human_parts < 2), NumericError for NaN/Inf, naming the task.
Image8 visualize_task(const std::string& task, const float* logits, int channels, int height, int width);

// Colour of a label in the PASCAL VOC palette (0 black, 1 (128,0,0), 2 (0,128,0), 3 (128,128,0), ...).
std::array<uint8_t, 3> palette_color(int label);

// Heat-map colour of v in [0, 1] (clamped): a five-stop black-purple-red-orange-pale-yellow ramp,
// piecewise linear, rounded to nearest.
std::array<uint8_t, 3> heat_color(float v);

}  // namespace m3vit
