#include "common/pch/torch_pch.h"

// Stacked expert MLPs (custom_moe_layer.py:24-44, fmoe/linear.py).
#include "model/experts.h"

#include "model/weight_init.h"

namespace m3vit {

ExpertLinearImpl::ExpertLinearImpl(int num_experts, int in_features, int out_features) {
  weight = register_parameter("weight", torch::empty({num_experts, out_features, in_features}));
  bias = register_parameter("bias", torch::zeros({num_experts, out_features}));
  // kaiming-uniform a=sqrt(5) on the whole 3-D tensor: torch's fan_in is then out*in, so the bound is
  // 1/sqrt(out*in), not nn.Linear's 1/sqrt(in); biases stay zero (fmoe/linear.py reset_parameters).
  kaiming_uniform_a_sqrt5(weight);
}

torch::Tensor ExpertLinearImpl::forward(int e, const torch::Tensor& x) {
  return torch::addmm(bias[e], x, weight[e].t());  // [n, out]
}

ExpertsImpl::ExpertsImpl(int num_experts, int d, int hidden) : num_experts_(num_experts) {
  htoh4 = register_module("htoh4", ExpertLinear(num_experts, d, hidden));
  h4toh = register_module("h4toh", ExpertLinear(num_experts, hidden, d));
}

torch::Tensor ExpertsImpl::forward(int e, const torch::Tensor& x) {
  return h4toh->forward(e, torch::gelu(htoh4->forward(e, x)));  // exact erf GELU (nn.GELU default)
}

}  // namespace m3vit
