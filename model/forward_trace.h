// ForwardTrace: named intermediates of one forward pass (docs/TESTING.md), filled only when a pointer is
// passed, so that every tensor can be compared with the PyTorch parity oracle.
#pragma once

#include "common/pch/torch_pch.h"

#include <vector>

namespace m3vit {

struct ForwardTrace {
  std::vector<torch::Tensor> block_out;      // per block: [B, N, d]
  std::vector<torch::Tensor> router_logits;  // per MoE layer: [B*N, E] (before noise)
  std::vector<torch::Tensor> router_probs;   // per MoE layer: [B*N, E] softmax over all E
  std::vector<torch::Tensor> topk_idx;       // per MoE layer: [B*N, k] int64, descending probability
  std::vector<torch::Tensor> topk_w;         // per MoE layer: [B*N, k] kept probabilities (not renormalised)
  torch::Tensor head_in;                     // [B, d, h, w] after the head's LayerNorm, for the traced task
};

}  // namespace m3vit
