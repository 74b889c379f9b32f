// Blocked multi-head attention with a running softmax (runtime/ops/attention.h).
// Work items are (head, block of kBlockQ queries), spread over OpenMP threads; each item runs its
// queries in groups of kRowGroup rows, and each group walks the keys in blocks of bk_ keys keeping its
// own running max m, sum l and output O.
#include "runtime/ops/attention.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "common/errors.h"
#include "runtime/ops/bf16.h"
#include "runtime/ops/quantize.h"
#include "runtime/ops/simd.h"

namespace m3vit::rt {

namespace {

constexpr int kG = AttentionPlan::kRowGroup;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------- AVX-512 fp32 kernels
// The tiles keep R×NV accumulators in zmm registers only if their small loops are fully unrolled,
// which -O2 does not do by itself: hence the `#pragma GCC unroll` on every loop over rows (R),
// vectors (NV, NH).

// Stores a score tile (row stride lds) and folds its first `valid` columns (the rest are padding
// keys) into the rows' running maxima vmax [R, 16]: the softmax then needs no pass of its own for
// the block max.
template <int R, int NV>
M3VIT_AVX512 inline void store_scores(const __m512 (&acc)[R][NV], float* s, int lds, int valid, float* vmax) {
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    __m512 mx = _mm512_loadu_ps(vmax + 16 * r);
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      _mm512_storeu_ps(s + r * lds + 16 * v, acc[r][v]);
      const int left = valid - 16 * v;
      if (left >= 16)
        mx = _mm512_max_ps(mx, acc[r][v]);
      else if (left > 0)
        mx = _mm512_mask_max_ps(mx, static_cast<__mmask16>((1u << left) - 1u), mx, acc[r][v]);
    }
    _mm512_storeu_ps(vmax + 16 * r, mx);
  }
}

// S[R, 16·NV] = Q[R, hd] · K[16·NV keys, hd]ᵀ. q: row stride ldq (the qkv rows, 3d); kp: NV packed
// 16-key panels [hd, 16], hd·16 floats apart; s: row stride lds.
template <int R, int NV>
M3VIT_AVX512 void qk_tile(const float* q, int64_t ldq, const float* kp, int hd, float* s, int lds, int valid,
                          float* vmax) {
  __m512 acc[R][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const int64_t panel = static_cast<int64_t>(hd) * 16;
  for (int c = 0; c < hd; ++c) {
    __m512 kv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(kp + v * panel + c * 16);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * ldq + c]);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(qb, kv[v], acc[r][v]);
    }
  }
  store_scores<R, NV>(acc, s, lds, valid, vmax);
}

// O[R, 16·NH] = O·alpha (per row) + P[R, nk] · V[nk, 16·NH]. p row stride ldp; v row stride ldv;
// o row stride 16·NH.
template <int R, int NH>
M3VIT_AVX512 void pv_tile(const float* p, int ldp, const float* v, int64_t ldv, int nk, float* o,
                          const float* alpha) {
  constexpr int hd = 16 * NH;
  __m512 acc[R][NH];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) acc[r][c] = _mm512_mul_ps(a, _mm512_loadu_ps(o + r * hd + 16 * c));
  }
  for (int j = 0; j < nk; ++j) {
    __m512 vv[NH];
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) vv[c] = _mm512_loadu_ps(v + j * ldv + 16 * c);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * ldp + j]);
      #pragma GCC unroll 16
      for (int c = 0; c < NH; ++c) acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) _mm512_storeu_ps(o + r * hd + 16 * c, acc[r][c]);
}

// ---------------------------------------------------------------- AVX512-BF16 kernels
// vdpbf16ps: acc[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1] (bf16 products, fp32 sum), 32 multiply-adds per
// instruction where an fp32 FMA does 16. The pair is the reduced index: two hd columns for q·kᵀ (keys
// packed [hd/2, 16 keys, 2]), two keys for P·v (values packed [N/2, hd, 2]).

M3VIT_BF16_AVX512 inline __m512 dpbf16(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(b));
}

// S[R, 16·NV] = Q[R, hd] · K[16·NV keys, hd]ᵀ. q: bf16 pairs (uint32), row stride hd/2; kp: NV panels
// [hd/2, 16, 2] bf16, hd·16 bf16 apart.
template <int R, int NV>
M3VIT_BF16_AVX512 void qk_tile_bf16(const uint32_t* q, const uint16_t* kp, int hd, float* s, int lds, int valid,
                                    float* vmax) {
  __m512 acc[R][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const int64_t panel = static_cast<int64_t>(hd) * 16;
  const int h2 = hd / 2;
  for (int c = 0; c < h2; ++c) {
    __m512i kv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_si512(kp + v * panel + c * 32);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i qb = _mm512_set1_epi32(static_cast<int>(q[r * h2 + c]));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = dpbf16(acc[r][v], qb, kv[v]);
    }
  }
  store_scores<R, NV>(acc, s, lds, valid, vmax);
}

// O[R, 16·NH] = O·alpha + P[R, 2·np] · V[2·np, 16·NH]. p: bf16 pairs of keys (uint32), row stride ldp
// pairs; v: [np, hd, 2] bf16.
template <int R, int NH>
M3VIT_BF16_AVX512 void pv_tile_bf16(const uint32_t* p, int ldp, const uint16_t* v, int np, float* o,
                                    const float* alpha) {
  constexpr int hd = 16 * NH;
  __m512 acc[R][NH];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) acc[r][c] = _mm512_mul_ps(a, _mm512_loadu_ps(o + r * hd + 16 * c));
  }
  for (int j = 0; j < np; ++j) {
    __m512i vv[NH];
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) vv[c] = _mm512_loadu_si512(v + (j * hd + 16 * c) * 2);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i pb = _mm512_set1_epi32(static_cast<int>(p[r * ldp + j]));
      #pragma GCC unroll 16
      for (int c = 0; c < NH; ++c) acc[r][c] = dpbf16(acc[r][c], pb, vv[c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) _mm512_storeu_ps(o + r * hd + 16 * c, acc[r][c]);
}

// ---------------------------------------------------------------- AVX512-VNNI s8 kernels (int8 mode)
// vpdpbusd: acc[i] += a[4i]·b[4i] + … + a[4i+3]·b[4i+3] (u8 × s8 products, s32 sum), 64 multiply-adds
// per instruction. q·kᵀ: q as u8 (q̂ + 128, one step per query row), keys s8 (one step per key) in
// panels [hd/4, 16, 4]; the +128 is taken back with each key's 128·Σk̂ (kcomp). P·v: P as u8
// (round(255·P), P ≤ 1 after the running max), values s8 (one step per channel) packed [N/4, hd, 4].
#define M3VIT_VNNI_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,fma")))

// acc += dpbusd(a u8, b s8) in place. Written as asm because GCC 12 compiles the intrinsic on arrays
// of accumulators into a register copy (and stack spills) around every vpdpbusd: the tiles below
// measured no faster than their bf16 forms that way.
M3VIT_VNNI_AVX512 inline void dpbusd(__m512i& acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

// The 4 bytes at p in every 32-bit lane (one row's quad of u8 against 16 lanes of s8 quads).
M3VIT_VNNI_AVX512 inline __m512i broadcast_quad(const uint8_t* p) {
  int32_t quad;
  std::memcpy(&quad, p, 4);
  return _mm512_set1_epi32(quad);
}

// S[R, 16·NV] = Q · Kᵀ from s32 sums, in units of each row's step: acc·kscale[key] − kcomp[key] (the
// softmax multiplies by the row's qscale; one multiply fewer per score here). q8: u8 rows of hd bytes;
// kp: NV panels 16·hd bytes apart; kscale: the 16·NV keys' steps (times hd^-0.5 · log2 e); kcomp:
// their compensations (128·Σk̂, times kscale).
template <int R, int NV>
M3VIT_VNNI_AVX512 void qk_tile_s8(const uint8_t* q8, const int8_t* kp, const float* kscale, const float* kcomp, int hd,
                                  float* s, int lds, int valid, float* vmax) {
  __m512i acc[R][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  const int64_t panel = static_cast<int64_t>(hd) * 16;
  for (int g = 0; g < hd / 4; ++g) {
    __m512i kv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_si512(kp + v * panel + g * 64);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i qb = broadcast_quad(q8 + r * hd + 4 * g);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) dpbusd(acc[r][v], qb, kv[v]);
    }
  }
  __m512 f[R][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      f[r][v] = _mm512_fmsub_ps(_mm512_cvtepi32_ps(acc[r][v]), _mm512_loadu_ps(kscale + 16 * v),
                                _mm512_loadu_ps(kcomp + 16 * v));
  store_scores<R, NV>(f, s, lds, valid, vmax);
}

// O[R, 16·NH] = O·alpha + (P8 · V8) · vscale: p8 u8 rows (stride ldp bytes) of nq key quads; v8
// [nq, hd, 4] s8; vscale [hd] = the channels' steps / 255.
template <int R, int NH>
M3VIT_VNNI_AVX512 void pv_tile_s8(const uint8_t* p8, int ldp, const int8_t* v8, int nq, float* o, const float* alpha,
                                  const float* vscale) {
  constexpr int hd = 16 * NH;
  __m512i acc[R][NH];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) acc[r][c] = _mm512_setzero_si512();
  for (int j = 0; j < nq; ++j) {
    __m512i vv[NH];
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) vv[c] = _mm512_loadu_si512(v8 + (j * hd + 16 * c) * 4);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i pb = broadcast_quad(p8 + r * ldp + 4 * j);
      #pragma GCC unroll 16
      for (int c = 0; c < NH; ++c) dpbusd(acc[r][c], pb, vv[c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) {
      const __m512 pv = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][c]), _mm512_loadu_ps(vscale + 16 * c));
      _mm512_storeu_ps(o + r * hd + 16 * c, _mm512_fmadd_ps(a, _mm512_loadu_ps(o + r * hd + 16 * c), pv));
    }
  }
}

// ---------------------------------------------------------------- tile dispatch
// Full tiles are 6 rows (q·kᵀ; P·v at hd 64) or 12 rows (P·v at hd 16, 32: 12·NH accumulators) and
// 4 panels; the tables give the tails (rows of the last group, panels of the last block) their own
// fully unrolled instance.
constexpr int kQkRows = 6;
constexpr int pv_rows(int nh) { return nh == 4 ? 6 : 12; }

template <typename Fn, template <int, int> class Make, int NV, int... R>
constexpr auto row_table(std::integer_sequence<int, R...>) {
  return std::array<Fn, sizeof...(R)>{Make<R + 1, NV>::fn...};
}

using QkFn = void (*)(const float*, int64_t, const float*, int, float*, int, int, float*);
using QkFn16 = void (*)(const uint32_t*, const uint16_t*, int, float*, int, int, float*);
using PvFn = void (*)(const float*, int, const float*, int64_t, int, float*, const float*);
using PvFn16 = void (*)(const uint32_t*, int, const uint16_t*, int, float*, const float*);

template <int R, int NV> struct MakeQk { static constexpr QkFn fn = &qk_tile<R, NV>; };
template <int R, int NV> struct MakeQk16 { static constexpr QkFn16 fn = &qk_tile_bf16<R, NV>; };
template <int R, int NH> struct MakePv { static constexpr PvFn fn = &pv_tile<R, NH>; };
template <int R, int NH> struct MakePv16 { static constexpr PvFn16 fn = &pv_tile_bf16<R, NH>; };
using QkFn8 = void (*)(const uint8_t*, const int8_t*, const float*, const float*, int, float*, int, int,
                       float*);
using PvFn8 = void (*)(const uint8_t*, int, const int8_t*, int, float*, const float*, const float*);
template <int R, int NV> struct MakeQk8 { static constexpr QkFn8 fn = &qk_tile_s8<R, NV>; };
template <int R, int NH> struct MakePv8 { static constexpr PvFn8 fn = &pv_tile_s8<R, NH>; };

// [panels − 1][rows − 1]
constexpr std::array<std::array<QkFn, kQkRows>, 4> kQk = {
    row_table<QkFn, MakeQk, 1>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn, MakeQk, 2>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn, MakeQk, 3>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn, MakeQk, 4>(std::make_integer_sequence<int, kQkRows>{})};
constexpr std::array<std::array<QkFn16, kQkRows>, 4> kQk16 = {
    row_table<QkFn16, MakeQk16, 1>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn16, MakeQk16, 2>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn16, MakeQk16, 3>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn16, MakeQk16, 4>(std::make_integer_sequence<int, kQkRows>{})};
// [hd/16 − 1 as 0, 1, 2 for hd 16, 32, 64][rows − 1], padded to 12 rows.
template <typename Fn, template <int, int> class Make, int NH>
constexpr std::array<Fn, kG> pv_table() {
  auto t = row_table<Fn, Make, NH>(std::make_integer_sequence<int, pv_rows(NH)>{});
  std::array<Fn, kG> out{};
  for (size_t i = 0; i < t.size(); ++i) out[i] = t[i];
  return out;
}
constexpr std::array<std::array<PvFn, kG>, 3> kPv = {pv_table<PvFn, MakePv, 1>(), pv_table<PvFn, MakePv, 2>(),
                                                     pv_table<PvFn, MakePv, 4>()};
constexpr std::array<std::array<PvFn16, kG>, 3> kPv16 = {
    pv_table<PvFn16, MakePv16, 1>(), pv_table<PvFn16, MakePv16, 2>(), pv_table<PvFn16, MakePv16, 4>()};
constexpr std::array<std::array<QkFn8, kQkRows>, 4> kQk8 = {
    row_table<QkFn8, MakeQk8, 1>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn8, MakeQk8, 2>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn8, MakeQk8, 3>(std::make_integer_sequence<int, kQkRows>{}),
    row_table<QkFn8, MakeQk8, 4>(std::make_integer_sequence<int, kQkRows>{})};
constexpr std::array<std::array<PvFn8, kG>, 3> kPv8 = {pv_table<PvFn8, MakePv8, 1>(), pv_table<PvFn8, MakePv8, 2>(),
                                                       pv_table<PvFn8, MakePv8, 4>()};
constexpr int hd_index(int hd) { return hd == 16 ? 0 : hd == 32 ? 1 : 2; }

// ---------------------------------------------------------------- softmax rows

// The first `left` of 16 lanes (none for left <= 0).
inline __mmask16 lanes(int left) {
  if (left >= 16) return static_cast<__mmask16>(0xffff);
  return left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1u);
}

// 2^(m − m'), the factor for O and l when the running max rises from m to m' (0 on a row's first
// block, m = −inf). One lane of the vector 2^x: libm's exp2f here was 1% of the core.
M3VIT_AVX512 inline float rescale(float m, float m_new) {
  if (m == kNegInf) return 0.f;
  return _mm512_cvtss_f32(exp2_512_softmax(_mm512_set1_ps(m - m_new)));
}

// Running-softmax update of one row of nk scores (log2 units: the keys carry log2 e) whose maxima
// per lane are vmax: m' = max(m, max s), P = 2^(s − m') written over s, l = l·2^(m − m') + ΣP;
// returns 2^(m − m'), the factor for O.
M3VIT_AVX512 float softmax_row(float* s, int nk, const float* vmax, float& m, float& l) {
  const float m_new = std::max(m, _mm512_reduce_max_ps(_mm512_loadu_ps(vmax)));
  const float alpha = rescale(m, m_new);
  const __m512 mb = _mm512_set1_ps(m_new);
  __m512 vsum = _mm512_setzero_ps();
  int j = 0;
  for (; j + 16 <= nk; j += 16) {
    const __m512 e = exp2_512_softmax(_mm512_sub_ps(_mm512_loadu_ps(s + j), mb));
    _mm512_storeu_ps(s + j, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  if (j < nk) {
    const __mmask16 k = lanes(nk - j);
    const __m512 e = _mm512_maskz_mov_ps(k, exp2_512_softmax(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), mb)));
    _mm512_mask_storeu_ps(s + j, k, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  l = l * alpha + _mm512_reduce_add_ps(vsum);
  m = m_new;
  return alpha;
}

// The same with P rounded to bf16 into p16, 32 at a time (one vcvtne2ps2bf16), zero from nk up to
// the next multiple of 32, so an odd nk pairs its last key with a zero weight. The sum adds the
// rounded P (a vdpbf16ps against ones: one instruction per 32): O / l is then a weighted mean of
// the values with exactly the weights P·v used.
M3VIT_BF16_AVX512 float softmax_row_bf16(const float* s, int nk, const float* vmax, uint16_t* p16, float& m,
                                         float& l) {
  const float m_new = std::max(m, _mm512_reduce_max_ps(_mm512_loadu_ps(vmax)));
  const float alpha = rescale(m, m_new);
  const __m512 mb = _mm512_set1_ps(m_new);
  const __m512i ones = _mm512_set1_epi16(0x3f80);  // bf16 1.0
  __m512 vsum = _mm512_setzero_ps();
  int j = 0;
  for (; j + 32 <= nk; j += 32) {
    const __m512 e0 = exp2_512_bf16(_mm512_sub_ps(_mm512_loadu_ps(s + j), mb));
    const __m512 e1 = exp2_512_bf16(_mm512_sub_ps(_mm512_loadu_ps(s + j + 16), mb));
    const __m512i pb = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0));
    _mm512_storeu_si512(p16 + j, pb);
    vsum = dpbf16(vsum, pb, ones);
  }
  if (j < nk) {
    const __mmask16 k0 = lanes(nk - j), k1 = lanes(nk - j - 16);
    const __m512 e0 = _mm512_maskz_mov_ps(k0, exp2_512_bf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k0, s + j), mb)));
    const __m512 e1 = _mm512_maskz_mov_ps(k1, exp2_512_bf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k1, s + j + 16), mb)));
    const __m512i pb = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0));
    _mm512_storeu_si512(p16 + j, pb);
    vsum = dpbf16(vsum, pb, ones);
  }
  l = l * alpha + _mm512_reduce_add_ps(vsum);
  m = m_new;
  return alpha;
}

// 255·2^x for the u8 probabilities: exp2_512_bf16 (runtime/ops/simd.h) with its coefficients times
// 255, which saves the multiply by 255 (the rounding to u8 is 46× coarser than the polynomial's error).
M3VIT_AVX512 inline __m512 exp2_times255(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(255.f * 5.5171668530e-2f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(255.f * 2.4261112511e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(255.f * 6.9326096773e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(255.f * 9.9992805719e-1f));
  return _mm512_scalef_ps(p, n);
}

// The same with P as u8, round(255·P), into p8, 16 at a time (zero from nk to the next multiple of
// 16, so the last key quad pads with zero weights). The sum adds the rounded P, as in bf16. The
// scores s are in units of the row's step qs (qk_tile_s8): the running max m is in score units.
M3VIT_VNNI_AVX512 float softmax_row_u8(const float* s, int nk, const float* vmax, float qs, uint8_t* p8, float& m,
                                       float& l) {
  const float m_new = std::max(m, qs * _mm512_reduce_max_ps(_mm512_loadu_ps(vmax)));
  const float alpha = rescale(m, m_new);
  const __m512 mb = _mm512_set1_ps(m_new), vqs = _mm512_set1_ps(qs);
  __m512i vsum = _mm512_setzero_si512();
  int j = 0;
  for (; j + 16 <= nk; j += 16) {
    const __m512 e = exp2_times255(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vqs, mb));
    const __m512i u = _mm512_cvtps_epi32(e);  // round to nearest
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p8 + j), _mm512_cvtusepi32_epi8(u));
    vsum = _mm512_add_epi32(vsum, u);
  }
  if (j < nk) {
    const __mmask16 k = lanes(nk - j);
    const __m512 e = exp2_times255(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, s + j), vqs, mb));
    const __m512i u = _mm512_maskz_cvtps_epi32(k, e);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p8 + j), _mm512_cvtusepi32_epi8(u));
    vsum = _mm512_add_epi32(vsum, u);
  }
  l = l * alpha + static_cast<float>(_mm512_reduce_add_epi32(vsum)) * (1.f / 255.f);
  m = m_new;
  return alpha;
}

// ---------------------------------------------------------------- packing (AVX-512)
// Keys go from token rows (the qkv row stride apart) to panels of 16 tokens per column: a 16×16
// transpose of 32-bit elements in registers per 16 columns (fp32) or 16 column pairs (bf16), 64
// shuffles per 256 elements (16-lane gathers per column measured about 2× slower).

// Keys of `left` tokens (at most 16 used; the rest of the panel zero) of one head, scaled, as the fp32
// panel [hd, 16].
M3VIT_AVX512 void pack_key_panel(const float* k, int64_t ld, int left, int hd, float sc, float* out) {
  const __m512 scale = _mm512_set1_ps(sc);
  for (int c0 = 0; c0 < hd; c0 += 16) {
    __m512 r[16];
    #pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      r[i] = i < left ? _mm512_mul_ps(scale, _mm512_loadu_ps(k + i * ld + c0)) : _mm512_setzero_ps();
    transpose16(r);
    #pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(out + (c0 + i) * 16, r[i]);
  }
}

// The same as bf16 pairs [hd/2, 16, 2]: each token's columns c, c+1 become one 32-bit pair first.
M3VIT_BF16_AVX512 void pack_key_panel_bf16(const float* k, int64_t ld, int left, int hd, float sc, uint16_t* out) {
  const __m512 scale = _mm512_set1_ps(sc);
  for (int c0 = 0; c0 < hd; c0 += 32) {
    const bool two = c0 + 16 < hd;  // 32 columns (16 pairs) left, or 16 (hd = 16)
    __m512 r[16];
    #pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (i >= left) {
        r[i] = _mm512_setzero_ps();
        continue;
      }
      const float* row = k + i * ld + c0;
      const __m512 x = _mm512_mul_ps(scale, _mm512_loadu_ps(row));
      const __m512 y = two ? _mm512_mul_ps(scale, _mm512_loadu_ps(row + 16)) : _mm512_setzero_ps();
      r[i] = reinterpret_cast<__m512>(_mm512_cvtne2ps_pbh(y, x));  // pairs (c0 + 2j, c0 + 2j + 1) in lane j
    }
    transpose16(r);
    const int pairs = two ? 16 : 8;
    for (int i = 0; i < pairs; ++i) _mm512_storeu_ps(reinterpret_cast<float*>(out + (c0 + 2 * i) * 16), r[i]);
  }
}

// Values of tokens t, t+1 (y null past the last token: zero) to bf16 pairs [hd, 2]: one conversion of
// both rows, then one word permutation interleaves them.
M3VIT_BF16_AVX512 void pack_value_pair_bf16(const float* x, const float* y, int hd, uint16_t* out) {
  // word 2i <- x[i] (word i), word 2i + 1 <- y[i] (word 16 + i); _mm512_set_epi16 lists word 31 first.
  const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int c = 0; c < hd; c += 16) {
    const __m512i b = reinterpret_cast<__m512i>(
        _mm512_cvtne2ps_pbh(y ? _mm512_loadu_ps(y + c) : _mm512_setzero_ps(), _mm512_loadu_ps(x + c)));
    _mm512_storeu_si512(out + 2 * c, _mm512_permutexvar_epi16(inter, b));
  }
}

// int8 mode, one head: hd columns of n rows (row stride ld) quantised as the s8 kernels take them.
// Steps are symmetric, max|x| / 127 (a zero row or channel gets step 1 and all zeros).
//   keys:   per key, s8 panels [N/16, hd/4, 16, 4], kscale = step·sc, kcomp = 128·Σk̂ (as float);
//   queries: per row, u8 q̂ + 128 [N, hd], qscale = step;
//   values: per channel, s8 quads [ceil(N/4), hd, 4] (zeros past the last token), vscale = step/255.
// Four vectors of s8 values held in s32 lanes -> one vector whose lane i holds their lane i as the
// bytes 0..3 (a's lowest): the 4-element groups vpdpbusd multiplies.
M3VIT_VNNI_AVX512 inline __m512i bytes_of_four(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i m255 = _mm512_set1_epi32(255);
  return _mm512_or_si512(
      _mm512_or_si512(_mm512_and_si512(a, m255), _mm512_slli_epi32(_mm512_and_si512(b, m255), 8)),
      _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(c, m255), 16), _mm512_slli_epi32(d, 24)));
}

M3VIT_VNNI_AVX512 void pack_keys_s8(const float* k, int64_t ld, int n, int hd, float sc, int8_t* out, float* kscale,
                                    float* kcomp) {
  for (int t0 = 0; t0 < n; t0 += 16) {
    const int left = std::min(16, n - t0);
    float inv[16];
    for (int i = 0; i < 16; ++i) {
      float mx = 0.f;
      if (i < left) {
        __m512 a = _mm512_setzero_ps();
        for (int c = 0; c < hd; c += 16) a = _mm512_max_ps(a, _mm512_abs_ps(_mm512_loadu_ps(k + (t0 + i) * ld + c)));
        mx = _mm512_reduce_max_ps(a);
      }
      const float step = s8_step(mx);
      inv[i] = 1.f / step;
      kscale[t0 + i] = i < left ? step * sc : 0.f;
    }
    __m512i comp = _mm512_setzero_si512();
    int8_t* panel = out + static_cast<int64_t>(t0) * hd;
    for (int c0 = 0; c0 < hd; c0 += 16) {
      __m512 r[16];
      #pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = i < left ? _mm512_castsi512_ps(_mm512_cvtps_epi32(
                              _mm512_mul_ps(_mm512_set1_ps(inv[i]), _mm512_loadu_ps(k + (t0 + i) * ld + c0))))
                        : _mm512_setzero_ps();
      transpose16(r);  // r[c]: column c0 + c over the 16 keys, s32
      for (int g = 0; g < 4; ++g) {
        const __m512i a = _mm512_castps_si512(r[4 * g]), b = _mm512_castps_si512(r[4 * g + 1]);
        const __m512i e = _mm512_castps_si512(r[4 * g + 2]), f = _mm512_castps_si512(r[4 * g + 3]);
        comp = _mm512_add_epi32(comp, _mm512_add_epi32(_mm512_add_epi32(a, b), _mm512_add_epi32(e, f)));
        _mm512_storeu_si512(panel + (c0 / 4 + g) * 64, bytes_of_four(a, b, e, f));
      }
    }
    // 128·Σk̂ in the scores' units (qk_tile_s8 subtracts it from acc·kscale).
    _mm512_storeu_ps(kcomp + t0, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(128.f), _mm512_cvtepi32_ps(comp)),
                                               _mm512_loadu_ps(kscale + t0)));
  }
}

M3VIT_VNNI_AVX512 void pack_queries_u8(const float* q, int64_t ld, int n, int hd, uint8_t* out, float* qscale) {
  const __m512i b128 = _mm512_set1_epi32(128);
  for (int t = 0; t < n; ++t) {
    const float* row = q + t * ld;
    __m512 a = _mm512_setzero_ps();
    for (int c = 0; c < hd; c += 16) a = _mm512_max_ps(a, _mm512_abs_ps(_mm512_loadu_ps(row + c)));
    const float step = s8_step(_mm512_reduce_max_ps(a));
    qscale[t] = step;
    const __m512 inv = _mm512_set1_ps(1.f / step);
    for (int c = 0; c < hd; c += 16) {
      const __m512i x = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(inv, _mm512_loadu_ps(row + c))), b128);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + static_cast<int64_t>(t) * hd + c), _mm512_cvtusepi32_epi8(x));
    }
  }
}

M3VIT_VNNI_AVX512 void pack_values_s8(const float* v, int64_t ld, int n, int hd, int8_t* out, float* vscale) {
  for (int c = 0; c < hd; c += 16) {
    __m512 a = _mm512_setzero_ps();
    for (int t = 0; t < n; ++t) a = _mm512_max_ps(a, _mm512_abs_ps(_mm512_loadu_ps(v + t * ld + c)));
    alignas(64) float mx[16];
    _mm512_store_ps(mx, a);
    for (int i = 0; i < 16; ++i) {
      const float step = s8_step(mx[i]);
      mx[i] = 1.f / step;
      vscale[c + i] = step / 255.f;
    }
    const __m512 inv = _mm512_load_ps(mx);
    for (int t0 = 0; t0 < n; t0 += 4) {
      __m512i x[4];
      for (int i = 0; i < 4; ++i)
        x[i] = t0 + i < n ? _mm512_cvtps_epi32(_mm512_mul_ps(inv, _mm512_loadu_ps(v + (t0 + i) * ld + c)))
                          : _mm512_setzero_si512();
      _mm512_storeu_si512(out + (static_cast<int64_t>(t0 / 4) * hd + c) * 4, bytes_of_four(x[0], x[1], x[2], x[3]));
    }
  }
}

// n floats (a multiple of 16) to bf16.
M3VIT_BF16_AVX512 void to_bf16(const float* x, int n, uint16_t* out) {
  for (int c = 0; c < n; c += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(x + c))));
}

// dst[0, n) = x·a, n a multiple of 16: the final O / l (as a scalar loop, 3% of the bf16 core).
M3VIT_AVX512 void scale_row(const float* x, float a, float* dst, int n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int c = 0; c < n; c += 16) _mm512_storeu_ps(dst + c, _mm512_mul_ps(va, _mm512_loadu_ps(x + c)));
}

inline float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

}  // namespace

AttentionPlan::AttentionPlan(int tokens, int heads, int head_dim, Precision prec)
    : n_(tokens), heads_(heads), hd_(head_dim), npanel_((tokens + 15) / 16), prec_(prec) {
  if (tokens < 1 || heads < 1 || head_dim < 1) throw ConfigError("attention plan with an empty shape");
  cpu_simd_ = cpu_has_avx512() && (hd_ == 16 || hd_ == 32 || hd_ == 64);
  cpu_bf16_ = cpu_simd_ && cpu_has_bf16();
  cpu_s8_ = cpu_simd_ && cpu_bf16_ && cpu_has_vnni();
  // int8 needs the VNNI kernels; elsewhere the core runs as in bf16 mode (or fp32), as it did before
  // it had its own.
  if (prec_ == Precision::int8 && !cpu_s8_) prec_ = cpu_bf16_ ? Precision::bf16 : Precision::fp32;
  // Equal key blocks: 1025 keys are 3 blocks of 352 (not 2 of 384 and one of 257). Fewer, longer
  // blocks rescale O less often: kBlockK = 384 measured 3-5% faster than 256 and 8% faster than 128
  // (1025 tokens, 12 heads of 32, one core); one block of all 1025 keys gained at most 2-3% more,
  // with a 50 KiB score tile that no longer fits L1.
  const int nblocks = (n_ + kBlockK - 1) / kBlockK;
  bk_ = ((n_ + nblocks - 1) / nblocks + 15) / 16 * 16;
  ldp16_ = (bk_ + 31) / 32 * 32;  // bf16 probabilities are written 32 at a time
  auto piece = [&](size_t floats) {
    const size_t at = scratch_floats_;
    scratch_floats_ += (floats + 15) / 16 * 16;
    return at;
  };
  off_s_ = piece(static_cast<size_t>(kG) * bk_);
  off_p16_ = piece(static_cast<size_t>(kG) * ldp16_ / 2);
  off_o_ = piece(static_cast<size_t>(kG) * hd_);
  off_m_ = piece(kG);
  off_l_ = piece(kG);
  off_alpha_ = piece(kG);
  off_vmax_ = piece(static_cast<size_t>(kG) * 16);
  off_q_ = piece(hd_);
  scratch_.resize(std::max(1, omp_get_max_threads()));
  for (auto& sc : scratch_) sc.buf.assign(scratch_floats_ + 16, 0.f);
}

void AttentionPlan::pack(const float* qkv, float* work, bool simd) const {
  const int d = heads_ * hd_;
  const int64_t ld = 3LL * d;
  // hd^-0.5 (attn.scale), times log2(e): the softmax then works in powers of 2 (exp2 is cheaper than
  // exp), softmax(s) = 2^(s·log2 e − m) / Σ. Folded into the keys: q is then used as it is.
  const float scale = 1.4426950408889634f / std::sqrt(static_cast<float>(hd_));
  const bool bf16 = prec_ == Precision::bf16;
  const int64_t kh = key_floats(), vh = value_floats();
  if (simd && prec_ == Precision::int8) {
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads_; ++h) {
      const S8View w = s8_view(work, h);
      pack_keys_s8(qkv + d + h * hd_, ld, n_, hd_, scale, w.k8, w.kscale, w.kcomp);
      pack_queries_u8(qkv + h * hd_, ld, n_, hd_, w.q8, w.qscale);
      pack_values_s8(qkv + 2 * d + h * hd_, ld, n_, hd_, w.v8, w.vscale);
    }
    return;
  }
  if (!simd) {
    // Portable: k [N, hd] scaled and v [N, hd] per head, rounded to bf16 in bf16 mode.
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads_; ++h)
      for (int t = 0; t < n_; ++t)
        for (int c = 0; c < hd_; ++c) {
          const float kv = qkv[t * ld + d + h * hd_ + c] * scale, vv = qkv[t * ld + 2 * d + h * hd_ + c];
          work[h * kh + t * hd_ + c] = bf16 ? round_bf16(kv) : kv;
          work[heads_ * kh + h * vh + t * hd_ + c] = bf16 ? round_bf16(vv) : vv;
        }
    return;
  }
  // One panel of 16 tokens per step, every head: the 16 rows are read from memory once.
#pragma omp parallel for schedule(static)
  for (int pnl = 0; pnl < npanel_; ++pnl) {
    const int t0 = 16 * pnl, left = n_ - t0;
    const float* row = qkv + t0 * ld;
    if (!bf16) {
      for (int h = 0; h < heads_; ++h)
        pack_key_panel(row + d + h * hd_, ld, left, hd_, scale, work + h * kh + t0 * hd_);
      continue;  // q and v are read in place
    }
    uint16_t* k16 = reinterpret_cast<uint16_t*>(work);
    uint16_t* q16 = k16 + heads_ * kh;  // the second half of the key region
    uint16_t* v16 = reinterpret_cast<uint16_t*>(work + heads_ * kh);
    for (int h = 0; h < heads_; ++h) {
      pack_key_panel_bf16(row + d + h * hd_, ld, left, hd_, scale, k16 + h * kh + t0 * hd_);
      for (int t = t0; t < std::min(n_, t0 + 16); ++t)
        to_bf16(qkv + t * ld + h * hd_, hd_, q16 + (static_cast<int64_t>(h) * n_ + t) * hd_);
      for (int t = t0; t < std::min(n_, t0 + 16); t += 2) {
        const float* v = qkv + t * ld + 2 * d + h * hd_;
        pack_value_pair_bf16(v, t + 1 < n_ ? v + ld : nullptr, hd_, v16 + 2 * h * vh + static_cast<int64_t>(t) * hd_);
      }
    }
  }
}

void AttentionPlan::rows(int h, int r0, int nr, const float* qkv, const float* work, float* sb, float* out,
                         bool simd) const {
  const int d = heads_ * hd_;
  const int64_t ld = 3LL * d;
  const bool bf16 = prec_ == Precision::bf16;
  const int64_t kh = key_floats(), vh = value_floats();
  float *s = sb + off_s_, *o = sb + off_o_, *m = sb + off_m_, *l = sb + off_l_, *alpha = sb + off_alpha_;
  float* vmax = sb + off_vmax_;
  uint16_t* p16 = reinterpret_cast<uint16_t*>(sb + off_p16_);
  std::fill(o, o + nr * hd_, 0.f);
  std::fill(m, m + nr, kNegInf);
  std::fill(l, l + nr, 0.f);
  const int lds = bk_;
  if (simd && prec_ == Precision::int8) {
    rows_s8(h, r0, nr, work, sb);
  } else if (simd) {
    const int hx = hd_index(hd_), pvr = pv_rows(hd_ / 16);
    const float* q = qkv + static_cast<int64_t>(r0) * ld + h * hd_;  // fp32: in place, row stride 3d
    const float* k = work + h * kh;
    const float* v = qkv + 2 * d + h * hd_;
    const uint16_t* k16 = reinterpret_cast<const uint16_t*>(work) + h * kh;
    const uint32_t* q16 = reinterpret_cast<const uint32_t*>(reinterpret_cast<const uint16_t*>(work) + heads_ * kh +
                                                            (static_cast<int64_t>(h) * n_ + r0) * hd_);
    const uint16_t* v16 = reinterpret_cast<const uint16_t*>(work + heads_ * kh) + 2 * h * vh;
    for (int k0 = 0; k0 < n_; k0 += bk_) {
      const int nk = std::min(bk_, n_ - k0), np = (nk + 15) / 16;
      std::fill(vmax, vmax + 16 * nr, kNegInf);
      // S = q·kᵀ: 64-key slices outside, so the 12 rows reuse the slice's packed keys from L1.
      for (int p0 = 0; p0 < np; p0 += 4) {
        const int nv = std::min(4, np - p0);
        const int64_t kat = (static_cast<int64_t>(k0) + 16 * p0) * hd_;
        for (int r = 0; r < nr; r += kQkRows) {
          const int rr = std::min(kQkRows, nr - r);
          if (bf16)
            kQk16[nv - 1][rr - 1](q16 + r * hd_ / 2, k16 + kat, hd_, s + r * lds + 16 * p0, lds, nk - 16 * p0,
                                  vmax + 16 * r);
          else
            kQk[nv - 1][rr - 1](q + r * ld, ld, k + kat, hd_, s + r * lds + 16 * p0, lds, nk - 16 * p0, vmax + 16 * r);
        }
      }
      for (int r = 0; r < nr; ++r)
        alpha[r] = bf16 ? softmax_row_bf16(s + r * lds, nk, vmax + 16 * r, p16 + r * ldp16_, m[r], l[r])
                        : softmax_row(s + r * lds, nk, vmax + 16 * r, m[r], l[r]);
      for (int r = 0; r < nr; r += pvr) {
        const int rr = std::min(pvr, nr - r);
        if (bf16)
          kPv16[hx][rr - 1](reinterpret_cast<const uint32_t*>(p16 + r * ldp16_), ldp16_ / 2,
                            v16 + static_cast<int64_t>(k0) * hd_, (nk + 1) / 2, o + r * hd_, alpha + r);
        else
          kPv[hx][rr - 1](s + r * lds, lds, v + k0 * ld, ld, nk, o + r * hd_, alpha + r);
      }
    }
  } else {
    const float* kh0 = work + h * kh;
    const float* vh0 = work + heads_ * kh + h * vh;
    float* qr = sb + off_q_;
    for (int r = 0; r < nr; ++r) {
      float* orow = o + r * hd_;
      const float* q = qkv + static_cast<int64_t>(r0 + r) * ld + h * hd_;
      for (int c = 0; c < hd_; ++c) qr[c] = bf16 ? round_bf16(q[c]) : q[c];
      for (int k0 = 0; k0 < n_; k0 += bk_) {
        const int nk = std::min(bk_, n_ - k0);
        float mb = m[r];
        for (int j = 0; j < nk; ++j) {
          const float* kr = kh0 + static_cast<int64_t>(k0 + j) * hd_;
          float a = 0.f;
          for (int c = 0; c < hd_; ++c) a += qr[c] * kr[c];
          s[j] = a;
          mb = std::max(mb, a);
        }
        const float a = std::exp2(m[r] - mb);
        float sum = 0.f;
        for (int j = 0; j < nk; ++j) {
          s[j] = std::exp2(s[j] - mb);
          if (bf16) s[j] = round_bf16(s[j]);
          sum += s[j];
        }
        l[r] = l[r] * a + sum;
        m[r] = mb;
        for (int c = 0; c < hd_; ++c) orow[c] *= a;
        for (int j = 0; j < nk; ++j) {
          const float* vr = vh0 + static_cast<int64_t>(k0 + j) * hd_;
          for (int c = 0; c < hd_; ++c) orow[c] += s[j] * vr[c];
        }
      }
    }
  }
  for (int r = 0; r < nr; ++r) {
    const float inv = 1.f / l[r];
    float* dst = out + static_cast<int64_t>(r0 + r) * d + h * hd_;
    if (simd)
      scale_row(o + r * hd_, inv, dst, hd_);
    else
      for (int c = 0; c < hd_; ++c) dst[c] = o[r * hd_ + c] * inv;
  }
}

AttentionPlan::S8View AttentionPlan::s8_view(const float* work, int h) const {
  // Key region (key_floats() floats): k̂ panels, kscale, kcomp, q̂ rows, qscale; value region: v̂
  // quads, vscale. Every piece starts on a multiple of 64 bytes (hd is 16, 32 or 64).
  const int64_t keys = static_cast<int64_t>(npanel_) * 16;
  auto* kb = reinterpret_cast<uint8_t*>(const_cast<float*>(work) + h * key_floats());
  auto* vb = reinterpret_cast<uint8_t*>(const_cast<float*>(work) + heads_ * key_floats() + h * value_floats());
  S8View w;
  w.k8 = reinterpret_cast<int8_t*>(kb);
  w.kscale = reinterpret_cast<float*>(kb + keys * hd_);
  w.kcomp = w.kscale + keys;
  w.q8 = reinterpret_cast<uint8_t*>(w.kcomp + keys);
  w.qscale = reinterpret_cast<float*>(w.q8 + keys * hd_);
  w.v8 = reinterpret_cast<int8_t*>(vb);
  w.vscale = reinterpret_cast<float*>(vb + static_cast<int64_t>(n_ + 3) / 4 * 4 * hd_);
  return w;
}

void AttentionPlan::rows_s8(int h, int r0, int nr, const float* work, float* sb) const {
  const S8View w = s8_view(work, h);
  float *s = sb + off_s_, *o = sb + off_o_, *m = sb + off_m_, *l = sb + off_l_, *alpha = sb + off_alpha_;
  float* vmax = sb + off_vmax_;
  auto* p8 = reinterpret_cast<uint8_t*>(sb + off_p16_);  // bf16's probability rows: ldp16_ bytes each here
  const int lds = bk_, ldp = ldp16_, hx = hd_index(hd_), pvr = pv_rows(hd_ / 16);
  for (int k0 = 0; k0 < n_; k0 += bk_) {
    const int nk = std::min(bk_, n_ - k0), np = (nk + 15) / 16;
    std::fill(vmax, vmax + 16 * nr, kNegInf);
    for (int p0 = 0; p0 < np; p0 += 4) {
      const int nv = std::min(4, np - p0), key = k0 + 16 * p0;
      for (int r = 0; r < nr; r += kQkRows) {
        const int rr = std::min(kQkRows, nr - r);
        kQk8[nv - 1][rr - 1](w.q8 + static_cast<int64_t>(r0 + r) * hd_, w.k8 + static_cast<int64_t>(key) * hd_, w.kscale + key, w.kcomp + key, hd_,
                             s + r * lds + 16 * p0, lds, nk - 16 * p0, vmax + 16 * r);
      }
    }
    for (int r = 0; r < nr; ++r)
      alpha[r] = softmax_row_u8(s + r * lds, nk, vmax + 16 * r, w.qscale[r0 + r], p8 + r * ldp, m[r], l[r]);
    for (int r = 0; r < nr; r += pvr) {
      const int rr = std::min(pvr, nr - r);
      kPv8[hx][rr - 1](p8 + r * ldp, ldp, w.v8 + static_cast<int64_t>(k0) * hd_, (nk + 3) / 4, o + r * hd_, alpha + r,
                       w.vscale);
    }
  }
}

void AttentionPlan::run(const float* qkv, float* out, float* work) {
  const bool simd = cpu_simd_ && use_simd &&
                    (prec_ == Precision::fp32 || (prec_ == Precision::bf16 && cpu_bf16_) ||
                     (prec_ == Precision::int8 && cpu_s8_));
  pack(qkv, work, simd);
  const int qblocks = (n_ + kBlockQ - 1) / kBlockQ;
  const int items = heads_ * qblocks;
  const int nt = std::min<int>(omp_get_max_threads(), static_cast<int>(scratch_.size()));
#pragma omp parallel for schedule(dynamic) num_threads(nt)
  for (int it = 0; it < items; ++it) {
    const int h = it / qblocks, qb = it % qblocks;
    const int q0 = qb * kBlockQ, nq = std::min(kBlockQ, n_ - q0);
    float* sb = scratch_[omp_get_thread_num()].base();
    for (int r = 0; r < nq; r += kG) rows(h, q0 + r, std::min(kG, nq - r), qkv, work, sb, out, simd);
  }
}

}  // namespace m3vit::rt
