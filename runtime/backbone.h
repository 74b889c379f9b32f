// The MoE ViT backbone on oneDNN (authors: vision_transformer_moe.py:350-566; spec §1):
//   patch embed (16×16 stride-16 conv = a matmul over patches) → prepend cls → + pos_embed
//   → depth × pre-norm block: x += proj(attn(LN1(x))); x += MLP(LN2(x)) or MoE(LN2(x))
// No final norm: each head has its own. Blocks listed in moe_blocks (the odd ones in the paper's
// configs) use the reordered MoE layer with the running task's router.
#pragma once

#include <vector>

#include "model/config.h"
#include "runtime/engine.h"
#include "runtime/moe_layer.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/matmul.h"

namespace m3vit::rt {

class ModelFile;
class TaskSwitch;

class Backbone {
 public:
  Backbone(DnnlContext& ctx, const ModelFile& file, Precision prec);

  // image [3, H, W] -> tokens [N, d] after the last block (returned pointer valid until the next call).
  const float* forward(const float* image, int task, const TaskSwitch& tasks, ExpertStream& experts, RunTimes& times,
                       RunTrace* trace);

  MoeLayer& moe() { return moe_; }
  size_t bytes() const;  // dense weights held

 private:
  struct BlockWeights {
    std::vector<float> n1w, n1b, n2w, n2b;  // LayerNorm γ, β [d]
    PackedWeights qkv, proj, fc1, fc2;      // fc1/fc2 empty for a MoE block
    int moe_layer = -1;                     // index among MoE layers, -1 for a dense block
  };
  void patchify(const float* image);

  ModelConfig cfg_;
  int n_ = 0, d_ = 0;
  MatmulPlan patch_, qkv_, proj_, fc1_, fc2_;
  AttentionPlan attn_;
  MoeLayer moe_;
  PackedWeights patch_w_;
  std::vector<float> cls_, pos_;  // [d], [N, d]
  std::vector<BlockWeights> blocks_;
  std::vector<float> patches_;  // [h·w, 3·p·p]
  std::vector<float> x_, xn_;   // [N, d] residual stream, normed copy
  std::vector<float> qkv_buf_;  // [N, 3d]
  std::vector<float> att_;      // [N, d]
  std::vector<float> hid_;      // [N, mlp hidden]
};

}  // namespace m3vit::rt
