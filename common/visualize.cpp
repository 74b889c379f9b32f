// Task output -> picture (common/visualize.h). Post-processing follows the authors' get_output
// (utils/utils.py:60-78): argmax for label tasks, F.normalize + (n+1)·255/2 truncated to uint8 for
// normals, sigmoid for sal/edge; depth is raw there and is min-max scaled here only to be seen.
#include "common/visualize.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

namespace {

// Heat-map stops at v = 0, 1/4, 1/2, 3/4, 1 (close to matplotlib's "inferno").
constexpr float kHeatStops[5][3] = {{0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};

void check_channels(const std::string& task, int channels, bool ok, const char* want) {
  if (!ok)
    throw ShapeError("task " + task + ": output has " + std::to_string(channels) + " channels, a " + task +
                     " picture needs " + want);
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

std::array<uint8_t, 3> palette_color(int label) {
  // The VOC palette spreads the label's bits over the high bits of r, g, b (3 bits per round).
  int r = 0, g = 0, b = 0;
  int c = label;
  for (int j = 0; j < 8; ++j) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
}

std::array<uint8_t, 3> heat_color(float v) {
  if (!(v > 0)) v = 0;  // also maps NaN to 0; callers reject NaN before
  if (v > 1) v = 1;
  const float x = v * 4;
  const int i = std::min(3, static_cast<int>(x));
  const float f = x - i;
  std::array<uint8_t, 3> rgb{};
  for (int ch = 0; ch < 3; ++ch)
    rgb[ch] = static_cast<uint8_t>(std::lround(kHeatStops[i][ch] + f * (kHeatStops[i + 1][ch] - kHeatStops[i][ch])));
  return rgb;
}

Image8 visualize_task(const std::string& task, const float* logits, int channels, int height, int width) {
  if (channels < 1 || height < 1 || width < 1)
    throw ShapeError("task " + task + ": empty output [" + std::to_string(channels) + ", " + std::to_string(height) +
                     ", " + std::to_string(width) + "]");
  const size_t plane = static_cast<size_t>(height) * width;
  for (size_t i = 0; i < plane * channels; ++i)
    if (!std::isfinite(logits[i]))
      throw NumericError("task " + task + ": output has a non-finite value at channel " + std::to_string(i / plane) +
                         ", pixel (" + std::to_string((i % plane) / width) + ", " + std::to_string(i % width) + ")");
  Image8 img;
  img.width = width;
  img.height = height;
  img.channels = 3;
  img.pixels.resize(plane * 3);
  auto put = [&](size_t p, const std::array<uint8_t, 3>& rgb) {
    std::copy(rgb.begin(), rgb.end(), img.pixels.begin() + p * 3);
  };

  if (task == "semseg" || task == "human_parts") {
    check_channels(task, channels, channels >= 2, "at least 2 (one per class)");
    for (size_t p = 0; p < plane; ++p) {
      int best = 0;  // first maximum, as torch.max
      for (int c = 1; c < channels; ++c)
        if (logits[c * plane + p] > logits[best * plane + p]) best = c;
      put(p, palette_color(best));
    }
  } else if (task == "normals") {
    check_channels(task, channels, channels == 3, "3 (x, y, z)");
    for (size_t p = 0; p < plane; ++p) {
      const double x = logits[p], y = logits[plane + p], z = logits[2 * plane + p];
      const double n = std::max(std::sqrt(x * x + y * y + z * z), 1e-12);  // F.normalize's eps
      for (int c = 0; c < 3; ++c) {
        const double v = (logits[c * plane + p] / n + 1.0) * 255.0 / 2.0;
        img.pixels[p * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));  // truncation, as .astype(uint8)
      }
    }
  } else if (task == "sal" || task == "edge") {
    check_channels(task, channels, channels == 1, "1");
    for (size_t p = 0; p < plane; ++p) put(p, heat_color(sigmoid(logits[p])));
  } else if (task == "depth") {
    check_channels(task, channels, channels == 1, "1");
    const auto [lo, hi] = std::minmax_element(logits, logits + plane);
    const float range = *hi - *lo;
    for (size_t p = 0; p < plane; ++p) put(p, heat_color(range > 0 ? (logits[p] - *lo) / range : 0.0f));
  } else {
    throw ConfigError("unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
  }
  return img;
}

}  // namespace m3vit
