// One MoE layer of the runtime, in the paper's reordered form (M³ViT §3.2; anchors.md §1.7, §2.6):
//   1. route every token: logits = LN2(x)·W_gate (+ the task term of the task-conditioned gate),
//      softmax over all E, top-k, weights not renormalised (runtime/token_queue.h);
//   2. counting-sort the (token, expert) pairs into per-expert token queues;
//   3. expert by expert over the non-empty queues: gather the queue's rows, fc1 + GELU, fc2, scale
//      each row by its gate weight and add it to its token's row of the residual stream. While one
//      expert computes, the next one's weights are being brought in (runtime/expert_stream.h).
// Equal to Σ_j w_j·Expert_{idx_j}(x) per token (custom_moe_layer.py:290-297), up to summation order.
//
// Threads split the tokens, not the experts: thread u owns tokens [u·N/T, (u+1)·N/T) and runs every
// expert over the part of its queue that falls in its range (queues list their tokens ascending).
// Every token has exactly k (token, expert) pairs, so the threads get equal work whatever the
// routing; each thread adds only into its own tokens' rows, while those rows are still in its
// cache, so there is no second pass and no lock; and each token's k rows are added in expert order
// whatever the thread count, so the result does not change from run to run. Both threads walk the
// experts in the same order, which is the order the expert stream loads them in: the paper's
// ping-pong, one buffer computing while the next expert arrives in the other.
// The three steps run in ONE OpenMP region (threads route blocks of tokens with single-threaded
// router matmuls, one thread builds the queues, then each thread runs its chunks): with
// OMP_WAIT_POLICY=passive every fork/join wakes a sleeping thread (tens of µs), and at batch 1 the
// layer is only ~6 ms.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/expert_stream.h"
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
  // Tokens per router matmul call (step 1), taken by the threads as they come.
  static constexpr int kRouterBlock = 128;

  MoeLayer() = default;
  MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec);

  // xn [N, d] = LN2(x); x [N, d] gets the layer output added (the block's residual).
  // router_w: the task's packed router (logits [N, E] = xn·W_gate + b_task).
  void forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStream& experts, int moe_layer);

  const MatmulBank& fc1() const { return fc1_; }
  const MatmulBank& fc2() const { return fc2_; }
  const MatmulPlan& router_plan() const { return router_; }
  // Results of the last forward, for traces and statistics.
  const std::vector<int32_t>& topk_idx() const { return idx_; }  // [N, k]
  const std::vector<float>& topk_w() const { return w_; }        // [N, k]
  const TokenQueues& queues() const { return q_; }

 private:
  struct Chunk {
    int active;  // index in q_.active (the compute order)
    int start;   // first row (queue position) of the chunk
    int rows;
  };
  struct ThreadScratch {
    std::vector<float> in;        // [kMaxChunk, d] one chunk's gathered rows, then its fc2 output
    std::vector<float> hidden;    // [kMaxChunk, hid] its fc1 output
    std::vector<int32_t> chunks;  // this thread's chunks (indices into chunks_), in compute order
    MatmulScratch mm;
  };
  void route_block(int b, const float* xn, const PackedWeights& router_w, MatmulScratch& mm);
  void plan_chunks(int team);

  int n_ = 0, d_ = 0, hid_ = 0, E_ = 0, k_ = 0;
  MatmulPlan router_;  // fp32 always: a bf16 router would move tokens between experts
  MatmulBank fc1_, fc2_;
  // Step 1: the router on blocks of block_rows_ tokens (the last may be shorter), one
  // single-threaded plan per block size. Empty when oneDNN packs the router differently for a block
  // than for router_ (then router_ runs on all tokens from one thread).
  int block_rows_ = 0;
  std::vector<MatmulPlan> router_block_;  // [0]: block_rows_ rows, [1]: the last block if shorter
  std::vector<float> logits_;  // [N, E]
  std::vector<int32_t> idx_;   // [N, k]
  std::vector<float> w_;       // [N, k]
  TokenQueues q_;
  std::vector<Chunk> chunks_;                 // work items of one layer
  std::unique_ptr<std::atomic<int>[]> left_;  // [E] chunks of each active expert not yet done
  std::vector<ThreadScratch> scratch_;        // one per OpenMP thread
};

}  // namespace m3vit::rt
