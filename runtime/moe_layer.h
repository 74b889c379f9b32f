// One MoE layer of the runtime, in the paper's reordered form (M³ViT paper §3.2; Edge-MoE's src/moe.cpp):
//   1. route every token: logits = LN2(x)·W_gate (+ the task term of the task-conditioned gate),
//      softmax over all E, top-k, weights not renormalised (runtime/token_queue.h);
//   2. counting-sort the (token, expert) pairs into per-expert token queues;
//   3. expert by expert over the non-empty queues: gather the queue's rows, fc1 + GELU, fc2, scale
//      each row by its gate weight and add it to its token's row of the residual stream. While one
//      expert computes, the next one's weights are being brought in (runtime/expert_store.h).
// Equal to Σ_j w_j·Expert_{idx_j}(x) per token (custom_moe_layer.py:290-297), up to summation order.
//
// Threads split the tokens, not the experts: thread u owns tokens [u·N/T, (u+1)·N/T) and does all
// three steps for them on its own: routes them, builds its own per-expert token queues, runs every
// expert over its queue, and adds the rows into its tokens' rows of x while they are still in its
// cache. Every token has exactly k (token, expert) pairs, so the threads get equal work whatever
// the routing; no two threads write one row, so there is no second pass and no lock; each token's k
// rows are added in expert order whatever the thread count, so the result does not change from run
// to run; and with resident experts the threads never wait for each other inside the layer (one
// OpenMP region, no barrier: with OMP_WAIT_POLICY=passive every fork, join or barrier wakes a
// sleeping thread, tens of µs, and at batch 1 the whole layer is ~6 ms). With streamed experts the
// threads meet once after routing, to agree on which experts to load, and then walk the experts in
// the same order, which is the order the stream loads them in: the paper's ping-pong, each buffer
// computed from by both threads while the next expert arrives in the other.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/expert_store.h"
#include "runtime/ops/matmul.h"
#include "runtime/token_queue.h"

namespace m3vit::rt {

class MoeLayer {
 public:
  // Rows per expert matmul call, at most (a thread's part of a longer queue is cut into near-equal
  // chunks). Every chunk re-reads its expert's weights (1.2 MB for ViT-S). At the paper's
  // configuration a thread's part of a queue is ~128 rows; on one core, matmuls of 128 and 256
  // rows ran at the same speed, 64 rows 18% slower (d = hid = 384, fp32).
  static constexpr int kMaxChunk = 256;

  MoeLayer() = default;
  MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec);

  // xn [N, d] = LN2(x); x [N, d] gets the layer output added (the block's residual).
  // router_w: the task's packed router (logits [N, E] = xn·W_gate + b_task).
  void forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStore& experts, int moe_layer);

  const MatmulBank& fc1() const { return fc1_; }
  const MatmulBank& fc2() const { return fc2_; }
  const MatmulPlan& router_plan() const { return router_; }
  // Results of the last forward, for traces and statistics.
  const std::vector<int32_t>& topk_idx() const { return idx_; }        // [N, k]
  const std::vector<float>& topk_w() const { return w_; }              // [N, k]
  const std::vector<int32_t>& queue_lengths() const { return count_; }  // [E] tokens per expert
  int experts_used() const { return static_cast<int>(active_.size()); }  // non-empty queues

 private:
  // A thread's share of the layer: tokens [lo, hi), their router plan and their token queues
  // (token ids relative to lo).
  struct Range {
    int lo = 0, hi = 0;
    int router = -1;  // its single-threaded plan in router_ranges_
    TokenQueues q;
  };
  // Buffers of the thread running a range.
  struct ThreadScratch {
    std::vector<float> in;      // [kMaxChunk, d] one chunk's gathered rows, then its fc2 output
    std::vector<float> hidden;  // [kMaxChunk, hid] its fc1 output
    MatmulScratch mm;
  };
  // Expert e over range r's queue: gather, fc1 + GELU, fc2, x[token] += gate · row.
  void run_expert(const Range& r, int e, const ExpertWeights& w, const float* xn, float* x, ThreadScratch& ts);

  int n_ = 0, d_ = 0, hid_ = 0, E_ = 0, k_ = 0;
  MatmulPlan router_;  // fp32 always: a bf16 router would move tokens between experts; packs the routers
  std::vector<MatmulPlan> router_ranges_;  // what runs: one per range size (at most two)
  MatmulBank fc1_, fc2_;
  std::vector<float> logits_;  // [N, E]
  std::vector<int32_t> idx_;   // [N, k]
  std::vector<float> w_;       // [N, k]
  std::vector<Range> ranges_;            // one per thread
  std::vector<ThreadScratch> scratch_;   // one per OpenMP thread
  std::vector<int32_t> count_;           // [E] queue lengths summed over the ranges
  std::vector<int32_t> active_;          // experts with a non-empty queue, ascending
  // Stream mode: [E] ranges that have not finished the i-th active expert yet.
  std::unique_ptr<std::atomic<int>[]> left_;
};

}  // namespace m3vit::rt
