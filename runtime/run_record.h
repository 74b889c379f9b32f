// What one run of the engine leaves behind: the wall-clock split (always) and, when asked for, the
// intermediates (tests and debugging). Filled by the backbone and the engine, read by callers.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/weight_stream.h"

namespace m3vit::rt {

// Optional record of one run's intermediates (allocates; for tests and debugging only).
struct RunTrace {
  std::vector<std::vector<float>> block_out;    // per block: [N, d]
  std::vector<std::vector<int32_t>> topk_idx;   // per MoE layer: [N, k], descending probability
  std::vector<std::vector<float>> topk_w;       // per MoE layer: [N, k]
  std::vector<std::vector<int32_t>> queue_len;  // per MoE layer: [E] tokens per expert
  std::vector<std::vector<float>> moe_in;       // per MoE layer: [N, d] LN2 output, the router input
};

// Wall-clock split of the last run, in milliseconds.
struct RunTimes {
  double embed = 0, attention = 0, mlp = 0, moe = 0, head = 0, total = 0;
  int experts_computed = 0;  // non-empty expert queues over all MoE layers
  WeightStreamStats stream;  // stream modes: loads, bytes read, time waited for a load
};

}  // namespace m3vit::rt
