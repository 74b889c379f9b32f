// Dense MLP of a non-MoE ViT block (authors' vision_transformer_moe.py:156-172 `Mlp`):
// fc1 (d -> d*mlp_ratio) -> exact erf GELU -> fc2 (-> d). Keys: mlp.fc1.*, mlp.fc2.*.
#pragma once

#include "common/pch/torch_pch.h"

namespace m3vit {

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int dim, int hidden);
  torch::Tensor forward(const torch::Tensor& x);  // [..., d] -> [..., d]

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace m3vit
