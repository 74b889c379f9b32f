// The model's input from a picture, made the same way by `m3vit run` and the library (include/m3vit):
// 8-bit RGB scaled to [0, 1], bilinear (align_corners=false) to the model's size, then normalised
// with the ImageNet mean and std the model was trained with (common/imagenet.h).
#pragma once

#include <string>
#include <vector>

#include "common/image_io.h"
#include "core/config.h"

namespace m3vit::rt {

// [3, img_h, img_w] fp32. An image of another size is a ShapeError naming `origin`, both sizes and
// `resize_hint` (how the caller asks for resizing), unless `resize`.
std::vector<float> image_to_input(const Image8& img, const ModelConfig& cfg, bool resize, const std::string& origin,
                                  const std::string& resize_hint = "pass --resize to scale it");
// read_image (JPEG/PNG; IoError naming the path) then image_to_input.
std::vector<float> read_image_input(const std::string& path, const ModelConfig& cfg, bool resize);

}  // namespace m3vit::rt
