// The model's input from a picture, made the same way by `m3vit run` and the library (include/m3vit):
// 8-bit RGB scaled to [0, 1], bilinear (align_corners=false) to the model's size, then normalised
// with the ImageNet mean and std the model was trained with (common/imagenet.h).
#pragma once

#include <string>
#include <vector>

#include "common/image_io.h"
#include "core/config.h"
#include "io/tensor_data.h"

namespace m3vit::rt {

// [3, img_h, img_w] fp32. An image of another size is a ShapeError naming `origin`, both sizes and
// `resize_hint` (how the caller asks for resizing), unless `resize`.
std::vector<float> image_to_input(const Image8& img, const ModelConfig& cfg, bool resize, const std::string& origin,
                                  const std::string& resize_hint = "pass --resize to scale it");
// An already normalised input held in a .npy ([3, H, W] or [1, 3, H, W], float32 or float64), as
// `m3vit run --input-npy` and `m3vit serve` take it: ShapeError / FormatError naming `origin`.
std::vector<float> npy_to_input(const OwnedTensor& t, const ModelConfig& cfg, const std::string& origin);
// read_image (JPEG/PNG; IoError naming the path) then image_to_input.
std::vector<float> read_image_input(const std::string& path, const ModelConfig& cfg, bool resize);

}  // namespace m3vit::rt
