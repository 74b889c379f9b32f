// Experts: the E two-layer GELU MLPs of one MoE layer, stored stacked as FastMoE does
// (authors' models/custom_moe_layer.py:24-44 `_Expert`, fmoe/linear.py `FMoELinear`; GELU at
// vision_transformer_moe.py:248-251):
//   htoh4: weight [E, hid, d], bias [E, hid]     expert e: h = GELU(x · W1_eᵀ + b1_e)
//   h4toh: weight [E, d, hid], bias [E, d]                   y = h · W2_eᵀ + b2_e
// Stacked [E, out, in] is also the layout of the exported safetensors file and of the runtime.
#pragma once

#include "common/pch/torch_pch.h"

namespace m3vit {

// One stacked linear layer of E experts (FastMoE's FMoELinear): weight [E, out, in], bias [E, out].
class ExpertLinearImpl : public torch::nn::Module {
 public:
  ExpertLinearImpl(int num_experts, int in_features, int out_features);
  // x: [n, in] tokens of expert e -> [n, out], one addmm.
  torch::Tensor forward(int e, const torch::Tensor& x);

  torch::Tensor weight, bias;
};
TORCH_MODULE(ExpertLinear);

class ExpertsImpl : public torch::nn::Module {
 public:
  ExpertsImpl(int num_experts, int d, int hidden);
  // The token block of expert e, x: [n, d] -> [n, d] (GELU between the two matmuls; the authors'
  // Dropout(p=0) after it is a no-op and omitted).
  torch::Tensor forward(int e, const torch::Tensor& x);
  // Every expert's token queue at once: xs [Σ count, d], the queues one after another in expert order
  // (count[e] rows for expert e) -> [Σ count, d]. The experts run side by side on the threads, each
  // on exactly its rows, with the backward pass written out (model/expert_mlp_function.h): each weight
  // gradient is written once, where per-expert indexing (weight[e], forward(e, ·)) makes a zero-filled
  // [E, out, in] gradient for every expert and adds them up. The same arithmetic as forward(e, ·) up
  // to the matmuls' summation order.
  torch::Tensor forward_queues(const torch::Tensor& xs, const std::vector<int64_t>& count);
  // The experts this module holds: all E, or E/N on one rank of an expert-parallel run, whose
  // weights are then narrowed to its slice (train/expert_shards.h).
  int num_experts() const { return static_cast<int>(htoh4->weight.size(0)); }

  ExpertLinear htoh4{nullptr}, h4toh{nullptr};
};
TORCH_MODULE(Experts);

}  // namespace m3vit
