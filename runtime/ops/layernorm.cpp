// LayerNorm rows (runtime/ops/layernorm.h). Two passes per row (mean, then centred variance) in fp32,
// which for d = 384 keeps the error near fp32 rounding; torch's CPU kernel accumulates in fp32 too.
#include "runtime/ops/layernorm.h"

#include <cmath>

namespace m3vit::rt {

void layer_norm(const float* x, float* y, int64_t rows, int dim, const float* gamma, const float* beta, double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < dim; ++i) sum += xr[i];
    const float mean = sum / dim;
    float sq = 0.f;
#pragma omp simd reduction(+ : sq)
    for (int i = 0; i < dim; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sq / dim) + eps));
#pragma omp simd
    for (int i = 0; i < dim; ++i) yr[i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
  }
}

}  // namespace m3vit::rt
