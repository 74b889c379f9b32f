// The MoE ViT backbone on oneDNN (authors: vision_transformer_moe.py:350-566; docs/RUNTIME.md):
//   patch embed (16×16 stride-16 conv = a matmul over patches) → prepend cls → + pos_embed
//   → depth × pre-norm block: x += proj(attn(LN1(x))); x += MLP(LN2(x)) or MoE(LN2(x))
// No final norm: each head has its own. Blocks listed in moe_blocks (the odd ones in the paper's
// configs) use the reordered MoE layer with the running task's router.
#pragma once

#include <vector>

#include "core/config.h"
#include "runtime/moe_layer.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/matmul.h"
#include "runtime/run_record.h"
#include "runtime/workspace.h"

namespace m3vit::rt {

class DenseStore;
class ExpertStore;
class ModelFile;
class TaskSwitch;

// Work the tasks of one image share (Engine::run_tasks): up to the attention of the first MoE block
// nothing depends on the task, since routing starts in that block's MLP. `save` keeps the tokens
// there; `resume` starts from them, skipping the embedding, the blocks before and that attention.
enum class Prefix { none, save, resume };

// One image's pass through the backbone: the image and everything it uses besides the backbone's own
// weights (the embeddings and norms).
struct ImagePass {
  const float* image;       // [3, H, W], normalised
  int task;                 // whose routers route the tokens
  const TaskSwitch& tasks;  // every task's routers
  ExpertStore& experts;     // the MoE layers' experts
  DenseStore& dense;        // the attention and dense MLP layers
  RunTimes& times;          // the stages' times are added here
  RunTrace* trace;          // null, or where the intermediates go
  std::vector<int32_t>* routing;  // null, or cleared and filled with [moe_layers, N, k] expert ids
  float* work;              // the shared workspace, at least work_floats() floats
  Prefix prefix = Prefix::none;
  std::vector<float>* prefix_tokens = nullptr;  // save: written; resume: read. [N, d]
};

class Backbone {
 public:
  // Packs the patch embedding and holds the embeddings and norms; the attention, dense MLP and
  // expert weights are in their stores (runtime/dense_store.h, expert_store.h), packed in the
  // layouts of the plans made here.
  Backbone(DnnlContext& ctx, const ModelFile& file, Precision prec);

  // image [3, H, W] -> tokens [N, d] after the last block (returned pointer valid until the next call).
  const float* forward(const ImagePass& pass);
  // The tokens the last forward() left: [N, d].
  const float* tokens() const { return x_.data(); }
  size_t work_floats() const { return layout_.floats; }

  MoeLayer& moe() { return moe_; }
  // The dense plans (the layouts the dense store packs into): qkv, proj, fc1, fc2.
  const MatmulPlan& qkv_plan() const { return qkv_plan_; }
  const MatmulPlan& proj_plan() const { return proj_; }
  const MatmulPlan& fc1_plan() const { return fc1_; }
  const MatmulPlan& fc2_plan() const { return fc2_; }
  size_t bytes() const;  // weights held here: patch embedding, cls, positions, norms

 private:
  struct Block {
    std::vector<float> n1w, n1b, n2w, n2b;  // LayerNorm γ, β [d]
    int moe_layer = -1;                     // index among MoE layers, -1 for a dense block
  };
  void patchify(const float* image, float* patches) const;

  ModelConfig cfg_;
  int n_ = 0, d_ = 0;
  MatmulPlan patch_, qkv_plan_, proj_, fc1_, fc2_;
  AttentionPlan attn_;
  MoeLayer moe_;
  PackedWeights patch_w_;
  std::vector<float> cls_, pos_;  // [d], [N, d]
  std::vector<Block> blocks_;
  std::vector<float> x_;  // [N, d] residual stream; the head reads it, so it is not in the workspace
  // Workspace offsets (runtime/workspace.h). xn lives through a block; the rest only inside one
  // step, so they overlap: patches (embedding) | qkv + attention copies + att (attention) |
  // hid (dense MLP). The MoE layer needs none: it adds its rows into x directly.
  WorkspaceLayout layout_;
  size_t xn_ = 0;       // [N, d] LayerNorm output
  size_t patches_ = 0;  // [h·w, 3·p·p]
  size_t qkv_ = 0;      // [N, 3d]
  size_t att_ = 0;      // [N, d]
  size_t attn_work_ = 0;
  size_t hid_ = 0;      // [N, mlp hidden]
};

}  // namespace m3vit::rt
