// The whole-frame hardware model: one image through the layer-sequential accelerator, block by
// block (patch embedding, then per block LN1 → Q → K → Q·Kᵀ+softmax → V → A·V → proj → add →
// LN2 → dense MLP or router + experts → add; Edge-MoE ViT_compute.cpp order), for one of the three
// MoE strategies; plus the on-chip memory each strategy needs, DRAM traffic, energy, and the cost
// of switching task between frames.
//
// Energy is latency x board power, as in the M³ViT paper (§4.1: "assumed 10 W"), plus the DRAM's
// access energy per byte moved (AccelConfig::dram_pj_per_byte), which the paper leaves out: the
// expert cache moves about 127x the bytes of the reordered design, and that costs energy too.
#pragma once

#include <string>
#include <vector>

#include "hw/cost/accel_config.h"
#include "hw/cost/cycle_model.h"
#include "hw/cost/expert_trace.h"
#include "hw/cost/moe_strategies.h"
#include "core/config.h"

namespace m3vit::hw {

// On-chip memory a design needs, in bytes, by purpose.
struct MemoryNeed {
  double weight_buffers = 0;  // two buffers (ping/pong), each the largest streamed layer
  double expert_store = 0;    // all_on_chip: E experts of one layer beyond the ping/pong; cache: slots beyond it
  double activations = 0;     // token buffers (kept on chip) or line buffers (streamed designs)
  double queues = 0;          // per-expert token queues with gate weights (reordered)
  double router = 0;          // one router's weights
  double norms = 0;           // LayerNorm parameters of the current block
  double patch_weights = 0;   // patch-embedding weights cached on chip
  double total() const {
    return weight_buffers + expert_store + activations + queues + router + norms + patch_weights;
  }
};

// Bytes of the two ping/pong weight buffers (each sized for the largest streamed linear layer).
double pingpong_bytes(const ModelShape& s, const AccelConfig& a);
// Expert slots that fit in the ping/pong buffers: the cache's size at the reordered design's budget.
int budget_cache_slots(const ModelShape& s, const AccelConfig& a);
MemoryNeed memory_need(const ModelShape& s, const AccelConfig& a, MoeStrategy strategy, int cache_slots);

struct LayerResult {
  std::string name;               // "patch_embed", "block 3 (moe)"
  int block = -1;
  bool moe = false;
  std::vector<UnitCost> units;    // mean over the trace's images
  double cycles = 0;
  double dram_bytes = 0;
  MoeLayerStats moe_stats;        // of the last image (MoE layers only)
  double mean_active_experts = 0; // over images
};

struct HwResult {
  std::string model;       // config name
  std::string accel;       // accelerator name
  MoeStrategy strategy = MoeStrategy::reordered;
  int cache_slots = 0;     // cache strategy only
  bool cache_shared = true;
  int images = 1;
  std::vector<LayerResult> layers;  // patch embedding, then one per block
  double cycles = 0, min_cycles = 0, max_cycles = 0;  // per frame: mean, min, max over images
  double latency_ms = 0;
  double energy_board_j = 0;  // latency x board power (the paper's method)
  double energy_dram_j = 0;   // DRAM bytes x access energy per byte
  double energy_j = 0;        // their sum
  double dram_bytes = 0;   // per frame, mean
  double macs = 0;         // per frame
  double stall_cycles = 0; // per frame, mean: waiting for weights
  int64_t cache_hits = 0, cache_misses = 0;  // over all frames
  MemoryNeed memory;
  double capacity_bytes = 0;
  bool fits() const { return capacity_bytes <= 0 || memory.total() <= capacity_bytes; }
  double gops() const { return latency_ms > 0 ? 2 * macs / (latency_ms * 1e6) : 0; }
};

// Runs every image of the trace (nullptr for a dense model) through the accelerator; the cache's
// state carries over from frame to frame. cache_slots < 0: the budget of the reordered design.
HwResult evaluate(const ModelConfig& cfg, const AccelConfig& a, MoeStrategy strategy, const ExpertTrace* trace,
                  int cache_slots = -1);

// The first frame of task B right after the frames of task A, against the same frame of B after the
// frames of B (simulated; equal for designs without state across frames).
struct SwitchCost {
  double switched_cycles = 0;  // frame 0 of B after A's frames
  double steady_cycles = 0;    // frame 0 of B after B's frames
  double cycles() const { return switched_cycles - steady_cycles; }
};
SwitchCost task_switch_cost(const ModelConfig& cfg, const AccelConfig& a, MoeStrategy strategy, const ExpertTrace& from,
                            const ExpertTrace& to, int cache_slots = -1);

// Text table (one row per layer and a total) and JSON of a result.
std::string format_table(const HwResult& r, const AccelConfig& a);
std::string result_to_json(const HwResult& r, const AccelConfig& a);
// The strategies side by side (for `m3vit hw --json`): reordering's latency, energy, DRAM and memory
// against each other strategy in `rs`, as ratios other / reordered ("speedup" > 1: reordering is
// faster). Empty object when `rs` has no reordered result.
std::string comparison_to_json(const std::vector<HwResult>& rs);

}  // namespace m3vit::hw
