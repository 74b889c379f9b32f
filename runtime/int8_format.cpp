// The int8 model file (runtime/int8_format.h): which tensors are quantised, and its writer.
#include "runtime/int8_format.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>

#include "common/errors.h"
#include "io/safetensors.h"
#include "runtime/ops/quantize.h"

namespace m3vit::rt {

namespace {
bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
std::string stem(const std::string& weight_key) {
  if (!ends_with(weight_key, ".weight")) throw Error("not a weight key: '" + weight_key + "'");
  return weight_key.substr(0, weight_key.size() - 6);
}
bool is_head_conv(const std::string& name, int lo, int hi) {
  if (name.rfind("decoders.", 0) != 0) return false;
  for (int j = lo; j <= hi; ++j)
    if (ends_with(name, ".conv_" + std::to_string(j) + ".weight")) return true;
  return false;
}
}  // namespace

bool int8_weight_key(const std::string& name) {
  if (name.rfind("backbone.blocks.", 0) == 0)
    for (const char* k : {".attn.qkv.weight", ".attn.proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight",
                          ".mlp.experts.htoh4.weight", ".mlp.experts.h4toh.weight"})
      if (ends_with(name, k)) return true;
  return is_head_conv(name, 0, 3);
}

std::string weight_scale_key(const std::string& k) { return stem(k) + "weight_scale"; }
std::string input_scale_key(const std::string& k) { return stem(k) + "input_scale"; }
bool int8_input_unsigned(const std::string& k) { return is_head_conv(k, 1, 3); }

std::vector<Int8ScaleSpec> int8_scale_specs(const ModelConfig& cfg) {
  std::vector<Int8ScaleSpec> out;
  for (const TensorSpec& s : export_tensor_specs(cfg)) {
    if (!int8_weight_key(s.name)) continue;
    const bool stack = s.name.find(".mlp.experts.") != std::string::npos;  // [E, out, in]
    Int8ScaleSpec q{s.name, weight_scale_key(s.name), input_scale_key(s.name), {}, {}};
    if (stack) {
      q.weight_scale_shape = {s.shape[0], s.shape[1]};
      q.input_scale_shape = {s.shape[0]};
    } else {
      q.weight_scale_shape = {s.shape[0]};
      q.input_scale_shape = {1};
    }
    out.push_back(std::move(q));
  }
  return out;
}

float* Calibration::slot(const std::string& weight_key, int index, int n) {
  std::vector<float>& v = absmax[weight_key];
  if (v.empty()) v.assign(n, 0.f);
  return &v.at(index);
}

void write_int8_export(const std::string& src, const Calibration& calib, const std::string& out,
                       const Int8WriteInfo& info) {
  SafeTensorsFile f(src);
  const ModelConfig cfg = read_export_config(f);
  if (f.metadata().count(kPrecisionKey))
    throw ConfigError(src + ": already an int8 file; calibrate the fp32 export it came from");
  std::map<std::string, Int8ScaleSpec> specs;
  for (auto& s : int8_scale_specs(cfg)) specs.emplace(s.weight, s);
  SafeTensorsWriter w;
  for (const std::string& name : f.names()) {
    if (training_only_key(name)) continue;  // inference never reads the TAM
    const TensorView& v = f.get(name);
    auto it = specs.find(name);
    if (it == specs.end()) {
      w.add(name, v.dtype, v.shape, v.data, v.nbytes);
      continue;
    }
    const Int8ScaleSpec& s = it->second;
    auto st = calib.absmax.find(name);
    const int64_t groups = s.input_scale_shape[0];
    if (st == calib.absmax.end() || static_cast<int64_t>(st->second.size()) != groups)
      throw ConfigError("calibration has no input range for '" + name + "' (the pass did not run that layer)");
    // Per output channel over all rows: an expert stack [E, out, in] is E·out rows.
    const int64_t rows = std::accumulate(s.weight_scale_shape.begin(), s.weight_scale_shape.end(), int64_t{1},
                                         std::multiplies<int64_t>());
    const int64_t per_row = v.numel() / rows;
    std::vector<int8_t> q(static_cast<size_t>(v.numel()));
    std::vector<float> ws(static_cast<size_t>(rows));
    quantize_weights_s8(v.f32(), rows, per_row, q.data(), ws.data());
    const float fallback = std::max(1e-30f, *std::max_element(st->second.begin(), st->second.end()));
    const float qmax = int8_input_unsigned(name) ? kU8Max : kS8Max;
    std::vector<float> steps(static_cast<size_t>(groups));
    for (int64_t g = 0; g < groups; ++g) {
      const float m = st->second[g] > 0 ? st->second[g] : fallback;
      steps[g] = fallback > 1e-30f ? m / qmax : 1.f;
    }
    w.add(name, DType::I8, v.shape, q.data(), q.size());
    w.add(s.weight_scale, DType::F32, s.weight_scale_shape, ws.data(), ws.size() * 4);
    w.add(s.input_scale, DType::F32, s.input_scale_shape, steps.data(), steps.size() * 4);
  }
  for (const auto& [k, val] : f.metadata()) w.set_metadata(k, val);
  w.set_metadata(kTrainingWeightsKey, kTrainingWeightsOmitted);
  w.set_metadata(kPrecisionKey, kPrecisionInt8);
  w.set_metadata(kCalibrationKey, info.calibration);
  w.write(out);
}

}  // namespace m3vit::rt
