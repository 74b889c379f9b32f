// The reordered MoE layer (runtime/moe_layer.h).
#include "runtime/moe_layer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>

namespace m3vit::rt {

MoeLayer::MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec)
    : n_(tokens), d_(d), hid_(hidden), E_(E), k_(k),
      // Router bias: only the task-conditioned gate has one (its task term); a zero bias costs nothing
      // measurable and keeps one plan for the three gate types.
      router_(ctx, d, E, /*has_bias=*/true, tokens, Epilogue::none, Precision::fp32),
      fc1_(ctx, d, hidden, std::min(kMaxChunk, tokens), Epilogue::gelu, prec),
      fc2_(ctx, hidden, d, std::min(kMaxChunk, tokens), Epilogue::none, prec),
      logits_(static_cast<size_t>(tokens) * E), idx_(static_cast<size_t>(tokens) * k),
      w_(static_cast<size_t>(tokens) * k), pos_(static_cast<size_t>(tokens) * k), left_(new std::atomic<int>[E]) {
  q_.reserve(tokens, E, k);
  scratch_.resize(std::max(1, omp_get_max_threads()));
  // Chunks per queue: at most one per kMaxChunk rows + 1, or one per thread.
  chunks_.reserve(static_cast<size_t>(E) * (scratch_.size() + 1) + static_cast<size_t>(tokens) * k / kMaxChunk + 1);
  // Every chunk may compute up to kRowStep - 1 padding rows.
  y_rows_ = static_cast<size_t>(tokens) * k + chunks_.capacity() * MatmulBank::kRowStep;
  for (auto& s : scratch_) {
    s.in.assign(static_cast<size_t>(fc1_.max_rows()) * d, 0.f);
    s.hidden.assign(static_cast<size_t>(fc1_.max_rows()) * hidden, 0.f);
    fc1_.reserve(s.mm);
    fc2_.reserve(s.mm);
  }
}

void MoeLayer::forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStream& experts,
                       int moe_layer, float* y) {
  // 1. Route: [N, d] x [d, E] -> [N, E] -> top-k per token.
  router_.run(xn, router_w, logits_.data());
  route_tokens(logits_.data(), n_, E_, k_, idx_.data(), w_.data());
  // 2. Per-expert token queues (counting sort).
  q_.build(idx_.data(), w_.data(), n_, k_);

  // 3. Experts, in queue order, each queue cut into near-equal chunks of at most kMaxChunk rows.
  // With a buffer for every thread's expert (resident, or enough streaming buffers), each expert
  // goes to one thread, so its weights are read by one core only. With two streaming buffers the
  // threads share each expert instead (one per thread when long enough), so that one buffer is
  // always free for the next load: the paper's ping-pong.
  const int max_rows = fc1_.max_rows();
  const int nt = std::min<int>(omp_get_max_threads(), static_cast<int>(scratch_.size()));
  const bool share = experts.mode() == ExpertMode::stream && experts.slots() <= nt;
  chunks_.clear();
  int out = 0;
  for (int i = 0; i < static_cast<int>(q_.active.size()); ++i) {
    const int e = q_.active[i], count = q_.count[e];
    const int parts = std::max({(count + max_rows - 1) / max_rows, share ? std::min(nt, count / kMinChunk) : 1, 1});
    for (int c = 0, start = q_.offset[e]; c < parts; ++c) {
      const int rows = count / parts + (c < count % parts ? 1 : 0);
      chunks_.push_back({i, start, rows, out});
      for (int r = 0; r < rows; ++r) pos_[q_.pair[start + r]] = out + r;
      start += rows;
      out += MatmulBank::padded(rows, max_rows);
    }
    left_[i].store(parts);
  }
  experts.begin_layer(moe_layer, q_.active);
  std::exception_ptr error;
#pragma omp parallel num_threads(nt)
  {
    ThreadScratch& ts = scratch_[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
    for (int c = 0; c < static_cast<int>(chunks_.size()); ++c) {
      const Chunk ch = chunks_[c];
      try {
        const int32_t* tok = q_.token.data() + ch.start;
        for (int r = 0; r < ch.rows; ++r)  // gather: [rows, d]
          std::memcpy(ts.in.data() + static_cast<int64_t>(r) * d_, xn + static_cast<int64_t>(tok[r]) * d_, d_ * 4);
        const ExpertWeights& ew = experts.acquire(ch.active);  // waits only for an unfinished load
        fc1_.run(ts.in.data(), ch.rows, *ew.fc1, ts.hidden.data(), ts.mm);   // [rows, hid], GELU fused
        fc2_.run(ts.hidden.data(), ch.rows, *ew.fc2, y + static_cast<int64_t>(ch.out) * d_, ts.mm);
        // The expert's last chunk frees its buffer for a later expert.
        if (left_[ch.active].fetch_sub(1) == 1) experts.release(ch.active);
      } catch (...) {
#pragma omp critical(m3vit_moe_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);

  // 4. Combine: x[t] += Σ_j w_tj · y[pos(t, j)], each token's k rows in its top-k order.
#pragma omp parallel for schedule(static)
  for (int t = 0; t < n_; ++t) {
    float* dst = x + static_cast<int64_t>(t) * d_;
    for (int j = 0; j < k_; ++j) {
      const float* src = y + static_cast<int64_t>(pos_[t * k_ + j]) * d_;
      const float g = w_[t * k_ + j];
#pragma omp simd
      for (int c = 0; c < d_; ++c) dst[c] += g * src[c];
    }
  }
}

}  // namespace m3vit::rt
