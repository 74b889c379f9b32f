// One MoE layer of the runtime, in the paper's reordered form (M³ViT §3.2; anchors.md §1.7, §2.6):
//   1. route every token: logits = LN2(x)·W_gate (+ the task term of the task-conditioned gate),
//      softmax over all E, top-k, weights not renormalised (runtime/token_queue.h);
//   2. counting-sort the (token, expert) pairs into per-expert token queues;
//   3. expert by expert over the non-empty queues: gather the queue's rows, fc1 + GELU, fc2, scale
//      each row by its gate weight. While one expert computes, the next one's weights are being
//      brought in (runtime/expert_stream.h). A queue is cut into chunks of at most kMaxChunk rows
//      and the threads take chunks in queue order, so both cores work on the current expert and
//      the weights in use stay those of one or two experts. A chunk's rows stay in its thread's
//      cache from the gather to the scaled output, which goes to the row of its (token, choice)
//      pair: [N, k, d], written once, no two chunks write one row;
//   4. add each token's k scaled rows to its row of the residual stream, in top-k order, so the
//      result does not depend on which thread ran which chunk.
// Equal to Σ_j w_j·Expert_{idx_j}(x) per token (custom_moe_layer.py:290-297), up to summation order.
// One OpenMP region per step: on a 2-core machine shared with other work, every fork/join can cost
// a scheduler time slice, so the layer does not fork once per expert.
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
  // Rows per expert matmul call, at most. Every chunk re-reads its expert's weights (1.2 MB for
  // ViT-S), so chunks are kept large: on one core, chunks of 256 rows ran 5% slower than one dense
  // matmul of the same MACs, chunks of 128 rows 8% slower; with equal weights for every expert the
  // difference vanishes. kMinChunk: the smallest chunk a queue is split into to share it.
  static constexpr int kMaxChunk = 256;
  static constexpr int kMinChunk = 32;

  MoeLayer() = default;
  MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec);

  // xn [N, d] = LN2(x); x [N, d] gets the layer output added (the block's residual).
  // router_w: the task's packed router (logits [N, E] = xn·W_gate + b_task).
  // work: work_floats() floats of workspace (the expert outputs).
  void forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStream& experts, int moe_layer,
               float* work);
  size_t work_floats() const { return y_rows_ * static_cast<size_t>(d_); }

  const MatmulBank& fc1() const { return fc1_; }
  const MatmulBank& fc2() const { return fc2_; }
  const MatmulPlan& router_plan() const { return router_; }
  // Results of the last forward, for traces and statistics.
  const std::vector<int32_t>& topk_idx() const { return idx_; }  // [N, k]
  const std::vector<float>& topk_w() const { return w_; }        // [N, k]
  const TokenQueues& queues() const { return q_; }

 private:
  struct Chunk {
    int active;  // index in q_.active
    int start;   // first row (queue position) of the chunk
    int rows;
    int out;     // first row of its output in y_ (chunks are padded, see MatmulBank)
  };
  int n_ = 0, d_ = 0, hid_ = 0, E_ = 0, k_ = 0;
  MatmulPlan router_;  // fp32 always: a bf16 router would move tokens between experts
  MatmulBank fc1_, fc2_;
  std::vector<float> logits_;    // [N, E]
  std::vector<int32_t> idx_;     // [N, k]
  std::vector<float> w_;         // [N, k]
  TokenQueues q_;
  std::vector<int32_t> pos_;     // [N, k] queue position of each (token, choice) pair
  size_t y_rows_ = 0;            // workspace y: [N·k + padding, d] expert outputs, chunk by chunk
  std::vector<Chunk> chunks_;    // work items of one layer
  std::unique_ptr<std::atomic<int>[]> left_;  // [E] chunks of each active expert not yet done
  struct ThreadScratch {
    std::vector<float> in;      // [kMaxChunk, d] one chunk's gathered rows
    std::vector<float> hidden;  // [kMaxChunk, hid] its fc1 output
    MatmulScratch mm;
  };
  std::vector<ThreadScratch> scratch_;  // one per OpenMP thread
};

}  // namespace m3vit::rt
