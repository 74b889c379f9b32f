#include "common/task_prediction.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

namespace {

void need_channels(const std::string& task, int channels, bool ok, const char* want) {
  if (!ok) throw ShapeError("task " + task + ": output has " + std::to_string(channels) + " channels, expected " + want);
}

}  // namespace

int prediction_channels(const std::string& task) {
  if (task == "normals") return 3;
  if (task == "semseg" || task == "human_parts" || task == "sal" || task == "edge" || task == "depth") return 1;
  throw ConfigError("unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
}

std::vector<float> task_prediction(const std::string& task, const float* logits, int channels, int height, int width) {
  const size_t plane = static_cast<size_t>(height) * width;
  std::vector<float> out(static_cast<size_t>(prediction_channels(task)) * plane);
  for (size_t i = 0; i < plane * channels; ++i)
    if (!std::isfinite(logits[i]))
      throw NumericError("task " + task + ": output has a non-finite value at channel " + std::to_string(i / plane) +
                         ", pixel (" + std::to_string((i % plane) / width) + ", " + std::to_string(i % width) + ")");
  if (task == "semseg" || task == "human_parts") {
    need_channels(task, channels, channels >= 2, "at least 2 (one per class)");
    for (size_t p = 0; p < plane; ++p) {
      int best = 0;
      for (int c = 1; c < channels; ++c)
        if (logits[c * plane + p] > logits[best * plane + p]) best = c;
      out[p] = static_cast<float>(best);
    }
  } else if (task == "normals") {
    need_channels(task, channels, channels == 3, "3 (x, y, z)");
    for (size_t p = 0; p < plane; ++p) {
      const double x = logits[p], y = logits[plane + p], z = logits[2 * plane + p];
      const double n = std::max(std::sqrt(x * x + y * y + z * z), 1e-12);
      for (int c = 0; c < 3; ++c) out[c * plane + p] = static_cast<float>(logits[c * plane + p] / n);
    }
  } else if (task == "sal" || task == "edge") {
    need_channels(task, channels, channels == 1, "1");
    for (size_t p = 0; p < plane; ++p) out[p] = 1.0f / (1.0f + std::exp(-logits[p]));
  } else {  // depth
    need_channels(task, channels, channels == 1, "1");
    std::copy(logits, logits + plane, out.begin());
  }
  return out;
}

}  // namespace m3vit
