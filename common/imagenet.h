// ImageNet statistics of the input normalisation, x = (pixel/255 − mean) / std per channel (RGB):
// the authors' Normalize (utils/common_config.py:407-456), used by the data pipeline, the command
// line's image inputs and the hardware model's encoder.
#pragma once

namespace m3vit {

inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

}  // namespace m3vit
