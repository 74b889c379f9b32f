// int8 quantisation loops (runtime/ops/quantize.h). AVX-512 where the CPU has it (every CPU that
// runs int8 mode does: VNNI implies AVX-512), scalar loops with the same rounding otherwise.
#include "runtime/ops/quantize.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/ops/simd.h"

namespace m3vit::rt {

namespace {

inline int8_t to_s8(float v) { return static_cast<int8_t>(std::clamp(std::nearbyint(v), -kS8Max, kS8Max)); }
inline uint8_t to_u8(float v) { return static_cast<uint8_t>(std::clamp(std::nearbyint(v), 0.f, kU8Max)); }

// 16 values × inv, rounded (nearest even), clamped to [lo, hi], as 16 int32.
M3VIT_AVX512BW inline __m512i round_clamp(__m512 v, __m512 inv, __m512 lo, __m512 hi) {
  v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, inv), lo), hi);
  return _mm512_cvtps_epi32(v);  // MXCSR default: round to nearest even
}

M3VIT_AVX512BW void quantize_s8_avx512(const float* x, int8_t* q, int64_t n, float inv) {
  const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-kS8Max), hi = _mm512_set1_ps(kS8Max);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtsepi32_epi8(round_clamp(_mm512_loadu_ps(x + i), vi, lo, hi)));
  for (; i < n; ++i) q[i] = to_s8(x[i] * inv);
}

}  // namespace

void quantize_weights_s8(const float* w, int64_t out, int64_t per_out, int8_t* q, float* scale) {
#pragma omp parallel for schedule(static) if (out * per_out > (1 << 16))
  for (int64_t o = 0; o < out; ++o) {
    const float* row = w + o * per_out;
    double m = 0;
    for (int64_t i = 0; i < per_out; ++i) m = std::max(m, std::fabs(static_cast<double>(row[i])));
    const float s = m > 0 ? static_cast<float>(m / kS8Max) : 1.f;
    scale[o] = s;
    // Divide (not multiply by a rounded reciprocal): the largest entry maps to exactly ±127.
    for (int64_t i = 0; i < per_out; ++i) q[o * per_out + i] = to_s8(row[i] / s);
  }
}

void quantize_s8(const float* x, int8_t* q, int64_t n, float step, bool parallel) {
  const float inv = 1.f / step;
  if (!cpu_has_avx512bw()) {
#pragma omp parallel for schedule(static) if (parallel && n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) q[i] = to_s8(x[i] * inv);
    return;
  }
  if (!parallel || n <= (1 << 16)) return quantize_s8_avx512(x, q, n, inv);
  constexpr int64_t kPiece = 1 << 14;
  const int64_t pieces = (n + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pieces; ++p)
    quantize_s8_avx512(x + p * kPiece, q + p * kPiece, std::min(kPiece, n - p * kPiece), inv);
}

void quantize_blocked_to_nhwc(const float* src, int c, int rows, int w, float step, bool u8, void* dst) {
  const float inv = 1.f / step;
  const int cb = (c + 15) / 16;
  const size_t plane = static_cast<size_t>(rows) * w * 16;  // one channel block of src
  auto* d = static_cast<uint8_t*>(dst);
#pragma omp parallel for schedule(static)
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* px = d + (static_cast<size_t>(y) * w + x) * c;
      for (int b = 0; b < cb; ++b) {
        const float* s = src + b * plane + (static_cast<size_t>(y) * w + x) * 16;
        const int n = std::min(16, c - 16 * b);
        for (int j = 0; j < n; ++j) {
          const float v = s[j] * inv;
          if (u8) px[16 * b + j] = to_u8(v);
          else px[16 * b + j] = static_cast<uint8_t>(to_s8(v));
        }
      }
    }
}

float absmax(const float* x, int64_t n) {
  float m = 0.f;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void observe_max(float* slot, float v) {
  // For v ≥ 0 the IEEE bit patterns order as the values do, so a CAS loop on the bits is a max.
  uint32_t want;
  std::memcpy(&want, &v, 4);
  auto* bits = reinterpret_cast<uint32_t*>(slot);
  uint32_t cur = __atomic_load_n(bits, __ATOMIC_RELAXED);
  while (want > cur && !__atomic_compare_exchange_n(bits, &cur, want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

}  // namespace m3vit::rt
