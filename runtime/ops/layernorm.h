// LayerNorm over the last dimension (nn.LayerNorm, eps 1e-6 in every backbone and head norm;
// vision_transformer_moe.py:353, vit_up_head.py:78):
// y = (x − mean) / √(var + eps) · γ + β, biased variance, per row. OpenMP over rows.
#pragma once

#include <cstdint>

namespace m3vit::rt {

// x, y: [rows, dim] (may alias); gamma, beta: [dim].
void layer_norm(const float* x, float* y, int64_t rows, int dim, const float* gamma, const float* beta, double eps);

}  // namespace m3vit::rt
