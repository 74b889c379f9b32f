// Token queues: the paper's computation reordering for a MoE layer (M³ViT paper §3.2, Fig. 3-4;
// the Edge-MoE kernel does the same in src/moe.cpp, sharc-lab/Edge-MoE). After the router has
// chosen k experts for every token, each (token, expert) pair is appended to that expert's queue with
// its gate weight. The layer then runs expert by expert over whole queues, so one expert's weights
// are needed once per layer instead of once per token, and an expert with an empty queue is skipped.
//
// Routing follows the authors' noisy_vmoe gate in eval mode (noisy_gate_vmoe.py:178-268):
// p = softmax(logits) over ALL E experts, keep the k largest p as they are. They are NOT renormalised
// over the k (Σ_j w_j < 1), unlike Shazeer's gate or calm's MoE. Equal probabilities are ordered as
// CPU torch.topk orders them (see topk_like_torch).
// The cls token is routed like every patch token (custom_moe_layer.py:160-170).
#pragma once

#include <cstdint>
#include <vector>

namespace m3vit::rt {

// topk_idx, topk_w: [n, k], each row by descending probability.
// logits [n, E] are turned into probabilities in place.
void route_tokens(float* logits, int n, int E, int k, int32_t* topk_idx, float* topk_w);

struct TokenQueues {
  int num_experts = 0;
  std::vector<int32_t> count;   // [E] queue length of each expert
  std::vector<int32_t> offset;  // [E + 1] start of each expert's queue in token/weight
  std::vector<int32_t> token;   // [n·k] token ids grouped by expert, ascending within a queue
  std::vector<int32_t> pair;    // [n·k] the (token·k + choice) each queue position came from
  std::vector<float> weight;    // [n·k] gate weight of each (token, expert) pair
  std::vector<int32_t> active;  // experts with a non-empty queue, ascending: the compute order
  std::vector<int32_t> cursor;  // [E] write position of each queue while placing

  // Sizes the buffers once (at load); build() then never allocates.
  void reserve(int max_tokens, int E, int k);
  // Counting sort of the (token, expert) pairs by expert: count, prefix-sum, place. Stable, O(n·k + E).
  void build(const int32_t* topk_idx, const float* topk_w, int n, int k);
};

}  // namespace m3vit::rt
