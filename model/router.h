// Router: the noisy V-MoE top-k gate of M³ViT (authors' models/gate_funs/noisy_gate_vmoe.py,
// class NoisyGate_VMoE, :178-286), plus the task embedding of the task-conditioned gate
// (vision_transformer_moe.py:174-192, 420-423; custom_moe_layer.py:176-179).
//
// Per call on tokens x [T, d_gate]:
//   logits = x · w_gate                       [T, E]   (bias-free; w_gate is [d_gate, E], input-major)
//   noisy  = logits + sigma·N(0,1)            training only, sigma = noise_std / E
//   probs  = softmax(noisy) over ALL E        [T, E]
//   topk   = the k largest probs              idx [T, k] int64, w [T, k] (NOT renormalised)
// and, in training mode, the load-balancing loss cv²(importance) + cv²(load) is added to the
// router's running sum (take_loss() returns and clears it, like the authors' get_loss()).
#pragma once

#include "common/pch/torch_pch.h"

namespace m3vit {

// Everything one router call decides, for the MoE dispatch and for ForwardTrace.
struct RouteResult {
  torch::Tensor logits;  // [T, E] clean logits (before noise)
  torch::Tensor probs;   // [T, E] softmax over all E of the (noisy) logits
  torch::Tensor idx;     // [T, k] int64, descending probability (torch::topk order)
  torch::Tensor w;       // [T, k] kept probabilities, not renormalised
};

// Squared coefficient of variation of a 1-D tensor: var_unbiased(v) / (mean(v)² + 1e-10);
// 0 for a single element (noisy_gate_vmoe.py:127-141).
torch::Tensor cv_squared(const torch::Tensor& v);

// Smooth (differentiable) load estimate of Shazeer et al.: for each expert, the sum over tokens of
// P(expert in the top-k when the noise is re-sampled) = Phi((clean - threshold) / sigma).
//   clean, noisy: [T, E] logits without / with the noise; sigma: the noise std; k: top-k.
// Correct form (authors_q6 = false): the threshold is the k-th largest NOISY LOGIT among the other
// experts: the (k+1)-th largest overall if the expert is in the top k, else the k-th largest.
// authors_q6 = true reproduces quirk Q6 (noisy_gate_vmoe.py:82-125, 259-277): the two thresholds are
// taken from the top-(k+1) SOFTMAX PROBABILITIES `probs` and compared with raw logits.
// Returns [E]. Requires k < E.
torch::Tensor smooth_load(const torch::Tensor& clean, const torch::Tensor& noisy, const torch::Tensor& probs,
                          double sigma, int k, bool authors_q6);

// The per-call auxiliary loss of one router (noisy_gate_vmoe.py:270-286): cv²(importance) + cv²(load) with
// importance_e = Σ_tokens G[:, e] (G = kept probabilities scattered into [T, E]) and load_e the hard
// count of tokens with G[:, e] > 0 when sigma <= 1e-6 or k == E, else smooth_load(...).
torch::Tensor router_aux_loss(const RouteResult& r, const torch::Tensor& noisy_logits, double sigma, int k,
                              bool authors_q6);

class RouterImpl : public torch::nn::Module {
 public:
  // d_gate: router input width (d, or d + D_t for the task-conditioned gate); E experts; top-k.
  RouterImpl(int d_gate, int num_experts, int top_k, double noise_std, bool authors_noisy_load);

  // x: [T, d_gate] -> the routing decision. Adds this call's aux loss to the running sum in training.
  RouteResult forward(const torch::Tensor& x);

  // Sum of the aux losses since the last take (undefined tensor if none), then clears it.
  torch::Tensor take_loss();

  torch::Tensor w_gate;  // [d_gate, E]

 private:
  int num_experts_, top_k_;
  double noise_std_;
  bool authors_noisy_load_;
  torch::Tensor loss_;
};
TORCH_MODULE(Router);

// Task embedding e_t of the task-conditioned gate (the authors' `new_Mlp` as
// backbone.gate_task_represent): one-hot(T) -> fc1 (T -> D_t) -> GELU -> fc2 (D_t -> D_t) -> norm
// (LayerNorm(D_t), eps 1e-6 fixed in the authors' code, vision_transformer_moe.py:175).
class TaskEmbeddingImpl : public torch::nn::Module {
 public:
  TaskEmbeddingImpl(int num_tasks, int dim);
  // Returns e_t: [D_t], created with `like`'s dtype and device.
  torch::Tensor forward(int task, const torch::Tensor& like);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  int num_tasks_;
};
TORCH_MODULE(TaskEmbedding);

}  // namespace m3vit
