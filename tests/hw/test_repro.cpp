// The paper numbers the hardware model must reproduce, each within ±15% from one constant set per
// board (hw/repro.h); the reordered MoE within 1% of the dense ViT-S. Cross-check rows (NYUD,
// energy, dense memory) are held to the same ±15%.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "hw/hw_model.h"
#include "hw/repro.h"

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
  AccelConfig slow = preset_zcu104();
  slow.dram_gbps /= 2;
  SyntheticTraceSpec s;
  s.images = 1;
  ExpertTrace t = synthetic_trace(m3vit_vits_pascal(), s);
  double base = evaluate(m3vit_vits_pascal(), preset_zcu104(), MoeStrategy::cache, &t).latency_ms;
  double halved = evaluate(m3vit_vits_pascal(), slow, MoeStrategy::cache, &t).latency_ms;
  EXPECT_GT(halved, 1.8 * base - 70);  // the miss stalls (about 90% of the cache latency) double
}

}  // namespace
}  // namespace m3vit::hw
