// Task switching: everything that differs between tasks, held for every task at once, so that
// run(task, image) only picks pointers and switching task between two images costs nothing extra
// (the paper's "zero-overhead task switching", M³ViT paper §3.2).
//
// Per task t: one router per MoE layer and the PUP head's LayerNorm and conv_4 (its 3×3 convs are
// in the head store, runtime/head_store.h, every task's too). How the router depends on t follows the
// gate type (models/models.py:225-263, custom_moe_layer.py:127-179):
// - multi:     router t of each layer, backbone.blocks.{i}.mlp.gate.{t}.w_gate [d, E];
// - task_cond: one router over [LN2(x) ; e_t] with W_gate [d + D_t, E]. Since e_t is the same for
//              every token, its part of the logits, e_t·W_gate[d:], is a per-task bias computed
//              here at load: e_t = LN(fc2(GELU(fc1(one_hot(t))))) (vision_transformer_moe.py:174-192,
//              547-550). At run time the task-conditioned router is then exactly as cheap as the others;
// - shared:    one router for all tasks (also task_cond without a task embedding, D_t <= 0).
#pragma once

#include <vector>

#include "runtime/ops/matmul.h"
#include "runtime/pup_head.h"

namespace m3vit::rt {

class ModelFile;

class TaskSwitch {
 public:
  TaskSwitch() = default;
  // router_plan: the fp32 [d -> E] plan with bias shared by all MoE layers. Of each head, the
  // LayerNorm and conv_4 are held here; the 3×3 convs are in the head store (runtime/head_store.h).
  TaskSwitch(const ModelFile& file, const MatmulPlan& router_plan, PupHead& head);

  int num_tasks() const { return static_cast<int>(heads_.size()); }
  const PackedWeights& router(int task, int moe_layer) const { return routers_[task][moe_layer]; }
  const HeadWeights& head(int task) const { return heads_[task]; }
  // task_cond only: e_t [D_t] (empty for the other gates).
  const std::vector<float>& task_embedding(int task) const { return task_emb_[task]; }
  size_t bytes() const;

 private:
  std::vector<std::vector<PackedWeights>> routers_;  // [task][moe layer] (shared gates share the memory)
  std::vector<HeadWeights> heads_;                   // [task]
  std::vector<std::vector<float>> task_emb_;         // [task][D_t]
};

// e_t for every task of a task_cond config: LN(fc2(GELU(fc1(one_hot(t))))), eps 1e-6. [T][D_t]
std::vector<std::vector<float>> task_embeddings(const ModelFile& file);

}  // namespace m3vit::rt
