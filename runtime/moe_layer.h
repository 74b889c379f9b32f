// One MoE layer of the runtime, in the paper's reordered form (M³ViT §3.2; anchors.md §1.7, §2.6):
//   1. route every token: logits = LN2(x)·W_gate (+ the task term of the task-conditioned gate),
//      softmax over all E, top-k, weights not renormalised (runtime/token_queue.h);
//   2. counting-sort the (token, expert) pairs into per-expert token queues;
//   3. gather every queue's rows once, in queue order ([N·k, d]); then expert by expert over the
//      non-empty queues: fc1 + GELU, fc2 on the expert's contiguous rows. While one expert computes,
//      the next one's weights are being brought in (runtime/expert_stream.h);
//   4. scale each output row by its gate weight and add it to its token's row of the residual stream
//      (per token, its k rows in top-k order, so no two threads write one row).
// Gathering and combining once per layer instead of once per expert keeps the number of OpenMP
// fork/joins per layer at 4 + the matmuls: on a loaded 2-core machine each fork/join can cost a
// scheduler time slice.
// Equal to Σ_j w_j·Expert_{idx_j}(x) per token (custom_moe_layer.py:290-297), up to summation order.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/expert_stream.h"
#include "runtime/ops/matmul.h"
#include "runtime/token_queue.h"

namespace m3vit::rt {

class MoeLayer {
 public:
  MoeLayer() = default;
  // tokens: N; the expert plans run with a runtime M of up to N rows (an expert sees a token once).
  MoeLayer(DnnlContext& ctx, int tokens, int d, int hidden, int E, int k, Precision prec, WeightForm form);

  // xn [N, d] = LN2(x); x [N, d] gets the layer output added (the block's residual).
  // router_w: the task's packed router (logits [N, E] = xn·W_gate + b_task).
  void forward(const float* xn, float* x, const PackedWeights& router_w, ExpertStream& experts, int moe_layer);

  const MatmulPlan& fc1_plan() const { return fc1_; }
  const MatmulPlan& fc2_plan() const { return fc2_; }
  const MatmulPlan& router_plan() const { return router_; }
  // Results of the last forward, for traces and statistics.
  const std::vector<int32_t>& topk_idx() const { return idx_; }  // [N, k]
  const std::vector<float>& topk_w() const { return w_; }        // [N, k]
  const TokenQueues& queues() const { return q_; }

 private:
  int n_ = 0, d_ = 0, hid_ = 0, E_ = 0, k_ = 0;
  MatmulPlan router_;  // fp32 always: a bf16 router would move tokens between experts
  MatmulPlan fc1_, fc2_;
  std::vector<float> logits_;      // [N, E]
  std::vector<int32_t> idx_;       // [N, k]
  std::vector<float> w_;           // [N, k]
  TokenQueues q_;
  std::vector<int32_t> pos_;       // [N, k] position of pair (t, j) in queue order
  std::vector<float> gathered_;    // [N·k, d] the rows of every queue, queue after queue
  std::vector<float> hidden_;      // [N, hid] one expert's fc1 output
  std::vector<float> y_;           // [N·k, d] every expert's fc2 output, in queue order
};

}  // namespace m3vit::rt
