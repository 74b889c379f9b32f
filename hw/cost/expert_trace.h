// Expert traces: which k experts every token picked in every MoE layer, for a set of images.
// They drive the three MoE strategies of the hardware model (hw/cost/moe_strategies.h), because the
// cost of an expert cache or of per-expert queues depends on the actual routing, not on averages.
//
// File format (docs/ARCHITECTURE.md, "Routing trace"): safetensors with
//   topk_idx  I32 [images, moe_layers, tokens, k]   expert ids, descending gate probability
//   topk_w    F32 [images, moe_layers, tokens, k]   kept gate probabilities (not renormalised,
//                                                   M³ViT's noisy_vmoe gate, noisy_gate_vmoe.py:258-268)
//   __metadata__: "m3vit_config" (ModelConfig JSON), "task", optional "source".
// Written by `m3vit trace` (the libtorch model on real or synthetic images) or generated here.
//
// Synthetic traces (for sensitivity studies) draw per-token router logits z ~ N(0, 1) per expert,
// optionally correlated along the token (raster) order, z_t = ρ z_{t-1} + sqrt(1-ρ²) n_t, plus a
// per-expert popularity bias -s·ln(1 + rank_e) for the skewed kind; then softmax and top-k as the
// gate does. `uniform` (s = 0, ρ = 0) is the cache-hostile routing the paper's cache-based
// estimate corresponds to (M³ViT paper §3.2: nearly every expert is touched in every frame).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace m3vit::hw {

struct ExpertTrace {
  ModelConfig cfg;          // the model that routed (E = cfg.moe_experts, k = cfg.moe_top_k)
  std::string task;         // task whose routers were used
  std::string source;       // "model", "synthetic uniform seed 1", ...
  int images = 0, layers = 0, tokens = 0, k = 0;
  std::vector<int32_t> idx;  // [images, layers, tokens, k]
  std::vector<float> w;      // [images, layers, tokens, k]

  size_t offset(int img, int layer, int tok) const {
    return ((static_cast<size_t>(img) * layers + layer) * tokens + tok) * k;
  }
  const int32_t* experts(int img, int layer, int tok) const { return idx.data() + offset(img, layer, tok); }
  const float* weights(int img, int layer, int tok) const { return w.data() + offset(img, layer, tok); }
  // Tokens routed to each expert (the queue lengths of the reordered MoE): [E].
  std::vector<int> queue_lengths(int img, int layer) const;
  // Throws FormatError (naming `origin`) on out-of-range ids, repeated experts within a token,
  // non-finite or out-of-[0,1] weights, or sizes that do not match the shapes.
  void validate(const std::string& origin) const;
};

struct SyntheticTraceSpec {
  std::string kind = "uniform";  // uniform | skewed
  double skew = 1.0;             // s of the popularity bias (skewed only)
  double correlation = 0.0;      // ρ between consecutive tokens' logits, in [0, 1)
  int images = 1;
  uint64_t seed = 1;
  std::string task = "synthetic";
};

ExpertTrace synthetic_trace(const ModelConfig& cfg, const SyntheticTraceSpec& spec);

// Reads and validates a trace file; errors name the file and the tensor.
ExpertTrace read_trace(const std::string& path);
// Writes atomically.
void write_trace(const ExpertTrace& t, const std::string& path);

// Throws ConfigError when a trace does not fit a model (experts, top-k, tokens or MoE layers differ).
void check_trace_matches(const ExpertTrace& t, const ModelConfig& cfg);

}  // namespace m3vit::hw
