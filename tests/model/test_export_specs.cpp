#include "common/pch/torch_pch.h"

// The export table (core/export.h export_tensor_specs) is the libtorch model: for every gate kind,
// the model's named_parameters() + named_buffers() are exactly the table's names with the table's
// shapes, plus only the export-only keys (TAM, BatchNorm's num_batches_tracked). If the model gains,
// loses or reshapes a tensor, the runtime and the hardware model (which read exports through the
// table) would silently disagree with it; this test fails first.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/export.h"
#include "model/multitask_model.h"

namespace m3vit {
namespace {

// d = 32, 4 blocks with MoE at 1 and 3, three tasks (so the multi gate has three routers per block),
// TAM on (its tensors are export-only), a non-square 64x96 input (4x6 grid).
ModelConfig config(GateType gate, int task_emb_dim) {
  ModelConfig c;
  c.name = "specs";
  c.img_h = 64;
  c.img_w = 96;
  c.embed_dim = 32;
  c.depth = 4;
  c.num_heads = 4;
  c.moe_blocks = {1, 3};
  c.moe_experts = 4;
  c.moe_top_k = 2;
  c.moe_mlp_ratio = 0.5;  // expert hidden 16, so expert and dense shapes differ
  c.gate = gate;
  c.task_emb_dim = task_emb_dim;
  c.head_channels = 8;
  c.tasks = {{"semseg", 5}, {"normals", 3}, {"depth", 1}};
  c.tam = true;
  c.tam_levels[0] = c.tam_levels[1] = true;
  c.tam_levels[2] = false;
  c.validate();
  return c;
}

void expect_model_is_table(const ModelConfig& cfg) {
  MultiTaskModel m(cfg);
  std::map<std::string, std::vector<int64_t>> model;
  for (const auto& p : m->named_parameters(true)) model[p.key()] = p.value().sizes().vec();
  for (const auto& b : m->named_buffers(true)) model[b.key()] = b.value().sizes().vec();

  int exported = 0;
  for (const auto& s : export_tensor_specs(cfg)) {
    auto it = model.find(s.name);
    if (it == model.end()) {
      ADD_FAILURE() << "table has '" << s.name << "', the model does not";
      continue;
    }
    EXPECT_EQ(it->second, s.shape) << s.name;
    EXPECT_FALSE(export_only_key(s.name)) << s.name;
    model.erase(it);
    ++exported;
  }
  int tam = 0;
  for (const auto& [name, shape] : model) {
    EXPECT_TRUE(export_only_key(name)) << "model has '" << name << "', the table does not";
    tam += name.rfind("tam_model", 0) == 0;
  }
  EXPECT_GT(exported, 0);
  EXPECT_GT(tam, 0);  // TAM is on: its tensors exist and are export-only
}

TEST(ExportSpecs, MultiGateModelIsTheTable) { expect_model_is_table(config(GateType::multi, 8)); }
TEST(ExportSpecs, TaskCondGateModelIsTheTable) { expect_model_is_table(config(GateType::task_cond, 8)); }
TEST(ExportSpecs, SharedGateModelIsTheTable) { expect_model_is_table(config(GateType::shared, -1)); }
// A task-conditioned gate without a task embedding (--gate_task_specific_dim < 0): the router sees
// the token alone.
TEST(ExportSpecs, TaskCondWithoutEmbeddingIsTheTable) { expect_model_is_table(config(GateType::task_cond, -1)); }

TEST(ExportSpecs, RouterKeysAndRows) {
  const ModelConfig multi = config(GateType::multi, 8), cond = config(GateType::task_cond, 8);
  EXPECT_EQ(router_key(multi, 3, 2), "backbone.blocks.3.mlp.gate.2.w_gate");
  EXPECT_EQ(router_key(cond, 3, 2), "backbone.blocks.3.mlp.gate.w_gate");
  EXPECT_EQ(router_count(multi), 3);
  EXPECT_EQ(router_count(cond), 1);
  EXPECT_EQ(router_rows(multi), 32);
  EXPECT_EQ(router_rows(cond), 40);  // d + the task embedding's 8
}

}  // namespace
}  // namespace m3vit
