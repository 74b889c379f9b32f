// MultiTaskModel: the shared MoE ViT backbone, one PUP head per task, and the training-only TAM
// (models/models.py:118-263 in the authors' code). This header is the model's public API; the
// trainer, the CLI, the exporter and the parity tests use only what is declared here.
//
// Parameter names are the authors' state-dict keys (utils/common_config.py:29-97), so `named_parameters()` and
// `named_buffers()` of a MultiTaskModel give exactly the keys of their checkpoints:
//   backbone.cls_token [1,1,d]   backbone.pos_embed [1,1+h*w,d]   backbone.patch_embed.proj.{weight,bias}
//   backbone.blocks.{i}.norm1.*  .attn.qkv.*  .attn.proj.*  .norm2.*
//   dense block:  backbone.blocks.{i}.mlp.fc1.*  .mlp.fc2.*
//   MoE block:    backbone.blocks.{i}.mlp.experts.htoh4.weight [E,hid,d]  .bias [E,hid]
//                 backbone.blocks.{i}.mlp.experts.h4toh.weight [E,d,hid]  .bias [E,d]
//                 multi-gate:  backbone.blocks.{i}.mlp.gate.{t}.w_gate [d,E]
//                 task_cond:   backbone.blocks.{i}.mlp.gate.w_gate [d+D_t,E], and
//                              backbone.gate_task_represent.{fc1,fc2,norm}.*
//                 shared:      backbone.blocks.{i}.mlp.gate.w_gate [d,E]
//   decoders.{task}.norm.*  .conv_{0..4}.*  .syncbn_fc_{0..3}.{weight,bias,running_mean,running_var,num_batches_tracked}
//   tam_model{L}.layers{0,1,2}.{0,1}.*  .encoder{0,1}.{0,1}.*  .decoder{0,1}.{0,1}.*
//                .layers3.{task}.{0,1}.*  .layers4.{task}.0.*
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "model/forward_trace.h"
#include "model/pup_head.h"
#include "model/tam.h"
#include "model/vit_moe.h"

namespace m3vit {

// ForwardTrace (model/forward_trace.h): named intermediates of one pass, for the parity oracle.

class MultiTaskModelImpl : public torch::nn::Module {
 public:
  // Builds every submodule with the authors' initialisation (quirk Q27, docs/AUTHORS_CODE.md) from torch's global
  // RNG, so torch::manual_seed(s) before construction makes the weights deterministic.
  explicit MultiTaskModelImpl(ModelConfig cfg);
  const ModelConfig& config() const { return cfg_; }

  // The authors' forward (models.py:225-263): one backbone pass per task with that task's routing
  // (multi / task_cond), or one shared pass (shared gate). Returns task name -> [B, C_t, H, W]
  // (raw logits / unnormalised normals / raw depth). In training mode with cfg.tam, also
  // "tam_level{L}_{task}" -> [B, C_t, H, W].
  std::map<std::string, torch::Tensor> forward_all(const torch::Tensor& images);

  // Single-task inference: one backbone pass with task t's routing, then head t only: [B, C_t, H, W].
  torch::Tensor forward_task(const torch::Tensor& images, int task, ForwardTrace* trace = nullptr);

  // Backbone only: output of the last block, [B, N, d], with task t's routing.
  torch::Tensor forward_features(const torch::Tensor& images, int task, ForwardTrace* trace = nullptr);

  // Sum over every router call since the last take of cv²(importance) + cv²(load) (utils/moe_utils.py:105-111),
  // not yet multiplied by cfg.aux_weight. Zero (a scalar tensor) in eval mode. Clears the sum.
  torch::Tensor take_aux_loss();

  // Expert tensors (htoh4/h4toh weights and biases) and everything else, for per-group learning rates.
  std::vector<torch::Tensor> expert_parameters();
  std::vector<torch::Tensor> non_expert_parameters();

  // Submodules under the authors' names: "backbone", "decoders.{task}", "tam_model{L}".
  VisionTransformerMoE backbone{nullptr};
  std::vector<PupHead> decoders;         // task order; registered as decoders.{task name}
  TamModule tam_model[3] = {nullptr, nullptr, nullptr};  // only the enabled levels when cfg.tam

 private:
  // Throws ShapeError unless images is [B, in_chans, img_h, img_w]; ConfigError for a bad task index.
  void check_input(const torch::Tensor& images) const;
  void check_task(int task) const;
  ModelConfig cfg_;
};
TORCH_MODULE(MultiTaskModel);

}  // namespace m3vit
