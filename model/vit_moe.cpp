#include "common/pch/torch_pch.h"

// MoE ViT backbone (vision_transformer_moe.py:350-566).
#include "model/vit_moe.h"

#include "model/weight_init.h"

namespace m3vit {

VisionTransformerMoEImpl::VisionTransformerMoEImpl(const ModelConfig& cfg) : cfg_(cfg) {
  const int d = cfg.embed_dim;
  patch_embed = register_module("patch_embed", PatchEmbed(cfg.in_chans, d, cfg.patch));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, d}));
  // Learned positional embedding for the configured grid: row 0 is the cls position, rows 1.. the
  // patches row-major. (The authors overwrite it with a bilinear resize of DeiT's; that belongs to
  // the checkpoint importer, not to the module.)
  pos_embed = register_parameter("pos_embed", torch::zeros({1, cfg.num_tokens(), d}));
  trunc_normal_(pos_embed);  // std .02 (vision_transformer_moe.py:460-461)
  trunc_normal_(cls_token);
  if (cfg.gate == GateType::task_cond && cfg.task_emb_dim > 0)
    gate_task_represent = register_module("gate_task_represent", TaskEmbedding(cfg.num_tasks(), cfg.task_emb_dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < cfg.depth; ++i) blocks->push_back(Block(cfg, cfg.is_moe_block(i)));
  first_moe_ = cfg.depth;
  for (int i = cfg.depth - 1; i >= 0; --i)
    if (cfg.is_moe_block(i)) first_moe_ = i;
}

std::vector<Router> VisionTransformerMoEImpl::routers() {
  std::vector<Router> r;
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto b = blocks->ptr<BlockImpl>(i);
    if (!b->is_moe()) continue;
    for (auto& g : b->moe_mlp->routers()) r.push_back(g);
  }
  return r;
}

torch::Tensor VisionTransformerMoEImpl::embed(const torch::Tensor& images) {
  torch::Tensor x = patch_embed->forward(images);  // [B, h*w, d]
  const int64_t B = x.size(0);
  return torch::cat({cls_token.expand({B, -1, -1}), x}, 1) + pos_embed;  // [B, N, d]
}

torch::Tensor VisionTransformerMoEImpl::forward_prefix(const torch::Tensor& images) {
  torch::Tensor x = embed(images);
  const torch::Tensor none;
  for (int i = 0; i < first_moe_; ++i) x = blocks->ptr<BlockImpl>(i)->forward(x, 0, none);  // dense: no routing
  if (first_moe_ < static_cast<int>(blocks->size())) x = blocks->ptr<BlockImpl>(first_moe_)->forward_attn(x);
  return x;
}

torch::Tensor VisionTransformerMoEImpl::forward_from_prefix(const torch::Tensor& prefix, int task) {
  const int depth = static_cast<int>(blocks->size());
  if (first_moe_ >= depth) return prefix;  // no MoE block: the prefix is the whole pass
  torch::Tensor task_emb;
  if (gate_task_represent) task_emb = gate_task_represent->forward(task, prefix);  // [D_t]
  torch::Tensor x = blocks->ptr<BlockImpl>(first_moe_)->forward_mlp(prefix, task, task_emb);
  for (int i = first_moe_ + 1; i < depth; ++i) x = blocks->ptr<BlockImpl>(i)->forward(x, task, task_emb);
  return x;
}

torch::Tensor VisionTransformerMoEImpl::forward(const torch::Tensor& images, int task, ForwardTrace* trace) {
  torch::Tensor x = embed(images);
  // Task embedding: computed once per forward, shared by every MoE layer (vision_transformer_moe.py:547-550).
  torch::Tensor task_emb;
  if (gate_task_represent) task_emb = gate_task_represent->forward(task, x);  // [D_t]
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto b = blocks->ptr<BlockImpl>(i);
    RouteResult route;
    x = b->forward(x, task, task_emb, trace ? &route : nullptr);
    if (trace) {
      trace->block_out.push_back(x);
      if (b->is_moe()) {
        trace->router_logits.push_back(route.logits);
        trace->router_probs.push_back(route.probs);
        trace->topk_idx.push_back(route.idx);
        trace->topk_w.push_back(route.w);
      }
    }
  }
  return x;  // no final norm: the heads own their LayerNorm
}

}  // namespace m3vit
