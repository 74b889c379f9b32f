// Energy = board power x latency + DRAM bytes x access energy (hw/cost/hw_model.h; docs/HW_MODEL.md
// "Energy"). The expected values are recomputed here from each result's own latency and bytes and the
// presets' constants: 10 W (M3ViT Table 4), 14.54 W (UbiMoE Table II), 160 pJ/B (Horowitz, ISSCC
// 2014: 20-40 pJ/bit, low end).
#include <gtest/gtest.h>

#include "hw/cost/accel_config.h"
#include "hw/cost/expert_trace.h"
#include "hw/cost/hw_model.h"
#include "hw/cost/repro.h"

namespace m3vit::hw {
namespace {

TEST(Energy, BoardPowerPlusDramBytes) {
  for (const char* board : {"zcu104", "zcu102"}) {
    const AccelConfig a = accel_preset(board);
    EXPECT_EQ(a.dram_pj_per_byte, 160);
    const ModelConfig cfg = std::string(board) == "zcu104" ? m3vit_vits_pascal() : edge_moe_vitt_cityscapes();
    SyntheticTraceSpec s;
    s.images = 1;
    const ExpertTrace t = synthetic_trace(cfg, s);
    for (MoeStrategy st : all_strategies()) {
      const HwResult r = evaluate(cfg, a, st, &t, -1);
      EXPECT_NEAR(r.energy_board_j, r.latency_ms * 1e-3 * a.power_w, 1e-12) << board << " " << to_string(st);
      EXPECT_NEAR(r.energy_dram_j, r.dram_bytes * 160e-12, 1e-12) << board << " " << to_string(st);
      EXPECT_DOUBLE_EQ(r.energy_j, r.energy_board_j + r.energy_dram_j);
    }
  }
}

TEST(Energy, CacheTrafficShowsInEnergy) {
  // The expert cache moves about 127x the reordered design's bytes on ViT-S: with the DRAM term its
  // energy ratio exceeds the latency ratio (11.3x against 9.06x, HARDWARE.md section 2).
  const AccelConfig a = accel_preset("zcu104");
  const ModelConfig cfg = m3vit_vits_pascal();
  SyntheticTraceSpec s;
  const ExpertTrace t = synthetic_trace(cfg, s);
  const HwResult cache = evaluate(cfg, a, MoeStrategy::cache, &t, -1);
  const HwResult reo = evaluate(cfg, a, MoeStrategy::reordered, &t, -1);
  EXPECT_GT(cache.dram_bytes / reo.dram_bytes, 100.0);
  const double latency_ratio = cache.latency_ms / reo.latency_ms;
  EXPECT_DOUBLE_EQ(cache.energy_board_j / reo.energy_board_j, latency_ratio);
  EXPECT_GT(cache.energy_j / reo.energy_j, 1.2 * latency_ratio);
}

}  // namespace
}  // namespace m3vit::hw
