// The reordered MoE layer (runtime/moe_layer.h).
#include "runtime/moe_layer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "common/errors.h"
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
      w_(static_cast<size_t>(tokens) * k), count_(E, 0), left_(new std::atomic<int>[E]) {
  const int nt = std::max(1, std::min(omp_get_max_threads(), tokens));
  ranges_.resize(nt);
  scratch_.resize(nt);
  active_.reserve(E);
  // Each range routes its own tokens with a single-threaded plan of its size. The plans' packed
  // weights must be router_'s (the tasks' routers are packed once, by router_plan()); oneDNN's
  // brgemm picks one layout for every row count, checked here as MatmulBank checks its plans.
  for (int r = 0; r < nt; ++r) {
    Range& R = ranges_[r];
    R.lo = static_cast<int>(static_cast<int64_t>(tokens) * r / nt);
    R.hi = static_cast<int>(static_cast<int64_t>(tokens) * (r + 1) / nt);
    R.q.reserve(R.hi - R.lo, E, k);
    for (size_t i = 0; i < router_ranges_.size(); ++i)
      if (router_ranges_[i].rows() == R.hi - R.lo) R.router = static_cast<int>(i);
    if (R.router < 0) {
      R.router = static_cast<int>(router_ranges_.size());
      router_ranges_.emplace_back(ctx, d, E, true, R.hi - R.lo, Epilogue::none, Precision::fp32,
                                  /*user_scratchpad=*/true);
      if (!(router_ranges_.back().weights_desc() == router_.weights_desc()))
        throw Error("oneDNN chose a different weight layout for a " + std::to_string(R.hi - R.lo) +
                    "-token router than for " + std::to_string(tokens) + " tokens; the routers are packed once");
    }
  }
  for (auto& s : scratch_) {
    s.in.assign(static_cast<size_t>(fc1_.max_rows()) * d, 0.f);
    s.hidden.assign(static_cast<size_t>(fc1_.max_rows()) * hidden, 0.f);
    fc1_.reserve(s.mm);
    fc2_.reserve(s.mm);
    for (const auto& p : router_ranges_) p.reserve(s.mm);
  }
}

void MoeLayer::run_expert(const Range& R, int e, const ExpertWeights& w, const float* xn, float* x,
                          ThreadScratch& ts) {
  const int count = R.q.count[e];
  const int max_rows = fc1_.max_rows();
  const int parts = (count + max_rows - 1) / max_rows;
  for (int c = 0, pos = R.q.offset[e]; c < parts; ++c) {
    const int rows = count / parts + (c < count % parts ? 1 : 0);
    const int32_t* tok = R.q.token.data() + pos;  // relative to R.lo
    const float* gate = R.q.weight.data() + pos;
    pos += rows;
    constexpr int ahead = 4;  // rows prefetched ahead (ops/simd.h)
    for (int r = 0; r < rows; ++r) {  // gather: [rows, d]
      if (r + ahead < rows) prefetch_row(xn + static_cast<int64_t>(R.lo + tok[r + ahead]) * d_, d_);
      std::memcpy(ts.in.data() + static_cast<int64_t>(r) * d_, xn + static_cast<int64_t>(R.lo + tok[r]) * d_, d_ * 4);
    }
    fc1_.run(ts.in.data(), rows, *w.fc1, ts.hidden.data(), ts.mm);  // [rows, hid], GELU fused
    fc2_.run(ts.hidden.data(), rows, *w.fc2, ts.in.data(), ts.mm);  // [rows, d] over the input
    // x[token] += gate · row, while the rows are in this core's cache.
    for (int r = 0; r < rows; ++r) {
      if (r + ahead < rows) prefetch_row(x + static_cast<int64_t>(R.lo + tok[r + ahead]) * d_, d_);
      axpy_row(gate[r], ts.in.data() + static_cast<int64_t>(r) * d_, x + static_cast<int64_t>(R.lo + tok[r]) * d_, d_);
    }
  }
}

void MoeLayer::forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStore& experts,
                       int moe_layer) {
  const int nr = static_cast<int>(ranges_.size());
  experts.begin_layer(moe_layer);
  // Resident experts can be read in any order: each thread runs its own without waiting for the
  // others. Streamed ones arrive in one order, which the threads agree on first.
  const bool any_order = experts.any_order();
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
      // Threads waiting for a load that the failed step would have made room for must not wait
      // forever: they get an error too, and the first error is the one reported.
      experts.abort();
    }
  };
  // The merged statistics: every range's queue lengths, the experts any range uses.
  auto merge = [&] {
    std::fill(count_.begin(), count_.end(), 0);
    for (const Range& R : ranges_)
      for (int e = 0; e < E_; ++e) count_[e] += R.q.count[e];
    active_.clear();
    for (int e = 0; e < E_; ++e)
      if (count_[e] > 0) active_.push_back(e);
  };
#pragma omp parallel num_threads(nr)
  {
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
    ThreadScratch& ts = scratch_[tid];
    // 1. Route: [rows, d] x [d, E] -> [rows, E] -> top-k per token. 2. This range's token queues.
    for (int r = tid; r < nr; r += team) {
      Range& R = ranges_[r];
      guard([&] {
        const int64_t lo = R.lo;
        const int rows = R.hi - R.lo;
        router_ranges_[R.router].run(xn + lo * d_, router_w, logits_.data() + lo * E_, &ts.mm);
        route_tokens(logits_.data() + lo * E_, rows, E_, k_, idx_.data() + lo * k_, w_.data() + lo * k_);
        R.q.build(idx_.data() + lo * k_, w_.data() + lo * k_, rows, k_);
      });
    }
    // 3. Experts.
    if (any_order) {
      // Resident: every thread on its own, expert by expert, no barrier.
      for (int e = 0; e < E_; ++e)
        for (int r = tid; r < nr; r += team)
          if (ranges_[r].q.count[e] > 0)
            guard([&] { run_expert(ranges_[r], e, experts.expert(e), xn, x, ts); });
    } else {
      // Streamed: agree on the experts to load, then all threads walk them in load order; the last
      // range to finish an expert frees its buffer for the next load.
#pragma omp barrier
#pragma omp single
      guard([&] {
        merge();
        for (int i = 0; i < static_cast<int>(active_.size()); ++i) {
          int users = 0;
          for (const Range& R : ranges_) users += R.q.count[active_[i]] > 0;
          left_[i].store(users);
        }
        experts.schedule(active_);  // posts their loads
      });
      for (int i = 0; i < static_cast<int>(active_.size()); ++i) {
        for (int r = tid; r < nr; r += team) {
          if (ranges_[r].q.count[active_[i]] == 0) continue;
          guard([&] {
            const ExpertWeights& w = experts.acquire(i);  // waits only for an unfinished load
            run_expert(ranges_[r], active_[i], w, xn, x, ts);
            if (left_[i].fetch_sub(1) == 1) experts.release(i);
          });
        }
      }
    }
  }
  if (error) std::rethrow_exception(error);
  if (any_order) merge();
}

}  // namespace m3vit::rt
