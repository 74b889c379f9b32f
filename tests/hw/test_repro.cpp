// The paper numbers the hardware model must reproduce, each within ±15% from one constant set per
// board (hw/cost/repro.h); the reordered MoE within 1% of the dense ViT-S. Cross-check rows (NYUD,
// energy, dense memory) are held to the same ±15%.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "hw/cost/hw_model.h"
#include "hw/cost/repro.h"

namespace m3vit::hw {
namespace {

std::map<std::string, ReproRow> rows() {
  static const std::map<std::string, ReproRow> m = [] {
    std::map<std::string, ReproRow> r;
    for (const auto& row : reproduce()) r[row.id] = row;
    return r;
  }();
  return m;
}

TEST(Repro, PaperModelsAreTheShippedConfigs) {
  // The hardware-relevant sizes of the papers' models, as read from configs/*.yaml.
  const ModelConfig p = m3vit_vits_pascal(), pd = m3vit_vits_pascal_dense();
  const ModelConfig n = m3vit_vits_nyud(), nd = m3vit_vits_nyud_dense(), e = edge_moe_vitt_cityscapes();
  for (const ModelConfig& c : {p, pd, n, nd}) {  // M³ViT's ViT-S (12 heads of 32, quirk Q1)
    EXPECT_EQ(c.embed_dim, 384) << c.name;
    EXPECT_EQ(c.depth, 12) << c.name;
    EXPECT_EQ(c.num_heads, 12) << c.name;
    EXPECT_EQ(c.mlp_hidden(), 1536) << c.name;
  }
  EXPECT_EQ(p.num_tokens(), 1025);  // 512x512
  EXPECT_EQ(n.num_tokens(), 1201);  // 480x640
  EXPECT_EQ(p.moe_blocks, odd_blocks(12));
  EXPECT_EQ(n.moe_blocks, odd_blocks(12));
  EXPECT_TRUE(pd.moe_blocks.empty());
  EXPECT_TRUE(nd.moe_blocks.empty());
  EXPECT_EQ(pd.num_tokens(), 1025);
  EXPECT_EQ(nd.num_tokens(), 1201);
  for (const ModelConfig& c : {p, n}) {  // 16 experts, top-4, expert hidden 384
    EXPECT_EQ(c.moe_experts, 16) << c.name;
    EXPECT_EQ(c.moe_top_k, 4) << c.name;
    EXPECT_EQ(c.moe_hidden(), 384) << c.name;
  }
  EXPECT_EQ(p.num_tasks(), 5);
  EXPECT_EQ(n.num_tasks(), 2);
  // Edge-MoE's ViT-T: 128x256 (129 tokens), 3 heads of 64, top-2 of 16, expert hidden 384.
  EXPECT_EQ(e.num_tokens(), 129);
  EXPECT_EQ(e.embed_dim, 192);
  EXPECT_EQ(e.num_heads, 3);
  EXPECT_EQ(e.moe_blocks, odd_blocks(12));
  EXPECT_EQ(e.moe_experts, 16);
  EXPECT_EQ(e.moe_top_k, 2);
  EXPECT_EQ(e.moe_hidden(), 384);
  EXPECT_EQ(e.num_tasks(), 2);
}

TEST(Repro, EveryTargetWithinFifteenPercent) {
  int targets = 0;
  for (const auto& [id, r] : rows()) {
    EXPECT_TRUE(std::isfinite(r.model)) << id;
    EXPECT_LE(std::fabs(r.rel_error()), 0.15) << id << ": paper " << r.paper << " " << r.unit << ", model " << r.model;
    targets += r.target;
  }
  EXPECT_EQ(targets, 9);
}

TEST(Repro, PaperRatios) {
  auto r = rows();
  // 2.40x memory, 9.23x cache vs reordered, 34.6 ms Edge-MoE: the numbers.
  EXPECT_NEAR(r.at("zcu104.memory_ratio").model, 2.40, 0.15 * 2.40);
  EXPECT_NEAR(r.at("zcu104.speedup_cache_to_reordered").model, 9.23, 0.15 * 9.23);
  EXPECT_NEAR(r.at("zcu104.memory_all_on_chip").model, 11.61, 0.15 * 11.61);
  EXPECT_NEAR(r.at("zcu104.memory_reordered").model, 4.84, 0.15 * 4.84);
  EXPECT_NEAR(r.at("zcu104.latency_cache").model, 637.478, 0.15 * 637.478);
  EXPECT_NEAR(r.at("zcu104.latency_reordered").model, 69.033, 0.15 * 69.033);
  EXPECT_NEAR(r.at("zcu102.latency_edge_moe").model, 34.64, 0.15 * 34.64);
  // The reordered MoE costs within 1% of the dense ViT-S (69.033 vs 68.931 ms in the paper).
  double ratio = r.at("zcu104.moe_over_dense").model;
  EXPECT_GE(ratio, 1.0);
  EXPECT_LE(ratio, 1.01);
}

TEST(Repro, OneConstantSetPerBoard) {
  // The rows are computed from the presets as they are: a changed constant changes the rows. Check
  // that a zcu104 constant matters (no hidden per-target override) by halving the DRAM rate.
  AccelConfig slow = accel_preset("zcu104");
  slow.dram_gbps /= 2;
  SyntheticTraceSpec s;
  s.images = 1;
  ExpertTrace t = synthetic_trace(m3vit_vits_pascal(), s);
  double base = evaluate(m3vit_vits_pascal(), accel_preset("zcu104"), MoeStrategy::cache, &t).latency_ms;
  double halved = evaluate(m3vit_vits_pascal(), slow, MoeStrategy::cache, &t).latency_ms;
  EXPECT_GT(halved, 1.8 * base - 70);  // the miss stalls (about 90% of the cache latency) double
}

}  // namespace
}  // namespace m3vit::hw
