// The reordered MoE layer (runtime/moe_layer.h).
#include "runtime/moe_layer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "runtime/ops/simd.h"

namespace m3vit::rt {

MoeLayer::MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec)
    : n_(tokens), d_(d), hid_(hidden), E_(E), k_(k),
      // Router bias: only the task-conditioned gate has one (its task term); a zero bias costs nothing
      // measurable and keeps one plan for the three gate types.
      router_(ctx, d, E, /*has_bias=*/true, tokens, Epilogue::none, Precision::fp32),
      fc1_(ctx, d, hidden, std::min(kMaxChunk, tokens), Epilogue::gelu, prec),
      fc2_(ctx, hidden, d, std::min(kMaxChunk, tokens), Epilogue::none, prec),
      logits_(static_cast<size_t>(tokens) * E), idx_(static_cast<size_t>(tokens) * k),
      w_(static_cast<size_t>(tokens) * k), left_(new std::atomic<int>[E]) {
  q_.reserve(tokens, E, k);
  const int nt = std::max(1, omp_get_max_threads());
  scratch_.resize(nt);
  // Router blocks. Their packed weights must be router_'s (the tasks' routers are packed once by
  // router_plan()); oneDNN's brgemm picks one layout for every row count, checked here.
  block_rows_ = std::min(kRouterBlock, (tokens + nt - 1) / nt);
  const int last = tokens - (tokens - 1) / block_rows_ * block_rows_;
  for (int rows : {block_rows_, last}) {
    if (rows == block_rows_ && !router_block_.empty()) break;
    router_block_.emplace_back(ctx, d, E, true, rows, Epilogue::none, Precision::fp32, /*user_scratchpad=*/true);
    if (!(router_block_.back().weights_desc() == router_.weights_desc())) {
      router_block_.clear();
      break;
    }
  }
  // Chunks: per thread and expert one, plus one per kMaxChunk rows.
  const size_t max_chunks = static_cast<size_t>(E) * nt + static_cast<size_t>(tokens) * k / kMaxChunk + 1;
  chunks_.reserve(max_chunks);
  for (auto& s : scratch_) {
    s.in.assign(static_cast<size_t>(fc1_.max_rows()) * d, 0.f);
    s.hidden.assign(static_cast<size_t>(fc1_.max_rows()) * hidden, 0.f);
    s.chunks.reserve(max_chunks);
    fc1_.reserve(s.mm);
    fc2_.reserve(s.mm);
    for (const auto& p : router_block_) p.reserve(s.mm);
  }
}

void MoeLayer::route_block(int b, const float* xn, const PackedWeights& router_w, MatmulScratch& mm) {
  if (router_block_.empty()) {  // one block: all tokens through router_, from one thread
    router_.run(xn, router_w, logits_.data());
    route_tokens(logits_.data(), n_, E_, k_, idx_.data(), w_.data());
    return;
  }
  const int64_t t0 = static_cast<int64_t>(b) * block_rows_;
  const MatmulPlan& plan = t0 + block_rows_ <= n_ ? router_block_[0] : router_block_.back();
  // [rows, d] x [d, E] -> [rows, E] -> top-k per token.
  plan.run(xn + t0 * d_, router_w, logits_.data() + t0 * E_, &mm);
  route_tokens(logits_.data() + t0 * E_, plan.rows(), E_, k_, idx_.data() + t0 * k_, w_.data() + t0 * k_);
}

void MoeLayer::plan_chunks(int team) {
  chunks_.clear();
  for (int u = 0; u < team; ++u) scratch_[u].chunks.clear();
  const int max_rows = fc1_.max_rows();
  for (int i = 0; i < static_cast<int>(q_.active.size()); ++i) {
    const int e = q_.active[i];
    const int32_t* begin = q_.token.data() + q_.offset[e];
    const int32_t* end = begin + q_.count[e];
    int parts = 0;
    for (int u = 0; u < team; ++u) {
      // Thread u's tokens [lo, hi): its part of the (ascending) queue.
      const int lo = static_cast<int>(static_cast<int64_t>(n_) * u / team);
      const int hi = static_cast<int>(static_cast<int64_t>(n_) * (u + 1) / team);
      const int32_t* a = std::lower_bound(begin, end, lo);
      const int32_t* b = std::lower_bound(a, end, hi);
      const int count = static_cast<int>(b - a);
      const int n = (count + max_rows - 1) / max_rows;
      for (int c = 0, start = static_cast<int>(a - q_.token.data()); c < n; ++c) {
        const int rows = count / n + (c < count % n ? 1 : 0);
        scratch_[u].chunks.push_back(static_cast<int>(chunks_.size()));
        chunks_.push_back({i, start, rows});
        start += rows;
      }
      parts += n;
    }
    left_[i].store(parts);
  }
}

void MoeLayer::forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStream& experts,
                       int moe_layer) {
  const int nt = static_cast<int>(scratch_.size());
  const int blocks = router_block_.empty() ? 1 : (n_ + block_rows_ - 1) / block_rows_;
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto guard = [&](auto&& step) {
    if (failed.load()) return;
    try {
      step();
    } catch (...) {
#pragma omp critical(m3vit_moe_error)
      if (!error) error = std::current_exception();
      failed.store(true);
      // Threads waiting for a load that the failed chunk would have made room for must not wait
      // forever: they get an error too, and the first error is the one reported.
      experts.abort();
    }
  };
#pragma omp parallel num_threads(nt)
  {
    ThreadScratch& ts = scratch_[omp_get_thread_num()];
    // 1. Route, a block of tokens at a time; a thread that wakes late takes fewer blocks.
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < blocks; ++b) guard([&] { route_block(b, xn, router_w, ts.mm); });
    // 2. Per-expert token queues (counting sort, O(N·k)), each thread's chunks, the first loads.
#pragma omp single
    guard([&] {
      q_.build(idx_.data(), w_.data(), n_, k_);
      plan_chunks(omp_get_num_threads());
      experts.begin_layer(moe_layer, q_.active);
    });
    // 3. Experts over this thread's tokens, in queue order.
    for (int c : ts.chunks) {
      guard([&] {
        const Chunk ch = chunks_[c];
        const int32_t* tok = q_.token.data() + ch.start;
        const float* gate = q_.weight.data() + ch.start;
        for (int r = 0; r < ch.rows; ++r)  // gather: [rows, d]
          std::memcpy(ts.in.data() + static_cast<int64_t>(r) * d_, xn + static_cast<int64_t>(tok[r]) * d_, d_ * 4);
        const ExpertWeights& ew = experts.acquire(ch.active);  // waits only for an unfinished load
        fc1_.run(ts.in.data(), ch.rows, *ew.fc1, ts.hidden.data(), ts.mm);  // [rows, hid], GELU fused
        fc2_.run(ts.hidden.data(), ch.rows, *ew.fc2, ts.in.data(), ts.mm);  // [rows, d] over the input
        // The expert's last chunk frees its buffer for a later expert.
        if (left_[ch.active].fetch_sub(1) == 1) experts.release(ch.active);
        // x[token] += gate · row: this thread's tokens only, while the rows are in its cache.
        for (int r = 0; r < ch.rows; ++r)
          axpy_row(gate[r], ts.in.data() + static_cast<int64_t>(r) * d_, x + static_cast<int64_t>(tok[r]) * d_, d_,
                   /*assign=*/false);
      });
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace m3vit::rt
