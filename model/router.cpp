#include "common/pch/torch_pch.h"

// Router (noisy V-MoE top-k gate) and the task embedding of the task-conditioned gate.
// Authors: models/gate_funs/noisy_gate_vmoe.py (NoisyGate_VMoE), vision_transformer_moe.py:174-192.
#include "model/router.h"

#include <cmath>

#include "model/batch_sync.h"
#include "model/weight_init.h"

namespace m3vit {

namespace {

// Standard normal CDF, differentiable: Phi(x) = (1 + erf(x / sqrt 2)) / 2.
torch::Tensor normal_cdf(const torch::Tensor& x) { return 0.5 * (1.0 + torch::erf(x * M_SQRT1_2)); }

// Noise below this std is treated as no noise, as the authors do (noisy_gate_vmoe.py:271).
constexpr double kMinNoise = 1e-6;

}  // namespace

torch::Tensor cv_squared(const torch::Tensor& v) {
  if (v.size(0) == 1) return torch::zeros({}, v.options());
  return v.var(/*unbiased=*/true) / (v.mean().pow(2) + 1e-10);
}

torch::Tensor smooth_load(const torch::Tensor& clean, const torch::Tensor& noisy, const torch::Tensor& probs,
                          double sigma, int k, bool authors_q6) {
  // The (k+1) largest values per token of the ranking quantity: [T, k+1], descending.
  // Correct: noisy logits. Q6: softmax probabilities (the authors rank `logits = softmax(noisy)` and
  // then use those values as thresholds against the raw logits, noisy_gate_vmoe.py:258-261, 102-122).
  const torch::Tensor& ranked = authors_q6 ? probs : noisy;
  torch::Tensor top = std::get<0>(ranked.topk(k + 1, /*dim=*/1));
  torch::Tensor thr_if_in = top.narrow(1, k, 1);       // [T, 1] (k+1)-th largest: the bar an expert in the top k must stay above
  torch::Tensor thr_if_out = top.narrow(1, k - 1, 1);  // [T, 1] k-th largest: the bar an outside expert must pass
  // "in the top k" is decided on the noisy logits in both forms (Q6 compares logits with a probability here).
  torch::Tensor is_in = noisy > thr_if_in;
  torch::Tensor p_in = normal_cdf((clean - thr_if_in) / sigma);
  torch::Tensor p_out = normal_cdf((clean - thr_if_out) / sigma);
  return torch::where(is_in, p_in, p_out).sum(0);  // [E]
}

torch::Tensor router_aux_loss(const RouteResult& r, const torch::Tensor& noisy_logits, double sigma, int k,
                              bool authors_q6) {
  const int64_t E = r.probs.size(1);
  // G: the kept probabilities scattered into [T, E], zero elsewhere (noisy_gate_vmoe.py:267-268).
  torch::Tensor gates = torch::zeros_like(r.probs).scatter(1, r.idx, r.w);
  torch::Tensor importance = gates.sum(0);  // [E]
  torch::Tensor load;
  if (k < E && sigma > kMinNoise) {
    load = smooth_load(r.logits, noisy_logits, r.probs, sigma, k, authors_q6);
  } else {
    // Hard count of tokens routed to each expert: an integer, no gradient (noisy_gate_vmoe.py:72-80).
    load = (gates > 0).sum(0).to(r.probs.scalar_type());
  }
  // In a data-parallel run with train.batch_stats: global, both sums cover the global batch
  // (model/batch_sync.h); the authors' DDP runs take each process's own batch.
  if (const BatchSync* sync = batch_sync(); sync && sync->global_batch_stats) {
    importance = sum_over_processes(importance);
    load = sum_over_processes(load);
  }
  return cv_squared(importance) + cv_squared(load);
}

RouterImpl::RouterImpl(int d_gate, int num_experts, int top_k, double noise_std, bool authors_noisy_load)
    : num_experts_(num_experts), top_k_(top_k), noise_std_(noise_std), authors_noisy_load_(authors_noisy_load) {
  w_gate = register_parameter("w_gate", torch::empty({d_gate, num_experts}));
  // kaiming-uniform a=sqrt(5) on the 2-D [d_gate, E] tensor: torch takes fan_in = size(1) = E, so
  // U(-1/sqrt(E), 1/sqrt(E)) (noisy_gate_vmoe.py:63-70).
  kaiming_uniform_a_sqrt5(w_gate);
}

RouteResult RouterImpl::forward(const torch::Tensor& x) {
  RouteResult r;
  r.logits = x.matmul(w_gate);  // [T, E]
  // Training-time noise, sigma = noise_std / E (noisy_gate_vmoe.py:183-184, 229); never in eval.
  const double sigma = is_training() ? noise_std_ / num_experts_ : 0.0;
  torch::Tensor noisy = sigma > 0.0 ? r.logits + torch::randn_like(r.logits) * sigma : r.logits;
  // Softmax over ALL E experts, before the top-k (noisy_gate_vmoe.py:258).
  r.probs = torch::softmax(noisy, /*dim=*/1);
  // The authors take the top-(k+1) (for the noisy load estimate) and keep the first k; we do the same
  // so that ties come out in exactly their order (noisy_gate_vmoe.py:259-265).
  const int k1 = std::min(top_k_ + 1, num_experts_);
  auto [top_v, top_i] = r.probs.topk(k1, /*dim=*/1);
  // The kept weights are the softmax probabilities themselves: NOT renormalised over the k chosen
  // experts, so Σ_j w_j < 1 (noisy_gate_vmoe.py:263-265; unlike Shazeer's/calm's renormalised top-k).
  r.w = top_v.narrow(1, 0, top_k_);
  r.idx = top_i.narrow(1, 0, top_k_);
  if (is_training()) {
    torch::Tensor loss = router_aux_loss(r, noisy, sigma, top_k_, authors_noisy_load_);
    loss_ = loss_.defined() ? loss_ + loss : loss;  // accumulate like set_loss (:143-147)
  }
  return r;
}

torch::Tensor RouterImpl::take_loss() {
  torch::Tensor l = loss_;
  loss_ = torch::Tensor();
  return l;
}

TaskEmbeddingImpl::TaskEmbeddingImpl(int num_tasks, int dim) : num_tasks_(num_tasks) {
  fc1 = register_module("fc1", torch::nn::Linear(num_tasks, dim));
  fc2 = register_module("fc2", torch::nn::Linear(dim, dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  init_linear(fc1);
  init_linear(fc2);
}

torch::Tensor TaskEmbeddingImpl::forward(int task, const torch::Tensor& like) {
  torch::Tensor one_hot = torch::zeros({num_tasks_}, like.options());  // [T]
  one_hot[task] = 1.0;
  torch::Tensor h = torch::gelu(fc1->forward(one_hot));  // [D_t], exact erf GELU
  return norm->forward(fc2->forward(h));                 // [D_t]
}

}  // namespace m3vit
