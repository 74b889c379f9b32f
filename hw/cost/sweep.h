// Design-space sweeps of the hardware model: on-chip memory and latency of the three MoE
// strategies against the expert count E (4..256) and against top-k, with synthetic traces
// (the expert's hidden width stays fixed, so per-token compute depends on k only).
//
// They show where each strategy breaks: all-on-chip memory grows as O(E); the cache's miss rate
// approaches 1 - slots/E; reordering keeps memory flat but, once an expert's queue (N·k/E tokens)
// computes faster than its weights load, the loads stop hiding and latency grows with E.
#pragma once

#include <string>
#include <vector>

#include "hw/cost/accel_config.h"
#include "hw/cost/expert_trace.h"
#include "hw/cost/moe_strategies.h"
#include "core/config.h"

namespace m3vit::hw {

struct SweepPoint {
  int experts = 0, top_k = 0;
  double memory_mib[3] = {0, 0, 0};  // indexed by MoeStrategy
  double latency_ms[3] = {0, 0, 0};
  double energy_j[3] = {0, 0, 0};
  double dram_mb[3] = {0, 0, 0};
  double cache_miss_rate = 0;
  int cache_slots = 0;
};

// `base` must have MoE blocks; E (or k) is replaced for each point. Points with k > E are skipped.
std::vector<SweepPoint> sweep_experts(const ModelConfig& base, const AccelConfig& a, const std::vector<int>& experts,
                                      const SyntheticTraceSpec& trace);
std::vector<SweepPoint> sweep_top_k(const ModelConfig& base, const AccelConfig& a, const std::vector<int>& top_k,
                                    const SyntheticTraceSpec& trace);

// Markdown table of a sweep.
std::string sweep_table(const std::vector<SweepPoint>& pts, bool by_experts);
// SVG plots: memory against E and latency against E, one line per strategy.
std::string sweep_memory_svg(const std::vector<SweepPoint>& pts, const AccelConfig& a, const std::string& title);
std::string sweep_latency_svg(const std::vector<SweepPoint>& pts, const std::string& title);

}  // namespace m3vit::hw
