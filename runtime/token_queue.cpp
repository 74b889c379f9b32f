// Routing and per-expert token queues (runtime/token_queue.h).
#include "runtime/token_queue.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"
#include "runtime/ops/simd.h"

namespace m3vit::rt {

namespace {

// The selection of ATen's CPU topk (aten/src/ATen/native/cpu/SortingKernel.cpp, topk_impl_loop,
// torch 1.13), reproduced step for step so that tied probabilities pick the same experts as the
// libtorch model: (value, index) pairs in a double queue; nth_element + sort of the first k1-1 when
// k1·64 > E, partial_sort otherwise; NaN counts as largest. As the authors do, the router asks for
// the top (k+1) (noisy_gate_vmoe.py:259-265; model/router.cpp) and keeps the first k; with ties the
// k+1 changes which of the tied experts come first, so it is part of the behaviour.
using elem_t = std::pair<double, int64_t>;
bool topk_greater(const elem_t& x, const elem_t& y) {
  return (std::isnan(x.first) && !std::isnan(y.first)) || (x.first > y.first);
}

// Fast selection for a row whose top (k+1) has no ties (every row of real data): the k1 largest by
// insertion, then a check that no two of them are equal and that nothing else equals the smallest.
// Then torch's order is simply descending value and this returns true; otherwise (a tie, or NaN)
// it returns false and the caller takes the exact replica below.
bool topk_distinct(const float* p, int E, int k1, int32_t* top) {
  float val[64];
  int n = 0;
  for (int e = 0; e < E; ++e) {
    const float v = p[e];
    if (std::isnan(v)) return false;
    if (n == k1 && !(v > val[n - 1])) continue;
    int i = n < k1 ? n++ : n - 1;
    for (; i > 0 && v > val[i - 1]; --i) {
      val[i] = val[i - 1];
      top[i] = top[i - 1];
    }
    val[i] = v;
    top[i] = e;
  }
  for (int i = 1; i < k1; ++i)
    if (val[i] == val[i - 1]) return false;
  int equal_last = 0;
  for (int e = 0; e < E; ++e) equal_last += p[e] == val[k1 - 1];
  return equal_last == 1;
}

// topk_distinct for a row of at most 16 experts (the paper's 16) in one AVX-512 register: k1 rounds
// of "take the largest lane". Returns false in the same cases: a NaN, or a tie among the top k1 or
// between the k1-th and a lane left out.
M3VIT_AVX512 bool topk_row16(const float* p, int E, int k1, int32_t* top) {
  const __mmask16 valid = static_cast<__mmask16>(E >= 16 ? 0xffff : (1u << E) - 1u);
  const __m512 prob = _mm512_maskz_loadu_ps(valid, p);
  if (_mm512_mask_cmp_ps_mask(valid, prob, prob, _CMP_UNORD_Q)) return false;
  const __m512 neg = _mm512_set1_ps(-INFINITY);
  __m512 work = _mm512_mask_blend_ps(valid, neg, prob);
  for (int i = 0; i < k1; ++i) {
    const float m = _mm512_reduce_max_ps(work);
    const __mmask16 hit = _mm512_cmp_ps_mask(work, _mm512_set1_ps(m), _CMP_EQ_OQ);
    if (__builtin_popcount(hit) != 1) return false;  // a tie
    top[i] = __builtin_ctz(hit);
    work = _mm512_mask_mov_ps(work, hit, neg);
  }
  return true;
}

void topk_like_torch(const float* p, int E, int k, int32_t* idx, float* w) {
  static const bool simd = cpu_has_avx512();
  const int k1 = std::min(k + 1, E);
  int32_t top[64];
  if (k1 <= 64 && (simd && E <= 16 ? topk_row16(p, E, k1, top) : topk_distinct(p, E, k1, top))) {
    for (int j = 0; j < k; ++j) {
      idx[j] = top[j];
      w[j] = p[top[j]];
    }
    return;
  }
  constexpr int kStack = 256;
  elem_t stack_buf[kStack];
  std::vector<elem_t> heap_buf;
  elem_t* q = stack_buf;
  if (E > kStack) {
    heap_buf.resize(E);
    q = heap_buf.data();
  }
  for (int e = 0; e < E; ++e) q[e] = {static_cast<double>(p[e]), e};
  if (static_cast<int64_t>(k1) * 64 <= E) {
    std::partial_sort(q, q + k1, q + E, topk_greater);
  } else {
    std::nth_element(q, q + k1 - 1, q + E, topk_greater);
    std::sort(q, q + k1 - 1, topk_greater);
  }
  for (int j = 0; j < k; ++j) {
    idx[j] = static_cast<int32_t>(q[j].second);
    w[j] = p[q[j].second];  // the probability itself: no renormalisation over the k (noisy_gate_vmoe.py:258-268)
  }
}

// Softmax of one row of E logits in place, 16 experts per vector.
M3VIT_AVX512 void softmax_row_avx512(float* p, int E) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int e = 0; e < E; e += 16) {
    const __mmask16 m = static_cast<__mmask16>(E - e >= 16 ? 0xffff : (1u << (E - e)) - 1u);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, p + e));
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int e = 0; e < E; e += 16) {
    const __mmask16 m = static_cast<__mmask16>(E - e >= 16 ? 0xffff : (1u << (E - e)) - 1u);
    const __m512 v = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + e), mx));
    _mm512_mask_storeu_ps(p + e, m, v);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, v);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vsum));
  for (int e = 0; e < E; e += 16) {
    const __mmask16 m = static_cast<__mmask16>(E - e >= 16 ? 0xffff : (1u << (E - e)) - 1u);
    _mm512_mask_storeu_ps(p + e, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + e), inv));
  }
}

void softmax_row(float* p, int E) {
  float mx = p[0];
  for (int e = 1; e < E; ++e) mx = std::max(mx, p[e]);
  float sum = 0.f;
  for (int e = 0; e < E; ++e) {
    p[e] = std::exp(p[e] - mx);
    sum += p[e];
  }
  const float inv = 1.f / sum;
  for (int e = 0; e < E; ++e) p[e] *= inv;
}

}  // namespace

void route_tokens(float* logits, int n, int E, int k, int32_t* topk_idx, float* topk_w) {
  static const bool simd = cpu_has_avx512();
#pragma omp parallel for schedule(static)
  for (int t = 0; t < n; ++t) {
    float* p = logits + static_cast<int64_t>(t) * E;
    // Softmax over all E experts (noisy_gate_vmoe.py:258), max-subtracted as torch.softmax does.
    if (simd) softmax_row_avx512(p, E);
    else softmax_row(p, E);
    topk_like_torch(p, E, k, topk_idx + static_cast<int64_t>(t) * k, topk_w + static_cast<int64_t>(t) * k);
  }
}

void TokenQueues::reserve(int max_tokens, int E, int k) {
  num_experts = E;
  count.assign(E, 0);
  offset.assign(E + 1, 0);
  token.assign(static_cast<size_t>(max_tokens) * k, 0);
  pair.assign(static_cast<size_t>(max_tokens) * k, 0);
  weight.assign(static_cast<size_t>(max_tokens) * k, 0.f);
  active.reserve(E);
  cursor.assign(E, 0);
}

void TokenQueues::build(const int32_t* topk_idx, const float* topk_w, int n, int k) {
  const int E = num_experts;
  if (static_cast<size_t>(n) * k > token.size()) throw ShapeError("token queues sized for fewer tokens");
  std::fill(count.begin(), count.end(), 0);
  for (int64_t i = 0; i < static_cast<int64_t>(n) * k; ++i) ++count[topk_idx[i]];
  offset[0] = 0;
  for (int e = 0; e < E; ++e) offset[e + 1] = offset[e] + count[e];
  // Place pairs in token order, so each queue lists its tokens ascending (a stable sort).
  std::copy(offset.begin(), offset.end() - 1, cursor.begin());
  for (int t = 0; t < n; ++t)
    for (int j = 0; j < k; ++j) {
      const int e = topk_idx[static_cast<int64_t>(t) * k + j];
      const int pos = cursor[e]++;
      token[pos] = t;
      pair[pos] = t * k + j;
      weight[pos] = topk_w[static_cast<int64_t>(t) * k + j];
    }
  active.clear();
  for (int e = 0; e < E; ++e)
    if (count[e] > 0) active.push_back(e);
}

}  // namespace m3vit::rt
