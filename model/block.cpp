#include "common/pch/torch_pch.h"

// Pre-norm ViT block, dense or MoE (vision_transformer_moe.py:226-283).
#include "model/block.h"

namespace m3vit {

BlockImpl::BlockImpl(const ModelConfig& cfg, bool moe) {
  const int d = cfg.embed_dim;
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(cfg.ln_eps)); };
  norm1 = register_module("norm1", ln());
  attn = register_module("attn", Attention(d, cfg.num_heads, cfg.qkv_bias));
  norm2 = register_module("norm2", ln());
  if (moe)
    moe_mlp = register_module("mlp", MoELayer(cfg));
  else
    mlp = register_module("mlp", Mlp(d, cfg.mlp_hidden()));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, int task, const torch::Tensor& task_emb, RouteResult* route) {
  return forward_mlp(forward_attn(x), task, task_emb, route);
}

torch::Tensor BlockImpl::forward_attn(const torch::Tensor& x) { return x + attn->forward(norm1->forward(x)); }

torch::Tensor BlockImpl::forward_mlp(const torch::Tensor& h, int task, const torch::Tensor& task_emb, RouteResult* route) {
  // The router reads the same LN2-normalised token as the experts (custom_moe_layer.py:166-167;
  // gate_input_ahead is off in every config).
  torch::Tensor n = norm2->forward(h);
  return h + (is_moe() ? moe_mlp->forward(n, task, task_emb, route) : mlp->forward(n));
}

}  // namespace m3vit
