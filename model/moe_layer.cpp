#include "common/pch/torch_pch.h"

// MoE layer: router(s), token queues, expert matmuls, weighted combination.
// Authors: models/custom_moe_layer.py:66-314; FastMoE fmoe/functions.py (count_by_gate, prepare_forward).
#include "model/moe_layer.h"

#include "model/expert_parallel.h"

namespace m3vit {

TokenQueues make_token_queues(const torch::Tensor& idx, int num_experts) {
  const int64_t k = idx.size(1);
  torch::Tensor flat = idx.reshape({-1});  // [T*k] expert of each (token, choice) pair
  TokenQueues q;
  // Stable sort by expert id: within one expert's queue the tokens keep their original order, the
  // software analogue of FastMoE's count-and-scatter (fmoe/functions.py prepare_forward).
  q.pair = std::get<1>(torch::sort(flat, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  q.token = torch::div(q.pair, k, "floor");
  torch::Tensor counts = torch::bincount(flat, /*weights=*/{}, /*minlength=*/num_experts).to(torch::kCPU);
  q.count.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + num_experts);
  return q;
}

torch::Tensor moe_dispatch(Experts& experts, const torch::Tensor& x, const torch::Tensor& idx,
                           const torch::Tensor& w) {
  const int E = experts->num_experts();
  if (x.size(0) == 0) return torch::zeros_like(x);
  TokenQueues q = make_token_queues(idx, E);
  torch::Tensor xs = x.index_select(0, q.token);                  // [T*k, d] tokens in queue order
  torch::Tensor ws = w.reshape({-1}).index_select(0, q.pair);     // [T*k]   their gate weights
  torch::Tensor y = experts->forward_queues(xs, q.count) * ws.unsqueeze(1);  // [T*k, d] scaled by w
  // Scatter-add the k weighted expert outputs of each token back to its row.
  return torch::zeros_like(x).index_add(0, q.token, y);           // [T, d]
}

MoELayerImpl::MoELayerImpl(const ModelConfig& cfg) : gate_type_(cfg.gate), num_experts_(cfg.moe_experts) {
  experts = register_module("experts", Experts(cfg.moe_experts, cfg.embed_dim, cfg.moe_hidden()));
  const int E = cfg.moe_experts, k = cfg.moe_top_k;
  if (cfg.gate == GateType::multi) {
    // One router per task (custom_moe_layer.py:143-150), keys gate.{t}.w_gate [d, E].
    gates_ = register_module("gate", torch::nn::ModuleList());
    for (int t = 0; t < cfg.num_tasks(); ++t)
      gates_->push_back(Router(cfg.embed_dim, E, k, cfg.noise_std, cfg.authors_noisy_load));
  } else {
    // One router for all tasks; the task-conditioned one also reads the task embedding
    // (router input [LN2(x) ; e_t], width d + D_t, custom_moe_layer.py:127-130).
    const bool with_emb = cfg.gate == GateType::task_cond && cfg.task_emb_dim > 0;
    const int d_gate = cfg.embed_dim + (with_emb ? cfg.task_emb_dim : 0);
    gate_ = register_module("gate", Router(d_gate, E, k, cfg.noise_std, cfg.authors_noisy_load));
  }
}

Router MoELayerImpl::router(int task) {
  if (gate_type_ == GateType::multi) return Router(gates_->ptr<RouterImpl>(task));
  return gate_;
}

std::vector<Router> MoELayerImpl::routers() {
  if (gate_type_ != GateType::multi) return {gate_};
  std::vector<Router> r;
  for (size_t t = 0; t < gates_->size(); ++t) r.push_back(Router(gates_->ptr<RouterImpl>(t)));
  return r;
}

torch::Tensor MoELayerImpl::forward(const torch::Tensor& x, int task, const torch::Tensor& task_emb,
                                    RouteResult* route) {
  const auto shape = x.sizes().vec();
  // [T, d], T = B*N: the cls token is routed and sent to experts like any patch token, as FastMoE
  // does with the flattened batch (custom_moe_layer.py:160-170); no capacity limit, no dropping.
  torch::Tensor tokens = x.reshape({-1, x.size(-1)});
  torch::Tensor gate_in = tokens;
  if (task_emb.defined()) {
    // Same e_t for every token (custom_moe_layer.py:176-179): [T, d + D_t].
    gate_in = torch::cat({tokens, task_emb.unsqueeze(0).expand({tokens.size(0), task_emb.size(0)})}, 1);
  }
  RouteResult r = router(task)->forward(gate_in);
  // Expert parallel: this rank holds E/N experts; the others' tokens come and go by all-to-all.
  torch::Tensor out = experts->num_experts() < num_experts_
                          ? moe_dispatch_sharded(experts, num_experts_, tokens, r.idx, r.w)
                          : moe_dispatch(experts, tokens, r.idx, r.w);
  if (route) *route = r;
  return out.reshape(shape);
}

}  // namespace m3vit
