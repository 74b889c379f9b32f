// One pre-norm ViT block (authors' vision_transformer_moe.py:226-283 `Block`; paper §3.1-3.2):
//   x <- x + Attn(LN1(x));   x <- x + MLP(LN2(x))   (dense block)  or  x + MoE(LN2(x))  (MoE block).
// Keys: norm1.*, attn.*, norm2.*, and mlp.{fc1,fc2}.* or mlp.{experts,gate}.*.
#pragma once

#include "common/pch/torch_pch.h"

#include "model/attention.h"
#include "core/config.h"
#include "model/mlp.h"
#include "model/moe_layer.h"

namespace m3vit {

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& cfg, bool moe);
  // x: [B, N, d] -> [B, N, d]. task / task_emb select the routing of a MoE block (ignored if dense);
  // *route receives the routing decision of a MoE block.
  torch::Tensor forward(const torch::Tensor& x, int task, const torch::Tensor& task_emb, RouteResult* route = nullptr);
  // The two halves of forward: x + Attn(LN1(x)), which no task changes, and h + MLP/MoE(LN2(h)).
  torch::Tensor forward_attn(const torch::Tensor& x);
  torch::Tensor forward_mlp(const torch::Tensor& h, int task, const torch::Tensor& task_emb, RouteResult* route = nullptr);
  bool is_moe() const { return !moe_mlp.is_empty(); }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};          // dense block
  MoELayer moe_mlp{nullptr};  // MoE block (registered as "mlp" too)
};
TORCH_MODULE(Block);

}  // namespace m3vit
