#include "common/pch/torch_pch.h"

// Stacked expert MLPs (custom_moe_layer.py:24-44, fmoe/linear.py).
#include "model/experts.h"

#include <algorithm>

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
  const int64_t E = static_cast<int64_t>(count.size());
  const int64_t total = xs.size(0);
  const int64_t longest = count.empty() ? 0 : *std::max_element(count.begin(), count.end());
  if (total == 0) {
    // No token for any of these experts (possible on one rank of an expert-parallel run). The output
    // is still tied to the weights, so that they get a zero gradient as in a run where other experts
    // of the layer had tokens: weight decay and momentum then treat them alike. It is tied to the
    // (empty) input too: in an expert-parallel run the input came by all-to-all, and that exchange's
    // backward pass is a collective that every rank must join. Without the tie autograd would skip it
    // on this rank and the ranks that did receive tokens would wait for it forever.
    torch::Tensor zero = (xs.sum() + htoh4->weight.sum() + htoh4->bias.sum() + h4toh->weight.sum() +
                          h4toh->bias.sum()) * 0;
    return xs.new_zeros({0, h4toh->weight.size(1)}) + zero;
  }
  if (total > 0 && longest * E * 2 <= total * 3) {
    // Balanced queues (padding wastes under half): every queue padded to the longest, all experts in
    // two batched matmuls (baddbmm) instead of 2·E small ones, forward and backward. Row j of queue e
    // sits at e·longest + j; the padding rows are zeros, computed and dropped (no gradient reaches them).
    std::vector<int64_t> pos;
    pos.reserve(total);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < count[e]; ++j) pos.push_back(e * longest + j);
    const torch::Tensor at = torch::tensor(pos, torch::kLong);
    torch::Tensor xp = torch::zeros({E * longest, xs.size(1)}, xs.options()).index_copy(0, at, xs);
    torch::Tensor h = torch::gelu(torch::baddbmm(htoh4->bias.unsqueeze(1), xp.view({E, longest, xs.size(1)}),
                                                 htoh4->weight.transpose(1, 2)));  // [E, longest, hid]
    torch::Tensor y = torch::baddbmm(h4toh->bias.unsqueeze(1), h, h4toh->weight.transpose(1, 2));  // [E, longest, d]
    return y.view({E * longest, -1}).index_select(0, at);                                          // [Σ count, d]
  }
  // Unbalanced queues: one pair of matmuls per expert.
  const std::vector<torch::Tensor> w1 = htoh4->weight.unbind(0), b1 = htoh4->bias.unbind(0);  // E x [hid, d], [hid]
  const std::vector<torch::Tensor> w2 = h4toh->weight.unbind(0), b2 = h4toh->bias.unbind(0);  // E x [d, hid], [d]
  std::vector<torch::Tensor> ys;
  ys.reserve(count.size());
  int64_t off = 0;
  for (size_t e = 0; e < count.size(); ++e) {
    const int64_t n = count[e];
    if (n == 0) continue;  // an expert no token chose is never computed
    torch::Tensor h = torch::gelu(torch::addmm(b1[e], xs.narrow(0, off, n), w1[e].t()));  // [n, hid]
    ys.push_back(torch::addmm(b2[e], h, w2[e].t()));                                      // [n, d]
    off += n;
  }
  return torch::cat(ys, 0);
}

}  // namespace m3vit
