// Expert trace I/O and synthetic traces (hw/cost/expert_trace.h).
#include "hw/cost/expert_trace.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "common/errors.h"
#include "core/export.h"
#include "io/safetensors.h"

namespace m3vit::hw {

std::vector<int> ExpertTrace::queue_lengths(int img, int layer) const {
  std::vector<int> n(cfg.moe_experts, 0);
  for (int t = 0; t < tokens; ++t) {
    const int32_t* e = experts(img, layer, t);
    for (int j = 0; j < k; ++j) ++n[e[j]];
  }
  return n;
}

void ExpertTrace::validate(const std::string& origin) const {
  size_t n = static_cast<size_t>(images) * layers * tokens * k;
  if (images < 1 || layers < 1 || tokens < 1 || k < 1)
    throw FormatError(origin + ": trace shape [" + std::to_string(images) + ", " + std::to_string(layers) + ", " +
                      std::to_string(tokens) + ", " + std::to_string(k) + "] has an empty dimension");
  if (idx.size() != n || w.size() != n)
    throw FormatError(origin + ": trace holds " + std::to_string(idx.size()) + " ids and " +
                      std::to_string(w.size()) + " weights, expected " + std::to_string(n));
  const int E = cfg.moe_experts;
  for (int i = 0; i < images; ++i)
    for (int l = 0; l < layers; ++l)
      for (int t = 0; t < tokens; ++t) {
        const int32_t* e = experts(i, l, t);
        const float* p = weights(i, l, t);
        for (int j = 0; j < k; ++j) {
          auto where = [&] {
            return origin + ": image " + std::to_string(i) + ", MoE layer " + std::to_string(l) + ", token " +
                   std::to_string(t) + ", choice " + std::to_string(j);
          };
          if (e[j] < 0 || e[j] >= E)
            throw FormatError(where() + ": expert id " + std::to_string(e[j]) + " is outside 0.." + std::to_string(E - 1));
          for (int q = 0; q < j; ++q)
            if (e[q] == e[j]) throw FormatError(where() + ": expert " + std::to_string(e[j]) + " chosen twice");
          if (!std::isfinite(p[j]) || p[j] < 0 || p[j] > 1)
            throw FormatError(where() + ": gate weight " + std::to_string(p[j]) + " is not a probability");
        }
      }
}

ExpertTrace synthetic_trace(const ModelConfig& cfg, const SyntheticTraceSpec& spec) {
  if (cfg.moe_blocks.empty()) throw ConfigError("config '" + cfg.name + "' has no MoE layers: nothing to trace");
  if (spec.kind != "uniform" && spec.kind != "skewed")
    throw ConfigError("unknown synthetic trace kind '" + spec.kind + "' (uniform, skewed)");
  if (spec.images < 1) throw ConfigError("synthetic trace needs at least one image");
  if (!(spec.correlation >= 0 && spec.correlation < 1))
    throw ConfigError("synthetic trace correlation must be in [0, 1), got " + std::to_string(spec.correlation));
  if (!(spec.skew >= 0)) throw ConfigError("synthetic trace skew must be >= 0");
  ExpertTrace t;
  t.cfg = cfg;
  t.task = spec.task;
  t.source = "synthetic " + spec.kind + (spec.kind == "skewed" ? " s=" + std::to_string(spec.skew) : "") +
             (spec.correlation > 0 ? " rho=" + std::to_string(spec.correlation) : "") + " seed " +
             std::to_string(spec.seed);
  t.images = spec.images;
  t.layers = static_cast<int>(cfg.moe_blocks.size());
  t.tokens = cfg.num_tokens();
  t.k = cfg.moe_top_k;
  const int E = cfg.moe_experts, k = cfg.moe_top_k;
  t.idx.resize(static_cast<size_t>(t.images) * t.layers * t.tokens * k);
  t.w.resize(t.idx.size());

  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double rho = spec.correlation, fresh = std::sqrt(1 - rho * rho);
  // Popularity bias per layer: a random ranking of the experts (the hot experts differ per layer,
  // as per-layer routers would make them), fixed over the images of the trace.
  std::vector<std::vector<double>> bias(t.layers, std::vector<double>(E, 0.0));
  if (spec.kind == "skewed")
    for (int l = 0; l < t.layers; ++l) {
      std::vector<int> rank(E);
      std::iota(rank.begin(), rank.end(), 0);
      std::shuffle(rank.begin(), rank.end(), rng);
      for (int e = 0; e < E; ++e) bias[l][e] = -spec.skew * std::log(1.0 + rank[e]);
    }
  std::vector<double> z(E), logit(E), p(E);
  std::vector<int> order(E);
  for (int i = 0; i < t.images; ++i)
    for (int l = 0; l < t.layers; ++l) {
      for (int e = 0; e < E; ++e) z[e] = normal(rng);
      for (int tok = 0; tok < t.tokens; ++tok) {
        if (tok > 0)
          for (int e = 0; e < E; ++e) z[e] = rho * z[e] + fresh * normal(rng);
        double mx = -1e300;
        for (int e = 0; e < E; ++e) mx = std::max(mx, logit[e] = z[e] + bias[l][e]);
        double sum = 0;
        for (int e = 0; e < E; ++e) sum += p[e] = std::exp(logit[e] - mx);
        for (int e = 0; e < E; ++e) p[e] /= sum;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
        size_t off = t.offset(i, l, tok);
        for (int j = 0; j < k; ++j) {
          t.idx[off + j] = order[j];
          t.w[off + j] = static_cast<float>(p[order[j]]);
        }
      }
    }
  return t;
}

ExpertTrace read_trace(const std::string& path) {
  SafeTensorsFile f(path);
  const auto& meta = f.metadata();
  ExpertTrace t;
  t.cfg = config_from_metadata(meta, path);
  auto task = meta.find("task");
  t.task = task == meta.end() ? "" : task->second;
  auto src = meta.find("source");
  t.source = src == meta.end() ? path : src->second;
  const TensorView& idx = f.get("topk_idx");
  if (idx.dtype != DType::I32 || idx.shape.size() != 4)
    throw ShapeError(path + ": tensor 'topk_idx' expected I32 [images, moe_layers, tokens, k], got " +
                     std::string(dtype_name(idx.dtype)) + " " + shape_str(idx.shape));
  const TensorView& w = f.get("topk_w", DType::F32, idx.shape);
  // The counts are ints here: a dimension past that (possible with another one 0) is refused
  // instead of wrapping.
  for (int64_t d : idx.shape)
    if (d > std::numeric_limits<int32_t>::max())
      throw ShapeError(path + ": tensor 'topk_idx' has a dimension past 2^31 " + shape_str(idx.shape));
  t.images = static_cast<int>(idx.shape[0]);
  t.layers = static_cast<int>(idx.shape[1]);
  t.tokens = static_cast<int>(idx.shape[2]);
  t.k = static_cast<int>(idx.shape[3]);
  const auto* ip = static_cast<const int32_t*>(idx.data);
  t.idx.assign(ip, ip + idx.numel());
  t.w.assign(w.f32(), w.f32() + w.numel());
  try {
    check_trace_matches(t, t.cfg);
  } catch (const ConfigError& e) {
    throw FormatError(path + ": " + e.what());
  }
  t.validate(path);
  return t;
}

void write_trace(const ExpertTrace& t, const std::string& path) {
  t.validate(path);
  SafeTensorsWriter w;
  std::vector<int64_t> shape = {t.images, t.layers, t.tokens, t.k};
  w.add("topk_idx", DType::I32, shape, t.idx.data(), t.idx.size() * sizeof(int32_t));
  w.add("topk_w", DType::F32, shape, t.w.data(), t.w.size() * sizeof(float));
  w.set_metadata(kConfigMetadataKey, config_to_json(t.cfg));
  w.set_metadata("task", t.task);
  w.set_metadata("source", t.source);
  w.write(path);
}

void check_trace_matches(const ExpertTrace& t, const ModelConfig& cfg) {
  auto bad = [&](const std::string& what, long have, long want) {
    throw ConfigError("trace (" + t.source + ") does not fit config '" + cfg.name + "': " + what + " " +
                      std::to_string(have) + " vs " + std::to_string(want));
  };
  if (t.k != cfg.moe_top_k) bad("top-k", t.k, cfg.moe_top_k);
  if (t.tokens != cfg.num_tokens()) bad("tokens", t.tokens, cfg.num_tokens());
  if (t.layers != static_cast<int>(cfg.moe_blocks.size())) bad("MoE layers", t.layers, static_cast<long>(cfg.moe_blocks.size()));
  if (t.cfg.moe_experts != cfg.moe_experts) bad("experts", t.cfg.moe_experts, cfg.moe_experts);
}

}  // namespace m3vit::hw
