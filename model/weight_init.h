// The authors' weight initialisation (vision_transformer_moe.py:458-479): truncated normal std 0.02
// for Linear weights, the cls token and the positional embedding; zero biases; LayerNorm 1/0;
// kaiming-uniform a=sqrt(5) for the stacked expert tensors and the router weight. Everything draws
// from torch's global RNG.
#pragma once

#include "common/pch/torch_pch.h"

namespace m3vit {

// In place: N(mean, std) truncated to [a, b] (absolute bounds, as timm's trunc_normal_ with its
// defaults a=-2, b=2: at std 0.02 the bounds never bite). Inverse-CDF sampling like PyTorch's.
void trunc_normal_(torch::Tensor t, double std = 0.02, double mean = 0.0, double a = -2.0, double b = 2.0);

// In place: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with torch's fan_in = size(1) * prod(size(2..)),
// i.e. kaiming_uniform_(t, a=sqrt(5)).
void kaiming_uniform_a_sqrt5(torch::Tensor t);

// trunc-normal(0.02) weight, zero bias (vision_transformer_moe.py:471-479).
void init_linear(torch::nn::Linear& lin);

}  // namespace m3vit
