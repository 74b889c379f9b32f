// Blocked multi-head attention with a running softmax (runtime/ops/attention.h).
// Work items are (head, block of 64 queries), spread over OpenMP threads; each item walks the keys
// in blocks of 256 and keeps its own running max m, sum l and output O.
#include "runtime/ops/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/errors.h"
#include "runtime/ops/simd.h"

namespace m3vit::rt {

namespace {

constexpr int kBQ = AttentionPlan::kBlockQ;
constexpr int kBK = AttentionPlan::kBlockK;

// ---------------------------------------------------------------- AVX-512 kernels
// The tiles keep NR×NV accumulators in zmm registers only if their small loops are fully unrolled,
// which -O2 does not do by itself (measured: 58 vs 150 GFLOP/s on one core): hence the
// `#pragma GCC unroll` on every loop over rows (NR), vectors (NV, NH).

// S[NR, 16·NV] = Q[NR, hd] · Kt[hd, 16·NV]; q row stride hd, kt row stride ldk, s row stride kBK.
// Also folds the tile's first `valid` columns into the running row maxima rmax[NR] (the columns past
// the last key are padding and must not count).
template <int NR, int NV>
M3VIT_AVX512 void qk_tile(const float* q, int hd, const float* kt, int64_t ldk, float* s, int valid, __m512* rmax) {
  __m512 acc[NR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int c = 0; c < hd; ++c) {
    __m512 kv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(kt + c * ldk + 16 * v);
    #pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * hd + c]);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(qb, kv[v], acc[r][v]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      _mm512_storeu_ps(s + r * kBK + 16 * v, acc[r][v]);
      const int left = valid - 16 * v;
      if (left >= 16)
        rmax[r] = _mm512_max_ps(rmax[r], acc[r][v]);
      else if (left > 0)
        rmax[r] = _mm512_mask_max_ps(rmax[r], static_cast<__mmask16>((1u << left) - 1u), rmax[r], acc[r][v]);
    }
}

// Scores of NR query rows against nk keys (nkp = nk rounded up to 16), and each row's maximum.
template <int NR>
M3VIT_AVX512 void qk_rows(const float* q, int hd, const float* kt, int64_t ldk, int nk, int nkp, float* s,
                          float* row_max) {
  __m512 rmax[NR];
  for (int r = 0; r < NR; ++r) rmax[r] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int j = 0;
  for (; j + 64 <= nkp; j += 64) qk_tile<NR, 4>(q, hd, kt + j, ldk, s + j, nk - j, rmax);
  for (; j < nkp; j += 16) qk_tile<NR, 1>(q, hd, kt + j, ldk, s + j, nk - j, rmax);
  for (int r = 0; r < NR; ++r) row_max[r] = _mm512_reduce_max_ps(rmax[r]);
}

// O[NR, 16·NH] += P[NR, nk] · V[nk, 16·NH]; p row stride kBK, o row stride 16·NH.
template <int NR, int NH>
M3VIT_AVX512 void pv_tile(const float* p, const float* v, int nk, float* o) {
  constexpr int hd = 16 * NH;
  __m512 acc[NR][NH];
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) acc[r][c] = _mm512_loadu_ps(o + r * hd + 16 * c);
  for (int j = 0; j < nk; ++j) {
    __m512 vv[NH];
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) vv[c] = _mm512_loadu_ps(v + j * hd + 16 * c);
    #pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * kBK + j]);
      #pragma GCC unroll 16
      for (int c = 0; c < NH; ++c) acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NH; ++c) _mm512_storeu_ps(o + r * hd + 16 * c, acc[r][c]);
}

template <int NH>
M3VIT_AVX512 void pv_rows(const float* p, const float* v, int nq, int nk, float* o) {
  constexpr int R = NH <= 2 ? 6 : 3;  // NR·NH accumulators + NH loads stay within 32 zmm
  constexpr int hd = 16 * NH;
  int r = 0;
  for (; r + R <= nq; r += R) pv_tile<R, NH>(p + r * kBK, v, nk, o + r * hd);
  for (; r < nq; ++r) pv_tile<1, NH>(p + r * kBK, v, nk, o + r * hd);
}

// Running-softmax update of one row over nk scores whose maximum is block_max: returns
// 2^(m_old − m_new), writes P in place. Scores are in log2 units (the query carries log2 e).
M3VIT_AVX512 float softmax_row_avx512(float* s, int nk, float block_max, float& m, float& l) {
  const float m_new = std::max(m, block_max);
  const float alpha = std::exp2(m - m_new);  // 0 on the first block (m = -inf)
  const __m512 mb = _mm512_set1_ps(m_new);
  __m512 vsum = _mm512_setzero_ps();
  int j = 0;
  for (; j + 16 <= nk; j += 16) {
    const __m512 p = exp2_512(_mm512_sub_ps(_mm512_loadu_ps(s + j), mb));
    _mm512_storeu_ps(s + j, p);
    vsum = _mm512_add_ps(vsum, p);
  }
  if (j < nk) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (nk - j)) - 1u);
    const __m512 p = exp2_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + j), mb));
    _mm512_mask_storeu_ps(s + j, tail, p);
    vsum = _mm512_mask_add_ps(vsum, tail, vsum, p);
  }
  l = l * alpha + _mm512_reduce_add_ps(vsum);
  m = m_new;
  return alpha;
}

M3VIT_AVX512 void block_avx512(const float* q, const float* kt, const float* v, int n, int npad, int hd, int nq,
                               float* s, float* o, float* m, float* l) {
  for (int k0 = 0; k0 < n; k0 += kBK) {
    const int nk = std::min(kBK, n - k0), nkp = (nk + 15) / 16 * 16;
    float bmax[kBQ];
    int r = 0;
    for (; r + 4 <= nq; r += 4) qk_rows<4>(q + r * hd, hd, kt + k0, npad, nk, nkp, s + r * kBK, bmax + r);
    for (; r < nq; ++r) qk_rows<1>(q + r * hd, hd, kt + k0, npad, nk, nkp, s + r * kBK, bmax + r);
    for (r = 0; r < nq; ++r) {
      const float alpha = softmax_row_avx512(s + r * kBK, nk, bmax[r], m[r], l[r]);
      float* orow = o + r * hd;
      for (int c = 0; c < hd; ++c) orow[c] *= alpha;
    }
    const float* vb = v + static_cast<int64_t>(k0) * hd;
    if (hd == 16) pv_rows<1>(s, vb, nq, nk, o);
    else if (hd == 32) pv_rows<2>(s, vb, nq, nk, o);
    else pv_rows<4>(s, vb, nq, nk, o);  // hd == 64 (checked by the caller)
  }
}

// ---------------------------------------------------------------- portable kernels

void block_portable(const float* q, const float* kt, const float* v, int n, int npad, int hd, int nq, float* s,
                    float* o, float* m, float* l) {
  for (int k0 = 0; k0 < n; k0 += kBK) {
    const int nk = std::min(kBK, n - k0);
    for (int r = 0; r < nq; ++r) {
      float* sr = s + r * kBK;
      for (int j = 0; j < nk; ++j) sr[j] = 0.f;
      for (int c = 0; c < hd; ++c) {
        const float qc = q[r * hd + c];
        const float* kr = kt + static_cast<int64_t>(c) * npad + k0;
        for (int j = 0; j < nk; ++j) sr[j] += qc * kr[j];
      }
      float mb = m[r];
      for (int j = 0; j < nk; ++j) mb = std::max(mb, sr[j]);
      const float alpha = std::exp2(m[r] - mb);
      float sum = 0.f;
      for (int j = 0; j < nk; ++j) {
        sr[j] = std::exp2(sr[j] - mb);
        sum += sr[j];
      }
      l[r] = l[r] * alpha + sum;
      m[r] = mb;
      float* orow = o + r * hd;
      for (int c = 0; c < hd; ++c) orow[c] *= alpha;
      for (int j = 0; j < nk; ++j) {
        const float* vr = v + static_cast<int64_t>(k0 + j) * hd;
        for (int c = 0; c < hd; ++c) orow[c] += sr[j] * vr[c];
      }
    }
  }
}

}  // namespace

AttentionPlan::AttentionPlan(int tokens, int heads, int head_dim)
    : n_(tokens), heads_(heads), hd_(head_dim), npad_((tokens + 15) / 16 * 16 + 64) {
  if (tokens < 1 || heads < 1 || head_dim < 1) throw ConfigError("attention plan with an empty shape");
  cpu_simd_ = cpu_has_avx512() && (hd_ == 16 || hd_ == 32 || hd_ == 64);
  scratch_.resize(std::max(1, omp_get_max_threads()));
  for (auto& sc : scratch_) {
    sc.s.assign(static_cast<size_t>(kBQ) * kBK, 0.f);
    sc.o.assign(static_cast<size_t>(kBQ) * hd_, 0.f);
    sc.m.assign(kBQ, 0.f);
    sc.l.assign(kBQ, 0.f);
  }
}

void AttentionPlan::repack(const float* qkv, float* q, float* kt, float* v) const {
  const int d = heads_ * hd_;
  // hd^-0.5 (attn.scale), times log2(e): the softmax then works in powers of 2 (exp2 is cheaper than
  // exp), softmax(s) = 2^(s·log2 e − m) / Σ.
  const float scale = 1.4426950408889634f / std::sqrt(static_cast<float>(hd_));
#pragma omp parallel for schedule(static)
  for (int h = 0; h < heads_; ++h) {
    float* qh = q + static_cast<int64_t>(h) * n_ * hd_;
    float* kth = kt + static_cast<int64_t>(h) * hd_ * npad_;
    float* vh = v + static_cast<int64_t>(h) * n_ * hd_;
    // Padding key columns are read by the 16-wide score tiles and ignored: zero them anyway.
    for (int j = 0; j < hd_; ++j) std::fill(kth + static_cast<int64_t>(j) * npad_ + n_, kth + (j + 1) * npad_, 0.f);
    for (int t = 0; t < n_; ++t) {
      const float* row = qkv + static_cast<int64_t>(t) * 3 * d + h * hd_;
      for (int j = 0; j < hd_; ++j) {
        qh[t * hd_ + j] = row[j] * scale;
        kth[static_cast<int64_t>(j) * npad_ + t] = row[d + j];
        vh[t * hd_ + j] = row[2 * d + j];
      }
    }
  }
}

void AttentionPlan::block(int h, int q0, int nq, const float* qall, const float* ktall, const float* vall, Scratch& sc,
                          float* out, bool simd) const {
  const float* q = qall + (static_cast<int64_t>(h) * n_ + q0) * hd_;
  const float* kt = ktall + static_cast<int64_t>(h) * hd_ * npad_;
  const float* v = vall + static_cast<int64_t>(h) * n_ * hd_;
  std::fill(sc.o.begin(), sc.o.end(), 0.f);
  std::fill(sc.m.begin(), sc.m.end(), -std::numeric_limits<float>::infinity());
  std::fill(sc.l.begin(), sc.l.end(), 0.f);
  if (simd)
    block_avx512(q, kt, v, n_, npad_, hd_, nq, sc.s.data(), sc.o.data(), sc.m.data(), sc.l.data());
  else
    block_portable(q, kt, v, n_, npad_, hd_, nq, sc.s.data(), sc.o.data(), sc.m.data(), sc.l.data());
  const int d = heads_ * hd_;
  for (int r = 0; r < nq; ++r) {
    const float inv = 1.f / sc.l[r];
    float* dst = out + static_cast<int64_t>(q0 + r) * d + h * hd_;
    for (int c = 0; c < hd_; ++c) dst[c] = sc.o[r * hd_ + c] * inv;
  }
}

void AttentionPlan::run(const float* qkv, float* out, float* work) {
  float* q = work;
  float* kt = q + static_cast<size_t>(heads_) * n_ * hd_;
  float* v = kt + static_cast<size_t>(heads_) * hd_ * npad_;
  repack(qkv, q, kt, v);
  const int qblocks = (n_ + kBQ - 1) / kBQ;
  const int items = heads_ * qblocks;
  const bool simd = cpu_simd_ && use_simd;
  const int nt = std::min<int>(omp_get_max_threads(), static_cast<int>(scratch_.size()));
#pragma omp parallel for schedule(dynamic) num_threads(nt)
  for (int it = 0; it < items; ++it) {
    const int h = it / qblocks, qb = it % qblocks;
    const int q0 = qb * kBQ, nq = std::min(kBQ, n_ - q0);
    block(h, q0, nq, q, kt, v, scratch_[omp_get_thread_num()], out, simd);
  }
}

}  // namespace m3vit::rt
