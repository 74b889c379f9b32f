// The bf16 and VNNI capability checks and the fp32<->bf16 loops (runtime/ops/dnnl_context.h, runtime/ops/bf16.h).
#include "runtime/ops/dnnl_context.h"

#include <algorithm>

#include "runtime/ops/bf16.h"
#include "runtime/ops/simd.h"

namespace m3vit::rt {

bool cpu_has_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
}

bool cpu_has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
}

namespace {
// The scalar rounding of bf16.h (round to nearest even on the bits, NaN kept quiet) on 16 lanes:
// bit for bit the same result. GCC does not vectorise the scalar loop (its NaN branch); this pass
// ran before every bf16 matmul at ~4% of a bf16 forward pass.
M3VIT_AVX512BW inline __m256i round_to_bf16(__m512i u) {
  const __m512i exp_mask = _mm512_set1_epi32(0x7f800000), man_mask = _mm512_set1_epi32(0x7fffff);
  const __mmask16 nan =
      _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exp_mask), exp_mask) & _mm512_test_epi32_mask(u, man_mask);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __m512i kept = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, kept));
}
M3VIT_AVX512BW void f32_to_bf16_avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), round_to_bf16(_mm512_loadu_si512(src + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, m, round_to_bf16(_mm512_maskz_loadu_epi32(m, src + i)));
  }
}
}  // namespace

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  static const bool simd = cpu_has_avx512bw();
  if (simd) {
    // Slices of 4096 values (a multiple of 16, so only the last one has a tail).
    const int64_t slices = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t s = 0; s < slices; ++s)
      f32_to_bf16_avx512(src + s * 4096, dst + s * 4096, std::min<int64_t>(4096, n - s * 4096));
    return;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

}  // namespace m3vit::rt
