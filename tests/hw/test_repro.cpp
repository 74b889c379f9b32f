// The paper numbers the hardware model reproduces (hw/cost/repro.h) from one constant set per board:
// every row within ±5%, the reordered MoE within 1% of the dense ViT-S, fitted rows exactly the cells
// the calibration uses (hw/cost/calibration.h) and the rest predictions or derived.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "common/errors.h"
#include "hw/cost/calibration.h"
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

TEST(Repro, EveryRowWithinFivePercent) {
  // Fitted rows agree by construction (their fit is in hw/cost/calibration.h); predictions and derived
  // rows landed within 4.0% when the calibration was separated out, so their band is that error
  // rounded up to the next whole percent (docs/HW_MODEL.md, "Calibration").
  for (const auto& [id, r] : rows()) {
    EXPECT_TRUE(std::isfinite(r.model)) << id;
    EXPECT_LE(std::fabs(r.rel_error()), 0.05) << id << " (" << r.role << "): paper " << r.paper << " " << r.unit
                                              << ", model " << r.model;
  }
}

TEST(Repro, RolesSeparateFitsFromPredictions) {
  // The fitted rows are exactly the cells the calibration uses; everything of the NYUD column and
  // Edge-MoE's latency are predictions (fit on PASCAL, predicted with no refit).
  std::set<std::string> fitted, cells;
  for (const auto& c : calibration_cells()) cells.insert(c);
  for (const auto& [id, r] : rows()) {
    if (r.role == "fitted") {
      fitted.insert(id);
      EXPECT_FALSE(r.fit.empty()) << id;
    } else {
      EXPECT_TRUE(r.fit.empty()) << id;
    }
  }
  EXPECT_EQ(fitted, cells);
  for (const char* id : {"zcu104.nyud_latency_dense", "zcu104.nyud_latency_reordered", "zcu104.nyud_latency_cache",
                         "zcu102.latency_edge_moe", "zcu104.latency_reordered", "zcu104.memory_dense"})
    EXPECT_EQ(rows().at(id).role, "prediction") << id;
  for (const auto& [id, r] : rows()) {
    if (r.unit == "x" || r.unit == "J") {
      EXPECT_EQ(r.role, "derived") << id;
    }
  }

  // The summary covers the six predictions and nothing else: recompute it by hand.
  std::vector<ReproRow> all;
  for (const auto& [id, r] : rows()) all.push_back(r);
  const PredictionError e = prediction_error(all);
  EXPECT_EQ(e.rows, 6);
  double sum = 0, worst = 0;
  for (const char* id : {"zcu104.nyud_latency_dense", "zcu104.nyud_latency_reordered", "zcu104.nyud_latency_cache",
                         "zcu102.latency_edge_moe", "zcu104.latency_reordered", "zcu104.memory_dense"}) {
    sum += std::fabs(rows().at(id).rel_error());
    worst = std::max(worst, std::fabs(rows().at(id).rel_error()));
  }
  EXPECT_NEAR(e.mean_abs, sum / 6, 1e-12);
  EXPECT_DOUBLE_EQ(e.max_abs, worst);
}

TEST(Repro, PaperRatios) {
  auto r = rows();
  // 2.40x memory, 9.23x cache vs reordered, 34.6 ms Edge-MoE: the paper's headline numbers.
  EXPECT_NEAR(r.at("zcu104.memory_ratio").model, 2.40, 0.05 * 2.40);
  EXPECT_NEAR(r.at("zcu104.speedup_cache_to_reordered").model, 9.23, 0.05 * 9.23);
  EXPECT_NEAR(r.at("zcu102.latency_edge_moe").model, 34.64, 0.05 * 34.64);
  // The reordered MoE costs within 1% of the dense ViT-S (69.033 vs 68.931 ms in the paper).
  double ratio = r.at("zcu104.moe_over_dense").model;
  EXPECT_GE(ratio, 1.0);
  EXPECT_LE(ratio, 1.01);
  // Published numbers, one copy: the derived rows are the ratios of the cells.
  EXPECT_DOUBLE_EQ(r.at("zcu104.memory_ratio").paper, 11.610 / 4.840);
  EXPECT_DOUBLE_EQ(r.at("zcu104.speedup_cache_to_reordered").paper, 637.478 / 69.033);
  EXPECT_DOUBLE_EQ(paper_number("zcu102.latency_edge_moe"), 34.64);
  EXPECT_THROW(paper_number("zcu104.no_such_cell"), ConfigError);
}

TEST(Repro, EachPresetLoadedOnceDrivesEveryRow) {
  // The presets are read once and passed in; the rows from them equal the default rows exactly, and
  // every row moves when its own board's constants move (no row has a hidden constant of its own).
  const AccelConfig z4 = load_accel_config("zcu104"), z2 = load_accel_config("zcu102");
  const std::vector<ReproRow> once = reproduce(z4, z2, 1);
  const std::vector<ReproRow> defaults = reproduce(1);
  ASSERT_EQ(once.size(), defaults.size());
  for (size_t i = 0; i < once.size(); ++i) {
    EXPECT_EQ(once[i].id, defaults[i].id);
    EXPECT_EQ(once[i].model, defaults[i].model) << once[i].id;
  }
  // Two changes per board: a slower clock (every latency, energy and speed-up) and narrower weights
  // (every memory and the ratios of memories).
  AccelConfig z4_clock = z4, z2_clock = z2, z4_bits = z4, z2_bits = z2;
  z4_clock.clock_mhz = z2_clock.clock_mhz = 150;
  z4_bits.weight_bits = z2_bits.weight_bits = 8;
  const std::vector<ReproRow> by_clock = reproduce(z4_clock, z2_clock, 1), by_bits = reproduce(z4_bits, z2_bits, 1);
  for (size_t i = 0; i < once.size(); ++i)
    EXPECT_TRUE(by_clock[i].model != once[i].model || by_bits[i].model != once[i].model) << once[i].id;
}

TEST(Repro, EdgeMoeWithAndWithoutOverlap) {
  // The preset serialises loads; overlapping them can only hide waiting, never add compute: the
  // overlapped frame is shorter by at most the serialised frame's waiting time, and the shares add up.
  const auto cases = edge_moe_overlap_cases(accel_preset("zcu102"), 1);
  ASSERT_EQ(cases.size(), 2u);
  const OverlapCase& serial = cases[0];
  const OverlapCase& overlap = cases[1];
  EXPECT_FALSE(serial.overlap);
  EXPECT_TRUE(overlap.overlap);
  EXPECT_LT(overlap.latency_ms, serial.latency_ms);
  EXPECT_GE(overlap.latency_ms, serial.latency_ms * (1 - serial.weight_wait_share) - 1e-9);
  EXPECT_LT(overlap.weight_wait_share, serial.weight_wait_share);
  for (const OverlapCase& c : cases) {
    EXPECT_NEAR(c.attention_share + c.linear_share + c.weight_wait_share + c.other_share, 1.0, 1e-12);
    EXPECT_GT(c.other_share, 0);
  }
  // The serialised design is the preset's own result.
  SyntheticTraceSpec one;
  one.images = 1;
  one.seed = 1;
  const ExpertTrace t = synthetic_trace(edge_moe_vitt_cityscapes(), one);
  EXPECT_DOUBLE_EQ(serial.latency_ms,
                   evaluate(edge_moe_vitt_cityscapes(), accel_preset("zcu102"), MoeStrategy::reordered, &t).latency_ms);
}

}  // namespace
}  // namespace m3vit::hw
