// What a task's logits mean, as numbers: the map a user of the runtime wants (the library's
// m3vit_predict, the Python module's predict). The same reading as the authors' get_output
// (utils/utils.py:60-78) and eval/prediction.h, kept in float instead of their uint8 PNG values:
//   semseg, human_parts  class ids: the first maximum over channels (as torch.max)     [1, H, W]
//   normals              unit vectors n / max(|n|, 1e-12) (F.normalize's eps)          [3, H, W]
//   sal, edge            probabilities sigmoid(x)                                      [1, H, W]
//   depth                the logit itself (metres)                                     [1, H, W]
#pragma once

#include <string>
#include <vector>

namespace m3vit {

// Channels of the map: 3 for normals, else 1. ConfigError for an unknown task.
int prediction_channels(const std::string& task);
// logits [channels, height, width] -> the map above. ShapeError for a channel count the task cannot
// have, NumericError for NaN/Inf, ConfigError for an unknown task; each names the task.
std::vector<float> task_prediction(const std::string& task, const float* logits, int channels, int height, int width);

}  // namespace m3vit
