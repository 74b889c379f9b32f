#include "common/pch/torch_pch.h"

// Dense ViT MLP (vision_transformer_moe.py:156-172).
#include "model/mlp.h"

#include "model/weight_init.h"

namespace m3vit {

MlpImpl::MlpImpl(int dim, int hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  init_linear(fc1);
  init_linear(fc2);
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(torch::gelu(fc1->forward(x)));  // nn.GELU default: exact erf form; dropout p=0 omitted
}

}  // namespace m3vit
