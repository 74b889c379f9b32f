// Encoder weights for the hardware path (hw/encoder_weights.h).
#include "hw/encoder_weights.h"

#include <cmath>
#include <random>

#include "common/errors.h"
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

int gate_count(const ModelConfig& c) { return c.gate == GateType::multi ? c.num_tasks() : 1; }
int gate_rows(const ModelConfig& c) {
  return c.embed_dim + (c.gate == GateType::task_cond && c.task_emb_dim > 0 ? c.task_emb_dim : 0);
}

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
      // FMoELinear [E, out, in]: kaiming-uniform(a=sqrt 5) on a 3-D tensor, fan_in = out·in (spec §1.7).
      B.w1 = r.uniform(E * mh * d, 1.0 / std::sqrt(static_cast<double>(mh * d)));
      B.b1 = filled(E * mh, 0);
      B.w2 = r.uniform(E * d * mh, 1.0 / std::sqrt(static_cast<double>(d * mh)));
      B.b2 = filled(E * d, 0);
      for (int g = 0; g < gate_count(cfg); ++g)
        B.gate.push_back(r.uniform(static_cast<size_t>(gate_rows(cfg)) * E, 1.0 / std::sqrt(static_cast<double>(E))));
    }
    w.blocks.push_back(std::move(B));
  }
  if (cfg.gate == GateType::task_cond && cfg.task_emb_dim > 0) {
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
  auto it = f.metadata().find("m3vit_config");
  if (it == f.metadata().end()) throw FormatError(path + ": no '__metadata__.m3vit_config' (not a model export?)");
  ModelConfig cfg;
  try {
    cfg = config_from_json(it->second);
  } catch (const Error& e) {
    throw FormatError(path + ": metadata m3vit_config: " + e.what());
  }
  return encoder_weights_from(cfg, [&](const std::string& name, const std::vector<int64_t>& shape) {
    const TensorView& t = f.get(name, DType::F32, shape);
    const float* p = t.f32();
    return std::vector<float>(p, p + t.numel());
  });
}

EncoderWeights encoder_weights_from(const ModelConfig& cfg, const TensorSource& source) {
  EncoderWeights w;
  w.cfg = cfg;
  const ModelConfig& c = w.cfg;
  const int64_t d = c.embed_dim, N = c.num_tokens(), hid = c.mlp_hidden(), mh = c.moe_hidden(), E = c.moe_experts;
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    std::vector<float> v = source(name, shape);
    if (static_cast<int64_t>(v.size()) != shape_numel(shape))
      throw ShapeError("tensor '" + name + "': " + std::to_string(v.size()) + " values, expected " + shape_str(shape));
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i])) throw NumericError("tensor '" + name + "' has a non-finite value at " + std::to_string(i));
    return v;
  };
  w.patch_w = get("backbone.patch_embed.proj.weight", {d, c.in_chans, c.patch, c.patch});
  w.patch_b = get("backbone.patch_embed.proj.bias", {d});
  w.cls = get("backbone.cls_token", {1, 1, d});
  w.pos = get("backbone.pos_embed", {1, N, d});
  for (int b = 0; b < c.depth; ++b) {
    std::string p = "backbone.blocks." + std::to_string(b) + ".";
    EncoderBlockWeights B;
    B.ln1_g = get(p + "norm1.weight", {d});
    B.ln1_b = get(p + "norm1.bias", {d});
    B.qkv_w = get(p + "attn.qkv.weight", {3 * d, d});
    B.qkv_b = c.qkv_bias ? get(p + "attn.qkv.bias", {3 * d}) : filled(3 * d, 0);
    B.proj_w = get(p + "attn.proj.weight", {d, d});
    B.proj_b = get(p + "attn.proj.bias", {d});
    B.ln2_g = get(p + "norm2.weight", {d});
    B.ln2_b = get(p + "norm2.bias", {d});
    if (!c.is_moe_block(b)) {
      B.fc1_w = get(p + "mlp.fc1.weight", {hid, d});
      B.fc1_b = get(p + "mlp.fc1.bias", {hid});
      B.fc2_w = get(p + "mlp.fc2.weight", {d, hid});
      B.fc2_b = get(p + "mlp.fc2.bias", {d});
    } else {
      B.w1 = get(p + "mlp.experts.htoh4.weight", {E, mh, d});
      B.b1 = get(p + "mlp.experts.htoh4.bias", {E, mh});
      B.w2 = get(p + "mlp.experts.h4toh.weight", {E, d, mh});
      B.b2 = get(p + "mlp.experts.h4toh.bias", {E, d});
      if (c.gate == GateType::multi)
        for (int t = 0; t < c.num_tasks(); ++t)
          B.gate.push_back(get(p + "mlp.gate." + std::to_string(t) + ".w_gate", {d, E}));
      else
        B.gate.push_back(get(p + "mlp.gate.w_gate", {gate_rows(c), E}));
    }
    w.blocks.push_back(std::move(B));
  }
  if (c.gate == GateType::task_cond && c.task_emb_dim > 0) {
    int64_t T = c.num_tasks(), D = c.task_emb_dim;
    std::string p = "backbone.gate_task_represent.";
    w.te_fc1_w = get(p + "fc1.weight", {D, T});
    w.te_fc1_b = get(p + "fc1.bias", {D});
    w.te_fc2_w = get(p + "fc2.weight", {D, D});
    w.te_fc2_b = get(p + "fc2.bias", {D});
    w.te_norm_g = get(p + "norm.weight", {D});
    w.te_norm_b = get(p + "norm.bias", {D});
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
