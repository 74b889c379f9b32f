// Bytes in and out of POST /v1/predict, without files: the request body as the model's input, and
// the three answers (the task's picture as PNG, the raw logits as .npy, base64 for JSON). Each makes
// exactly what `m3vit run` makes from and into files (cli/cmd_run.cpp), with the same one-line error
// messages; where the CLI names a file they name kBodyName.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"

namespace m3vit::serve {

// How messages name the request body (where `m3vit run` names the input file).
inline constexpr const char* kBodyName = "request body";

// The body as the model's normalised input [3, img_h, img_w]: a .npy (recognised by its magic
// bytes) holding [3, H, W] or [1, 3, H, W] float32/float64, or a PNG/JPEG image. An image of another
// size is a ShapeError unless `resize` (bilinear, as `m3vit run --resize`). Throws IoError,
// FormatError or ShapeError naming the body.
std::vector<float> decode_input(const std::string& body, const ModelConfig& cfg, bool resize);

// logits [C, H, W] as the .npy `m3vit run --save-logits` writes: [1, C, H, W] float32.
std::string logits_npy(const float* logits, int channels, int height, int width);
// The task's picture as the PNG `m3vit run --out` writes (common/visualize.h; NumericError on NaN/Inf).
std::string picture_png(const std::string& task, const float* logits, int channels, int height, int width);

// Standard base64 (RFC 4648, with padding), for a PNG inside a JSON answer.
std::string base64(const std::string& bytes);

}  // namespace m3vit::serve
