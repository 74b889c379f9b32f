#include "common/pch/torch_pch.h"

// The authors' initialisation helpers (vision_transformer_moe.py:460-479, fmoe/linear.py,
// noisy_gate_vmoe.py:63-70; quirk Q27 in docs/AUTHORS_CODE.md).
#include "model/weight_init.h"

#include <cmath>

namespace m3vit {

void trunc_normal_(torch::Tensor t, double std, double mean, double a, double b) {
  torch::NoGradGuard no_grad;
  // Sample U(cdf(a), cdf(b)) and map it through the inverse normal CDF.
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double l = cdf((a - mean) / std), u = cdf((b - mean) / std);
  t.uniform_(2 * l - 1, 2 * u - 1);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.add_(mean);
  t.clamp_(a, b);
}

void kaiming_uniform_a_sqrt5(torch::Tensor t) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(t, std::sqrt(5.0));
}

void init_linear(torch::nn::Linear& lin) {
  trunc_normal_(lin->weight);
  if (lin->bias.defined()) {
    torch::NoGradGuard no_grad;
    lin->bias.zero_();
  }
}

}  // namespace m3vit
