// The analytic parameter counter (core/flops.cpp) against the libtorch model: for each gate type
// and TAM setting, the numel of MultiTaskModel's named_parameters(), grouped by key, must equal the
// counter's per-module counts exactly (buffers such as BatchNorm statistics are not parameters).
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>

#include "core/config.h"
#include "core/flops.h"
#include "model/multitask_model.h"

using namespace m3vit;

namespace {

struct Groups {
  int64_t patch_embed = 0, tokens = 0, attention = 0, dense_mlp = 0, experts = 0, routers = 0, task_embedding = 0,
          tam = 0, total = 0;
  std::map<std::string, int64_t> heads;
};

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Groups group_model(const ModelConfig& cfg) {
  torch::manual_seed(0);
  MultiTaskModel m(cfg);
  Groups g;
  for (const auto& kv : m->named_parameters()) {
    const std::string& k = kv.key();
    const int64_t n = kv.value().numel();
    g.total += n;
    if (k.rfind("backbone.patch_embed.", 0) == 0) g.patch_embed += n;
    else if (k == "backbone.cls_token" || k == "backbone.pos_embed") g.tokens += n;
    else if (k.rfind("backbone.gate_task_represent.", 0) == 0) g.task_embedding += n;
    else if (has(k, ".mlp.experts.")) g.experts += n;
    else if (has(k, ".mlp.gate")) g.routers += n;
    else if (has(k, ".mlp.fc1.") || has(k, ".mlp.fc2.")) g.dense_mlp += n;
    else if (k.rfind("backbone.blocks.", 0) == 0) g.attention += n;
    else if (k.rfind("decoders.", 0) == 0) g.heads[k.substr(9, k.find('.', 9) - 9)] += n;
    else if (k.rfind("tam_model", 0) == 0) g.tam += n;
    else ADD_FAILURE() << "parameter " << k << " belongs to no group";
  }
  return g;
}

void expect_counts_match(const ModelConfig& cfg) {
  SCOPED_TRACE(cfg.name + std::string(" gate ") + to_string(cfg.gate) + (cfg.tam ? " tam" : ""));
  const ParamCount p = count_flops(cfg).params;
  const Groups g = group_model(cfg);
  EXPECT_EQ(p.patch_embed, g.patch_embed);
  EXPECT_EQ(p.tokens, g.tokens);
  EXPECT_EQ(p.attention, g.attention);
  EXPECT_EQ(p.dense_mlp, g.dense_mlp);
  EXPECT_EQ(p.experts, g.experts);
  EXPECT_EQ(p.routers, g.routers);
  EXPECT_EQ(p.task_embedding, g.task_embedding);
  for (int t = 0; t < cfg.num_tasks(); ++t) EXPECT_EQ(p.heads[t], g.heads.at(cfg.tasks[t].name)) << cfg.tasks[t].name;
  EXPECT_EQ(p.tam, g.tam);
  EXPECT_EQ(p.total(), g.total);
}

}  // namespace

TEST(FlopsParams, CounterMatchesTheModelForEveryGate) {
  ModelConfig cfg = load_config(M3VIT_SOURCE_DIR "/configs/tiny_test.yaml");  // TAM levels 1, 2
  for (GateType gate : {GateType::multi, GateType::shared, GateType::task_cond}) {
    cfg.gate = gate;
    expect_counts_match(cfg);
  }
  cfg.task_emb_dim = -1;  // task_cond without a task embedding: a d-wide shared router
  expect_counts_match(cfg);
  ModelConfig dense = dense_baseline(cfg);
  dense.tam = false;
  expect_counts_match(dense);
}

TEST(FlopsParams, CounterMatchesTheDemoModel) {
  expect_counts_match(load_config(M3VIT_SOURCE_DIR "/configs/tiny_synthetic.yaml"));
}

TEST(FlopsParams, CounterMatchesThePaperModel) {
  // 104 M parameters (43.46 M backbone, 5 heads, 2 TAM levels): the docs/FLOPS.md sizes at full scale.
  expect_counts_match(load_config(M3VIT_SOURCE_DIR "/configs/pascal_vits_moe16.yaml"));
}
