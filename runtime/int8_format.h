// The int8 model file of `--precision int8`, which `m3vit calibrate` writes: the export's format
// (core/export.h, same names, same config metadata) with the weights of the quantised layers stored
// as symmetric s8 and two tensors beside each:
//
//   X.weight        I8  the export's shape: [out, in] (attention qkv/proj, dense fc1/fc2),
//                       [E, out, in] (experts' htoh4/h4toh), [c, cin, 3, 3] (head conv_0..3)
//   X.weight_scale  F32 [out] | [E, out] | [c]   per output channel: w ≈ q · scale (quantize.h)
//   X.input_scale   F32 [1] | [E] | [1]          the step of the layer's input, x ≈ q_x · step: s8
//                                                (absmax / 127) except the head's conv_1..3, whose
//                                                input follows a ReLU and is u8 (absmax / 255)
//
// Everything else (patch embedding, cls, positions, LayerNorms, routers, the task embedding, the
// heads' BatchNorm and conv_4) stays F32: the routers, LayerNorm, softmax and resizing run in fp32,
// so routing is decided on fp32 logits. The head convs' BatchNorm stays unfolded in the file and is
// folded into the scales at load (scale·γ/√(var+eps); the s8 weights do not change).
// Metadata: the export's, plus kPrecisionKey = "int8" and kCalibrationKey (what the scales were
// measured on). A file is int8 if and only if it says so; runtime/model_file.cpp checks every
// tensor's dtype and shape against this table, that each scale is finite and > 0, and names the
// tensor in every error.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/export.h"

namespace m3vit::rt {

inline constexpr const char* kPrecisionKey = "m3vit_precision";
inline constexpr const char* kPrecisionInt8 = "int8";
inline constexpr const char* kCalibrationKey = "m3vit_int8_calibration";

// True for the export tensors stored as s8 in an int8 file.
bool int8_weight_key(const std::string& name);
// "….weight" -> "….weight_scale" / "….input_scale".
std::string weight_scale_key(const std::string& weight_key);
std::string input_scale_key(const std::string& weight_key);
// True when the layer's input is ≥ 0 and quantised to u8 (the head's conv_1..3, after ReLU).
bool int8_input_unsigned(const std::string& weight_key);

// The scale tensors of one quantised weight: its output channels (per expert for a stack).
struct Int8ScaleSpec {
  std::string weight, weight_scale, input_scale;
  std::vector<int64_t> weight_scale_shape, input_scale_shape;
};
// Every quantised weight of cfg's export, in export order.
std::vector<Int8ScaleSpec> int8_scale_specs(const ModelConfig& cfg);

// What the calibration pass measures: per quantised weight, the largest |input| seen ([E] values for
// an expert stack, one per expert; 1 value otherwise). 0 = never seen (an expert no token chose).
struct Calibration {
  std::map<std::string, std::vector<float>> absmax;
  // Where the observer of (weight, expert) records; creates the entry (sized n) on first use.
  float* slot(const std::string& weight_key, int index, int n);
};

// The calibration pass: the fp32 engine (resident weights) on `images` images, each run for every
// task (the routers, and so the experts' inputs, differ per task), recording the largest |input| of
// every layer int8 mode quantises. image(i, buf) fills buf [3, H, W] (normalised) with image i.
// (Defined in runtime/engine.cpp: it runs the engine.)
Calibration calibrate_model(const std::string& model, int images,
                            const std::function<void(int, std::vector<float>&)>& image, int threads = 0);

struct Int8WriteInfo {
  std::string calibration;  // kCalibrationKey's text, e.g. "absmax over 16 synthetic scenes, all tasks"
};
// Reads the fp32 export at src, quantises its weights with the measured input ranges and writes the
// int8 file at out (temp file + rename). An input never seen takes the largest of its stack (an
// unrouted expert: the same LayerNorm input as its neighbours), or 1. ConfigError when the
// statistics lack a quantised layer.
void write_int8_export(const std::string& src, const Calibration& calib, const std::string& out,
                       const Int8WriteInfo& info);

}  // namespace m3vit::rt
