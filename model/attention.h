// Multi-head self-attention of a ViT block (authors' vision_transformer_moe.py:194-224, timm's
// `Attention`; paper §3.1). Keys: attn.qkv.{weight,bias} [3d, d], attn.proj.{weight,bias} [d, d].
// The qkv output is laid out [3, heads, head_dim] along its 3d axis: feature s*d + h*hd + j is
// component s (q, k, v) of head h, dimension j.
#pragma once

#include "common/pch/torch_pch.h"

namespace m3vit {

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int dim, int num_heads, bool qkv_bias);
  // x: [B, N, d] -> [B, N, d]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int num_heads_;
  double scale_;
};
TORCH_MODULE(Attention);

}  // namespace m3vit
