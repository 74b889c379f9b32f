// Encoder weights for the hardware path (hw/fx/encoder_weights.h).
#include "hw/fx/encoder_weights.h"

#include <cmath>
#include <map>
#include <random>

#include "common/errors.h"
#include "core/export.h"
#include "io/safetensors.h"

namespace m3vit::hw {

namespace {

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t s) : gen(s) {}
  std::vector<float> trunc_normal(size_t n, double std) {
    std::normal_distribution<double> nd(0, std);
    std::vector<float> v(n);
    for (auto& x : v) {
      double y;
      do y = nd(gen);
      while (y < -2 || y > 2);  // timm trunc_normal_(std=.02): bounds at +-2 (absolute)
      x = static_cast<float>(y);
    }
    return v;
  }
  std::vector<float> uniform(size_t n, double bound) {
    std::uniform_real_distribution<double> ud(-bound, bound);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(ud(gen));
    return v;
  }
};

std::vector<float> filled(size_t n, float v) { return std::vector<float>(n, v); }


}  // namespace

EncoderWeights random_encoder_weights(const ModelConfig& cfg, uint64_t seed) {
  cfg.validate();
  Rng r(seed);
  EncoderWeights w;
  w.cfg = cfg;
  const size_t d = cfg.embed_dim, N = cfg.num_tokens(), hid = cfg.mlp_hidden(), mh = cfg.moe_hidden(),
               E = cfg.moe_experts, pin = static_cast<size_t>(cfg.in_chans) * cfg.patch * cfg.patch;
  w.patch_w = r.uniform(d * pin, 1.0 / std::sqrt(static_cast<double>(pin)));  // Conv2d default
  w.patch_b = r.uniform(d, 1.0 / std::sqrt(static_cast<double>(pin)));
  w.cls = r.trunc_normal(d, 0.02);
  w.pos = r.trunc_normal(N * d, 0.02);
  for (int b = 0; b < cfg.depth; ++b) {
    EncoderBlockWeights B;
    B.ln1_g = filled(d, 1);
    B.ln1_b = filled(d, 0);
    B.qkv_w = r.trunc_normal(3 * d * d, 0.02);
    B.qkv_b = filled(3 * d, 0);
    B.proj_w = r.trunc_normal(d * d, 0.02);
    B.proj_b = filled(d, 0);
    B.ln2_g = filled(d, 1);
    B.ln2_b = filled(d, 0);
    if (!cfg.is_moe_block(b)) {
      B.fc1_w = r.trunc_normal(hid * d, 0.02);
      B.fc1_b = filled(hid, 0);
      B.fc2_w = r.trunc_normal(d * hid, 0.02);
      B.fc2_b = filled(d, 0);
    } else {
      // FMoELinear [E, out, in]: kaiming-uniform(a=sqrt 5) on a 3-D tensor, fan_in = out·in (fmoe/linear.py).
      B.w1 = r.uniform(E * mh * d, 1.0 / std::sqrt(static_cast<double>(mh * d)));
      B.b1 = filled(E * mh, 0);
      B.w2 = r.uniform(E * d * mh, 1.0 / std::sqrt(static_cast<double>(d * mh)));
      B.b2 = filled(E * d, 0);
      for (int g = 0; g < router_count(cfg); ++g)
        B.gate.push_back(r.uniform(static_cast<size_t>(router_rows(cfg)) * E, 1.0 / std::sqrt(static_cast<double>(E))));
    }
    w.blocks.push_back(std::move(B));
  }
  if (has_task_embedding(cfg)) {
    size_t T = cfg.num_tasks(), D = cfg.task_emb_dim;
    w.te_fc1_w = r.trunc_normal(D * T, 0.02);
    w.te_fc1_b = filled(D, 0);
    w.te_fc2_w = r.trunc_normal(D * D, 0.02);
    w.te_fc2_b = filled(D, 0);
    w.te_norm_g = filled(D, 1);
    w.te_norm_b = filled(D, 0);
  }
  return w;
}

EncoderWeights load_encoder_weights(const std::string& path) {
  SafeTensorsFile f(path);
  return encoder_weights_from(config_from_metadata(f.metadata(), path), [&](const std::string& name, const std::vector<int64_t>& shape) {
    const TensorView& t = f.get(name, DType::F32, shape);
    const float* p = t.f32();
    return std::vector<float>(p, p + t.numel());
  });
}

EncoderWeights encoder_weights_from(const ModelConfig& cfg, const TensorSource& source) {
  EncoderWeights w;
  w.cfg = cfg;
  const ModelConfig& c = w.cfg;
  // Names and shapes come from the export table (core/export.h); this function only says which
  // tensor fills which field.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& s : export_tensor_specs(c)) shapes.emplace(std::move(s.name), std::move(s.shape));
  auto get = [&](const std::string& name) {
    const std::vector<int64_t>& shape = shapes.at(name);
    std::vector<float> v = source(name, shape);
    if (static_cast<int64_t>(v.size()) != shape_numel(shape))
      throw ShapeError("tensor '" + name + "': " + std::to_string(v.size()) + " values, expected " + shape_str(shape));
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i])) throw NumericError("tensor '" + name + "' has a non-finite value at " + std::to_string(i));
    return v;
  };
  w.patch_w = get("backbone.patch_embed.proj.weight");
  w.patch_b = get("backbone.patch_embed.proj.bias");
  w.cls = get("backbone.cls_token");
  w.pos = get("backbone.pos_embed");
  for (int b = 0; b < c.depth; ++b) {
    auto p = [b](const std::string& rest) { return block_key(b, rest); };
    EncoderBlockWeights B;
    B.ln1_g = get(p("norm1.weight"));
    B.ln1_b = get(p("norm1.bias"));
    B.qkv_w = get(p("attn.qkv.weight"));
    B.qkv_b = c.qkv_bias ? get(p("attn.qkv.bias")) : filled(3 * static_cast<size_t>(c.embed_dim), 0);
    B.proj_w = get(p("attn.proj.weight"));
    B.proj_b = get(p("attn.proj.bias"));
    B.ln2_g = get(p("norm2.weight"));
    B.ln2_b = get(p("norm2.bias"));
    if (!c.is_moe_block(b)) {
      B.fc1_w = get(p("mlp.fc1.weight"));
      B.fc1_b = get(p("mlp.fc1.bias"));
      B.fc2_w = get(p("mlp.fc2.weight"));
      B.fc2_b = get(p("mlp.fc2.bias"));
    } else {
      B.w1 = get(p("mlp.experts.htoh4.weight"));
      B.b1 = get(p("mlp.experts.htoh4.bias"));
      B.w2 = get(p("mlp.experts.h4toh.weight"));
      B.b2 = get(p("mlp.experts.h4toh.bias"));
      for (int t = 0; t < router_count(c); ++t) B.gate.push_back(get(router_key(c, b, t)));
    }
    w.blocks.push_back(std::move(B));
  }
  if (has_task_embedding(c)) {
    const std::string p = "backbone.gate_task_represent.";
    w.te_fc1_w = get(p + "fc1.weight");
    w.te_fc1_b = get(p + "fc1.bias");
    w.te_fc2_w = get(p + "fc2.weight");
    w.te_fc2_b = get(p + "fc2.bias");
    w.te_norm_g = get(p + "norm.weight");
    w.te_norm_b = get(p + "norm.bias");
  }
  return w;
}

const std::vector<float>& router_matrix(const EncoderWeights& w, int block, int task) {
  const auto& g = w.blocks.at(block).gate;
  if (g.empty()) throw ConfigError("block " + std::to_string(block) + " has no router");
  return w.cfg.gate == GateType::multi ? g.at(task) : g.at(0);
}

std::vector<float> router_task_bias(const EncoderWeights& w, int block, int task) {
  const ModelConfig& c = w.cfg;
  const int E = c.moe_experts;
  std::vector<float> bias(E, 0.0f);
  if (c.gate != GateType::task_cond || c.task_emb_dim <= 0) return bias;
  // Task embedding (vision_transformer_moe.py:420-423, 547-550): one-hot -> fc1 -> GELU -> fc2 -> LN.
  const int T = c.num_tasks(), D = c.task_emb_dim;
  std::vector<double> h(D), e(D);
  for (int i = 0; i < D; ++i) {
    double v = w.te_fc1_b[i] + w.te_fc1_w[static_cast<size_t>(i) * T + task];
    h[i] = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  }
  for (int i = 0; i < D; ++i) {
    double v = w.te_fc2_b[i];
    for (int j = 0; j < D; ++j) v += w.te_fc2_w[static_cast<size_t>(i) * D + j] * h[j];
    e[i] = v;
  }
  double mean = 0, var = 0;
  for (double v : e) mean += v / D;
  for (double v : e) var += (v - mean) * (v - mean) / D;
  // eps fixed at 1e-6 by the authors' new_Mlp (vision_transformer_moe.py:175), whatever ln_eps is.
  for (int i = 0; i < D; ++i) e[i] = (e[i] - mean) / std::sqrt(var + 1e-6) * w.te_norm_g[i] + w.te_norm_b[i];
  const std::vector<float>& g = router_matrix(w, block, task);  // [d + D, E]
  for (int x = 0; x < E; ++x) {
    double s = 0;
    for (int i = 0; i < D; ++i) s += e[i] * g[static_cast<size_t>(c.embed_dim + i) * E + x];
    bias[x] = static_cast<float>(s);
  }
  return bias;
}

}  // namespace m3vit::hw
