// Seeded random model exports (runtime/synthetic_export.h).
#include "runtime/synthetic_export.h"

#include <cmath>
#include <random>

#include "io/safetensors.h"
#include "runtime/model_file.h"

namespace m3vit::rt {

namespace {
bool ends_with(const std::string& k, const std::string& suf) {
  return k.size() >= suf.size() && k.compare(k.size() - suf.size(), suf.size(), suf) == 0;
}
}  // namespace

void write_synthetic_export(const ModelConfig& cfg, const std::string& path, uint32_t seed, const std::string& poison,
                            float poison_value) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  SafeTensorsWriter w;
  for (const auto& s : export_tensor_specs(cfg)) {
    const int64_t n = shape_numel(s.shape);
    const std::string& k = s.name;
    // The module is the segment before the last: norm, norm1, norm2 or syncbn_fc_j are norms.
    const size_t last = k.rfind('.'), prev = k.rfind('.', last - 1);
    const std::string module = k.substr(prev + 1, last - prev - 1);
    const bool is_norm = module == "norm" || module == "norm1" || module == "norm2" || module.rfind("syncbn", 0) == 0;
    float scale = 0.05f, offset = 0.f;
    if (ends_with(k, "running_var")) {
      scale = 0.5f;
      offset = 1.f;
    } else if (ends_with(k, "running_mean")) {
      scale = 0.1f;
    } else if (is_norm && ends_with(k, ".weight")) {
      scale = 0.2f;
      offset = 1.f;
    } else if (is_norm && ends_with(k, ".bias")) {
      scale = 0.1f;
    } else if (ends_with(k, "w_gate")) {
      scale = 1.f;
    } else if (ends_with(k, "pos_embed") || ends_with(k, "cls_token")) {
      scale = 0.5f;
    } else if (s.shape.size() >= 2) {
      int64_t fan_in = 1;  // experts are stacked [E, out, in]: skip E and out
      for (size_t i = (k.find("experts") != std::string::npos ? 2 : 1); i < s.shape.size(); ++i) fan_in *= s.shape[i];
      scale = std::sqrt((s.shape.size() == 4 ? 6.f : 3.f) / static_cast<float>(fan_in));
    }
    std::vector<float> v(n);
    for (auto& x : v) x = offset + scale * u(rng);
    if (k == poison && n > 0) v[n / 2] = poison_value;
    w.add(k, DType::F32, s.shape, v.data(), v.size() * 4);
    if (ends_with(k, "running_var")) {  // BatchNorm's step counter, as torch's state dict has it
      const int64_t steps = 10;
      w.add(k.substr(0, k.size() - 11) + "num_batches_tracked", DType::I64, {}, &steps, 8);
    }
  }
  // export_tensor_specs has no training-only tensor: the file is an inference export.
  for (const auto& [k, v] : export_metadata(cfg, /*training_weights=*/false)) w.set_metadata(k, v);
  w.write(path);
}

std::vector<float> synthetic_image(const ModelConfig& cfg, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(cfg.in_chans) * cfg.img_h * cfg.img_w);
  for (auto& x : v) x = nd(rng);
  return v;
}

}  // namespace m3vit::rt
