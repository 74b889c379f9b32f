// The small model the fixed-point tests run the whole encoder on: 32x48 input in 16x16 patches
// (2 x 3 grid, 7 tokens), d 32, 2 blocks with 2 heads of 16 (two 8-feature blocks per score, so
// Edge-MoE's per-block Q·Kᵀ sums differ from one flat sum), MoE in block 1 with 4 experts, top-2;
// `gate` picks the router kind (a task embedding of 8 for task_cond).
#pragma once

#include "core/config.h"

namespace m3vit::hw::fx_test {

inline ModelConfig tiny_fx_model(GateType gate = GateType::multi) {
  ModelConfig c;
  c.name = "tiny_fx";
  c.img_h = 32;
  c.img_w = 48;
  c.embed_dim = 32;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_ratio = 2;
  c.moe_blocks = {1};
  c.moe_experts = 4;
  c.moe_top_k = 2;
  c.moe_mlp_ratio = 1;
  c.gate = gate;
  c.task_emb_dim = 8;
  c.tasks = {{"semseg", 2}, {"depth", 1}};
  c.validate();
  return c;
}

}  // namespace m3vit::hw::fx_test
