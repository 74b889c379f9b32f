// MoE layer: router(s) + token dispatch to the stacked experts + weighted combination
// (authors' models/custom_moe_layer.py:66-314 `FMoETransformerMLP`, FastMoE's count/sort dispatch
// fmoe/functions.py; paper §3.2 and the "token queues" of §4; custom_moe_layer.py:127-179, :290-297).
//
// For tokens x [T, d] (T = B·N, the cls token routed like any patch token) and the router's choice
// idx/w [T, k]:   out_t = Σ_j w_tj · Expert_{idx_tj}(x_t)        (no capacity limit, no dropping)
// The dispatch never runs an expert on a token that did not pick it: the T·k (token, expert) pairs
// are sorted by expert into contiguous per-expert blocks (the software token queues) and each
// non-empty block is one addmm -> GELU -> addmm.
#pragma once

#include "common/pch/torch_pch.h"

#include "core/config.h"
#include "model/experts.h"
#include "model/router.h"

namespace m3vit {

// out [T, d] = Σ_j w[:, j] · experts(idx[:, j], x), computed per expert on its token queue.
// x: [T, d]; idx: [T, k] int64 in [0, E); w: [T, k]. Differentiable in x, w and the expert tensors.
torch::Tensor moe_dispatch(Experts& experts, const torch::Tensor& x, const torch::Tensor& idx,
                           const torch::Tensor& w);

// The per-expert token queues of one routing decision: the T·k (token, expert) pairs sorted (stably)
// by expert id. Used by moe_dispatch; exposed for tests and the routing trace.
struct TokenQueues {
  torch::Tensor pair;          // [T*k] int64: position t*k + j of each sorted pair in the flattened idx / w
  torch::Tensor token;         // [T*k] int64: its token t = pair / k
  std::vector<int64_t> count;  // [E] queue length per expert (host copy: it sizes the matmuls)
};
TokenQueues make_token_queues(const torch::Tensor& idx, int num_experts);

class MoELayerImpl : public torch::nn::Module {
 public:
  explicit MoELayerImpl(const ModelConfig& cfg);

  // x: [B, N, d] LN2-normalised tokens; task: which router (multi gate); task_emb: e_t [D_t] for the
  // task-conditioned gate with an embedding, else undefined. Fills *route when given. -> [B, N, d]
  torch::Tensor forward(const torch::Tensor& x, int task, const torch::Tensor& task_emb,
                        RouteResult* route = nullptr);

  // The router that task t uses in this layer (multi: its own; task_cond / shared: the one router).
  Router router(int task);
  std::vector<Router> routers();

  Experts experts{nullptr};

 private:
  GateType gate_type_;
  int num_experts_;  // E of the routers; `experts` holds E/N of them on a rank of an expert-parallel run
  torch::nn::ModuleList gates_{nullptr};  // multi: "gate.{t}"
  Router gate_{nullptr};                  // task_cond / shared: "gate"
};
TORCH_MODULE(MoELayer);

}  // namespace m3vit
