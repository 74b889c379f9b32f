// AVX-512 pieces shared by the runtime's hand-written kernels (attention, routing, MoE scatter-add).
// Every function carries the target attribute, so the rest of the build stays at the baseline ISA;
// callers check cpu_has_avx512() once and keep a portable path.
#pragma once

// GCC 12's AVX-512 reduce/mask intrinsics start from _mm512_undefined_ps(), which -Wmaybe-uninitialized
// reports inside the system header; the values are never read. (Clang has no such warning.) Inlined
// into a function that also targets AVX512-VL, the same start is reported as -Wuninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#define M3VIT_AVX512 __attribute__((target("avx512f,fma")))
// Kernels with vdpbf16ps / vcvtneps2bf16 (AVX512-BF16; callers check cpu_has_bf16() once). BW and VL
// come with every AVX512-BF16 CPU.
#define M3VIT_BF16_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
// Byte and word lanes (AVX512BW, with VL for 256-bit masked stores): callers check cpu_has_avx512bw().
#define M3VIT_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))

namespace m3vit::rt {

inline bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

inline bool cpu_has_avx512bw() {
  return cpu_has_avx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

// e^x for x <= 0 (values minus their maximum): 2^n · p(r), x = n·ln2 + r, |r| <= ln2/2, p the
// degree-6 Taylor polynomial (relative error ~2e-7, about 2 ulp). x < -87 flushes to ~0.
M3VIT_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// 2^x for the attention softmax (x = score − running max <= 0, finite): n = round(x), r = x − n,
// 2^n · p(r) with p the degree-5 minimax polynomial of 2^r on [−1/2, 1/2] (relative error 1.5e-7 with
// fp32 coefficients). No clamp: vscalefps flushes 2^n below 2^-149 to 0 by itself, and only an
// infinite x would need one.
M3VIT_AVX512 inline __m512 exp2_512_softmax(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.3276472455e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.6755409613e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5507130921e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022120237e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9314694405e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0000001192f));
  return _mm512_scalef_ps(p, n);
}

// The same to bf16 accuracy, for probabilities that are rounded to bf16 next (relative step 2^-8):
// degree-3 minimax, relative error 7.5e-5, 1/26 of bf16's rounding error, two FMAs fewer.
M3VIT_AVX512 inline __m512 exp2_512_bf16(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(5.5171668530e-2f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4261112511e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9326096773e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.9992805719e-1f));
  return _mm512_scalef_ps(p, n);
}

// 16×16 transpose of 32-bit elements in registers, in place: r[i] lane j <- r[j] lane i (64
// shuffles; the attention packers and the blocked-to-planar resize).
M3VIT_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  #pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + e], 128-bit lane L: element 4L + e of rows 4g..4g+3.
  #pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  #pragma GCC unroll 4
  for (int e = 0; e < 4; ++e) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88);
    const __m512 w0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xDD);
    const __m512 v1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xDD);
    r[e] = _mm512_shuffle_f32x4(v0, v1, 0x88);
    r[8 + e] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
    r[4 + e] = _mm512_shuffle_f32x4(w0, w1, 0x88);
    r[12 + e] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
  }
}

// Row update of the MoE scatter-add (runtime/moe_layer.cpp): y += a·x, n floats. The build's
// baseline ISA would do it 4 floats at a time, which cost the MoE layer ~4% at ViT-S (measured);
// masked 16-float steps cover any n.
M3VIT_AVX512 inline void axpy512(float a, const float* x, float* y, int n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1u);
    const __m512 v = _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y + i)));
  }
}
inline void axpy_row(float a, const float* x, float* y, int n) {
  static const bool simd = cpu_has_avx512();
  if (simd) return axpy512(a, x, y, n);
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

// Asks for the n floats at p, one cache line at a time: the rows the MoE layer gathers and
// scatter-adds lie at scattered addresses the hardware prefetcher cannot guess; asking 2-4 rows
// ahead made the layer 2-3% faster (measured side by side, ViT-S, 2 threads).
inline void prefetch_row(const float* p, int n) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int i = 0; i < n * 4; i += 64) _mm_prefetch(c + i, _MM_HINT_T0);
}

}  // namespace m3vit::rt
