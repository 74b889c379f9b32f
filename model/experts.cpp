#include "common/pch/torch_pch.h"

// Stacked expert MLPs (custom_moe_layer.py:24-44, fmoe/linear.py).
#include "model/experts.h"

#include "model/expert_mlp_function.h"
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

ExpertsImpl::ExpertsImpl(int num_experts, int d, int hidden) {
  htoh4 = register_module("htoh4", ExpertLinear(num_experts, d, hidden));
  h4toh = register_module("h4toh", ExpertLinear(num_experts, hidden, d));
}

torch::Tensor ExpertsImpl::forward(int e, const torch::Tensor& x) {
  return h4toh->forward(e, torch::gelu(htoh4->forward(e, x)));  // exact erf GELU (nn.GELU default)
}

torch::Tensor ExpertsImpl::forward_queues(const torch::Tensor& xs, const std::vector<int64_t>& count) {
  // The queues side by side, one whole gemm per expert and thread, forward and backward written out
  // (model/expert_mlp_function.h): about 1.4x faster than the padded batched matmul (baddbmm) it
  // replaced (bench/train_step_profile). With no token at all (possible on one rank of an
  // expert-parallel run) the output is empty but still a function of the input and the weights:
  // the weights get zero gradients, as in a run where other experts of the layer had tokens (weight
  // decay and momentum then treat them alike), and the backward pass reaches the input, which came by
  // all-to-all. That exchange's backward is a collective every rank must join; without the tie
  // autograd would skip it on this rank and the ranks that did receive tokens would wait forever.
  return expert_mlp(xs, count, htoh4->weight, htoh4->bias, h4toh->weight, h4toh->bias);  // [Σ count, d]
}

}  // namespace m3vit
