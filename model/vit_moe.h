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
  // forward() in two parts, for several tasks on one image batch (MultiTaskModel::forward_all):
  // the prefix no task's routing changes (embedding, the dense blocks before the first MoE block and
  // that block's attention half; the model has no dropout or drop path, so it is the same tensor for
  // every task), then task t's rest from it. forward_from_prefix(forward_prefix(x), t) computes
  // exactly forward(x, t); the gradients of several tasks' rests meet in the one prefix.
  torch::Tensor forward_prefix(const torch::Tensor& images);
  torch::Tensor forward_from_prefix(const torch::Tensor& prefix, int task);

  // Every router of every MoE layer (for the aux loss).
  std::vector<Router> routers();

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  TaskEmbedding gate_task_represent{nullptr};  // task_cond with task_emb_dim > 0 only

 private:
  torch::Tensor embed(const torch::Tensor& images);  // patch embedding + cls + positions [B, N, d]
  int first_moe_ = 0;  // index of the first MoE block (depth when there is none)
  ModelConfig cfg_;
};
TORCH_MODULE(VisionTransformerMoE);

}  // namespace m3vit
