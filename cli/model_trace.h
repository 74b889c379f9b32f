// Inputs of the hardware commands (`m3vit trace`, `m3vit hw`) that need the libtorch model or the
// data sets: 8-bit images from a folder or the synthetic scene generator, the model's expert trace
// on them (forward_features with ForwardTrace), and the encoder weights of a model for the
// fixed-point check.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hw/cost/expert_trace.h"
#include "hw/fx/encoder_weights.h"
#include "hw/fx/fx_select.h"
#include "core/config.h"

namespace m3vit::cli {

struct ImageSource {
  std::string dir;    // PNG/JPEG files, sorted by name
  int synthetic = 0;  // or this many synthetic scenes (data/synthetic.h)
  uint64_t seed = 0;  // synthetic scenes' seed
  bool resize = false;  // scale folder images to the model's size (linear); else they must match
  int limit = 0;      // at most this many folder images (0 = all)
  bool given() const { return !dir.empty() || synthetic > 0; }
  std::string describe() const;
};

// 8-bit RGB images [3, H, W] at the model's input size. Errors name the folder or file.
std::vector<std::vector<uint8_t>> load_images8(const ImageSource& src, const ModelConfig& cfg);

// Runs the model (weights from `weights`, or the authors' random initialisation from `seed` when
// empty) on each image with the task's routing and returns the routing as an expert trace.
hw::ExpertTrace trace_model(const ModelConfig& cfg, const std::string& weights, uint64_t seed, int task,
                            const std::vector<std::vector<uint8_t>>& images, const std::string& images_note,
                            int threads);

// The encoder's fp32 weights: our export read directly, any other checkpoint (or none: random
// weights from `seed`) through the libtorch model's parameters.
hw::EncoderWeights model_encoder_weights(const ModelConfig& cfg, const std::string& weights, uint64_t seed);

// Largest |difference| between the libtorch model's backbone output (forward_features) and the
// hardware path's fp32 reference encoder (hw/fx/ref_encoder.h) on the same weights and images, and the
// largest |value| for scale: the check that the reference is the model.
std::pair<double, double> reference_vs_model(const ModelConfig& cfg, const std::string& weights, uint64_t seed,
                                             int task, const std::vector<std::vector<uint8_t>>& images);

// The change of each task's metric when the encoder runs in fixed point: the same heads (libtorch)
// on the fp32 backbone's tokens and on the fixed-point encoder's tokens, scored against the labels
// of the synthetic validation scenes (mIoU for semseg/human_parts/sal, mean angle for normals, RMSE
// for depth; edge is not scored, as in the authors' Δm). Meaningful with trained weights only.
struct TaskMetricChange {
  std::string task, metric;
  double fp32 = 0, fixed = 0;
  bool higher_is_better = true;
  int images = 0;
  std::string note;  // why a task was not scored
};
std::vector<TaskMetricChange> fx_metric_change(const ModelConfig& cfg, const std::string& weights, uint64_t seed,
                                               int images, uint64_t image_seed, const hw::FxOptions& fx);

}  // namespace m3vit::cli
