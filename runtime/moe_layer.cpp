// The reordered MoE layer (runtime/moe_layer.h).
#include "runtime/moe_layer.h"

#include <cstring>

namespace m3vit::rt {

MoeLayer::MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec, WeightForm form)
    : n_(tokens), d_(d), hid_(hidden), E_(E), k_(k),
      // Router bias: only the task-conditioned gate has one (its task term); a zero bias costs nothing
      // measurable and keeps one plan for the three gate types.
      router_(ctx, d, E, /*has_bias=*/true, tokens, tokens, Epilogue::none, Precision::fp32, WeightForm::packed),
      fc1_(ctx, d, hidden, true, /*rows=*/0, tokens, Epilogue::gelu, prec, form),
      fc2_(ctx, hidden, d, true, /*rows=*/0, tokens, Epilogue::none, prec, form),
      logits_(static_cast<size_t>(tokens) * E), idx_(static_cast<size_t>(tokens) * k),
      w_(static_cast<size_t>(tokens) * k), pos_(static_cast<size_t>(tokens) * k),
      gathered_(static_cast<size_t>(tokens) * k * d), hidden_(static_cast<size_t>(tokens) * hidden),
      y_(static_cast<size_t>(tokens) * k * d) {
  q_.reserve(tokens, E, k);
}

void MoeLayer::forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStream& experts,
                       int moe_layer) {
  // 1. Route: [N, d] x [d, E] -> [N, E] -> top-k per token.
  router_.run(xn, n_, router_w, logits_.data());
  route_tokens(logits_.data(), n_, E_, k_, idx_.data(), w_.data());
  // 2. Per-expert token queues (counting sort), and where each (token, choice) pair landed.
  q_.build(idx_.data(), w_.data(), n_, k_);
  const int pairs = n_ * k_;
  // 3. Gather: row p of `gathered_` is the token of queue position p.
#pragma omp parallel for schedule(static)
  for (int p = 0; p < pairs; ++p)
    std::memcpy(gathered_.data() + static_cast<int64_t>(p) * d_, xn + static_cast<int64_t>(q_.token[p]) * d_, d_ * 4);
  // Expert by expert over contiguous queue rows; empty queues were left out of q_.active.
  experts.begin_layer(moe_layer, q_.active);
  for (int i = 0; i < static_cast<int>(q_.active.size()); ++i) {
    const int e = q_.active[i];
    const int m = q_.count[e];
    const float* g = gathered_.data() + static_cast<int64_t>(q_.offset[e]) * d_;  // [m, d]
    float* y = y_.data() + static_cast<int64_t>(q_.offset[e]) * d_;               // [m, d]
    const ExpertWeights& ew = experts.acquire(i);
    if (ew.fc1) {  // resident: packed weights
      fc1_.run(g, m, *ew.fc1, hidden_.data());  // [m, hid], GELU fused
      fc2_.run(hidden_.data(), m, *ew.fc2, y);  // [m, d]
    } else {  // streamed: the rows as they came from the file
      fc1_.run_plain(g, m, ew.w1, ew.b1, hidden_.data());
      fc2_.run_plain(hidden_.data(), m, ew.w2, ew.b2, y);
    }
    experts.release(i);  // the buffer refills with a later expert while the next one computes
  }
  // 4. Combine: x[t] += Σ_j w_tj · y[pos(t, j)], each token's k rows in its top-k order.
  for (int p = 0; p < pairs; ++p) pos_[q_.pair[p]] = p;
#pragma omp parallel for schedule(static)
  for (int t = 0; t < n_; ++t) {
    float* dst = x + static_cast<int64_t>(t) * d_;
    for (int j = 0; j < k_; ++j) {
      const float* src = y_.data() + static_cast<int64_t>(pos_[t * k_ + j]) * d_;
      const float g = w_[t * k_ + j];
#pragma omp simd
      for (int c = 0; c < d_; ++c) dst[c] += g * src[c];
    }
  }
}

}  // namespace m3vit::rt
