// The MoE ViT backbone (authors' vision_transformer_moe.py:350-566 `VisionTransformerMoE`; paper §3):
// patch embedding, cls token, learned positional embedding, `depth` pre-norm blocks whose MLP is a
// MoE layer at cfg.moe_blocks (authors: odd blocks), and for the task-conditioned gate the task
// embedding MLP shared by all MoE layers. There is no final LayerNorm: each head has its own.
// Keys: backbone.{cls_token [1,1,d], pos_embed [1,1+h*w,d], patch_embed.*, blocks.{i}.*, gate_task_represent.*}.
#pragma once

#include "common/pch/torch_pch.h"

#include "model/block.h"
#include "core/config.h"
#include "model/forward_trace.h"
#include "model/patch_embed.h"
#include "model/router.h"

namespace m3vit {

class VisionTransformerMoEImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerMoEImpl(const ModelConfig& cfg);
  // images [B, C, H, W] (already checked) -> last block's tokens [B, N, d], N = 1 + h*w, with task t's
  // routing. Appends to *trace when given.
  torch::Tensor forward(const torch::Tensor& images, int task, ForwardTrace* trace = nullptr);

  // Every router of every MoE layer (for the aux loss).
  std::vector<Router> routers();

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  TaskEmbedding gate_task_represent{nullptr};  // task_cond with task_emb_dim > 0 only

 private:
  ModelConfig cfg_;
};
TORCH_MODULE(VisionTransformerMoE);

}  // namespace m3vit
