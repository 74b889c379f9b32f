// Cycle counts of the units of a layer-sequential ViT/MoE accelerator (M³ViT paper §3.2, Fig. 3;
// Edge-MoE ICCAD 2023 §IV), and the timeline that overlaps weight loads with computation through
// two weight buffers (ping/pong).
//
// Each unit's count follows its loop structure in Edge-MoE's HLS code, generalised by the lanes of
// AccelConfig (sharc-lab/Edge-MoE at 984b23b, src/):
//   linear       n · ⌈in/Lin⌉ · ⌈out/Lout⌉ MAC cycles (a Lin x Lout block per cycle, linear.cpp),
//                or the DRAM streams of its input/output when those are slower
//   weight load  (in·out·w_bits + out·b_bits)/8 bytes at one stream's rate, + DRAM latency
//   Q·Kᵀ / A·V   p queries at a time, staggered by one key: ⌈(N+p-1)/p⌉ groups x N keys steps
//                (the last, partial group stops early), ⌈d/lanes⌉ cycles per step; the single-pass
//                softmax stage runs beside Q·Kᵀ at `softmax_pairs` (query, key) pairs per cycle
//   LayerNorm    one pass (mean and mean of squares), then normalise: ⌈d/lanes⌉ per phase
//   router       ⌈d/gate_lanes⌉ logit cycles, E·ii softmax cycles, E top-k insertion cycles
//   GELU         fused into the linear unit's output (no cycles) unless gelu_fused is false
// Units run one at a time (layer-sequential), so a frame's time is the sum of the units' times plus
// the cycles spent waiting for weights that were not loaded in time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hw/cost/accel_config.h"
#include "core/config.h"

namespace m3vit::hw {

// The sizes of a model that the hardware sees.
struct ModelShape {
  int64_t tokens = 0;      // N = 1 + patches
  int64_t patches = 0;
  int64_t patch_in = 0;    // in_chans · patch²
  int64_t img_bytes = 0;   // 8-bit pixels of one image
  int64_t grid_w = 0;
  int64_t d = 0, heads = 0, head_dim = 0;
  int64_t hidden = 0;      // dense MLP hidden
  int64_t moe_hidden = 0;  // expert hidden
  int64_t experts = 0, top_k = 0;
  int depth = 0;
  std::vector<bool> moe;   // per block
  int moe_layers() const;
};
ModelShape model_shape(const ModelConfig& cfg);

// Cost of one unit invocation.
struct UnitCost {
  std::string unit;       // patch_embed | layernorm | linear | attention_qk | attention_av | add | gelu |
                          // gating | experts
  std::string name;       // what it computes: "q", "fc1", "qk", "expert 3 fc2", ...
  double compute = 0;     // cycles the unit is busy (its own activation streaming included)
  double load = 0;        // weight-load cycles issued for it
  double stall = 0;       // cycles the pipeline waited for its weights (load not hidden)
  double dram_bytes = 0;  // weights and activations it moves
  double macs = 0;
  double cycles() const { return compute + stall; }
  UnitCost& operator+=(const UnitCost& o);
};

// Bytes of one linear layer's weights and biases.
double linear_weight_bytes(const AccelConfig& a, int64_t in, int64_t out);
// Bytes of one expert (fc1 + fc2 with biases).
double expert_bytes(const AccelConfig& a, const ModelShape& s);
// Cycles to load `bytes` of weights (one stream, plus the DRAM latency).
double load_cycles(const AccelConfig& a, double bytes);

// Unit costs (compute, DRAM bytes, MACs; `load` holds the weight-load cycles where the unit has
// weights; `stall` is left to the timeline).
UnitCost linear_cost(const AccelConfig& a, int64_t n_tokens, int64_t in, int64_t out, bool scatter_accumulate,
                     const std::string& name);
UnitCost patch_embed_cost(const AccelConfig& a, const ModelShape& s);
UnitCost layernorm_cost(const AccelConfig& a, const ModelShape& s, const std::string& name);
UnitCost add_cost(const AccelConfig& a, const ModelShape& s, const std::string& name);
UnitCost gelu_cost(const AccelConfig& a, int64_t n_tokens, int64_t hidden);
// Staggered Q·Kᵀ with the single-pass softmax statistics, and A·V (attention.cpp).
UnitCost attention_qk_cost(const AccelConfig& a, const ModelShape& s);
UnitCost attention_av_cost(const AccelConfig& a, const ModelShape& s);
// Key steps of one staggered pass: groups of p queries, N keys each; the last group, if it starts
// past the last query, only finishes the wrapped rows ((N + p - 1) mod p keys).
int64_t staggered_steps(int64_t tokens, int64_t p);
// Router over all tokens, including zeroing the MoE output buffer (moe.cpp compute_gating).
UnitCost gating_cost(const AccelConfig& a, const ModelShape& s);

// The compute pipeline and the weight-load engine of one frame. Weighted ops alternate between two
// buffers (ping/pong): the load of op i may start once the load engine is free and the op that
// last used the same buffer has finished (overlap_loads), else right before op i computes.
class Timeline {
 public:
  explicit Timeline(bool overlap) : overlap_(overlap) {}
  // An op whose weights take `load` cycles; returns the stall (cycles waited for the weights).
  double weighted(double load, double compute);
  // An op without streamed weights.
  void plain(double compute) { t_ += compute; }
  // A load into a store of its own (router weights, the all-experts store) that may begin at
  // `free_at` when loads overlap; needed now. Returns the stall.
  double side_load(double load, double free_at);
  // A load needed right now that cannot be prefetched (an expert-cache miss). Returns the stall.
  double demand_load(double load);
  // Issues a load now into a store of its own (the next MoE layer's experts); the load engine serves
  // loads in program order, so later ping/pong loads queue behind it. Returns when it completes.
  double prefetch(double load);
  // Waits for a prefetched load; returns the stall.
  double wait_until(double ready);
  double now() const { return t_; }

 private:
  bool overlap_;
  double t_ = 0, load_free_ = 0;
  double buf_free_[2] = {0, 0};
  int next_ = 0;
};

}  // namespace m3vit::hw
