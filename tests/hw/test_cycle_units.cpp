// Unit cycle counts against the loop trip counts of Edge-MoE's HLS code for its own model
// (ViT-T, 129 tokens, d = 192; src/linear.cpp, moe.cpp, attention.cpp), worked out by hand in the comments.
#include <gtest/gtest.h>

#include "hw/cost/cycle_model.h"
#include "hw/cost/repro.h"

namespace m3vit::hw {
namespace {

TEST(CycleUnits, StaggeredStepsIncludeTheWrapAround) {
  // ⌈(129 + 3) / 4⌉ = 33 groups of 129 keys (the last group starts at query 128 < 129).
  EXPECT_EQ(staggered_steps(129, 4), 33 * 129);
  // 1,025 tokens, p = 4: 1,028 / 4 = 257 groups exactly.
  EXPECT_EQ(staggered_steps(1025, 4), 257 * 1025);
  // 1,025 tokens, p = 48: 23 groups; the last starts at 1,056 >= 1,025 and only finishes the
  // wrapped rows: (1025 + 47) mod 48 = 16 keys.
  EXPECT_EQ(staggered_steps(1025, 48), 22 * 1025 + 16);
  EXPECT_EQ(staggered_steps(5, 1), 5 * 5);
}

TEST(CycleUnits, EdgeMoeLoopCounts) {
  const AccelConfig a = accel_preset("zcu102");
  const ModelShape s = model_shape(edge_moe_vitt_cityscapes());
  const double lat = 64;  // m_axi latency per call
  // Q: 129 tokens x (192/16) x (192/16) = 18,576 MAC cycles; streams 129·192·4 B / 16 B = 6,192.
  UnitCost q = linear_cost(a, s.tokens, s.d, s.d, false, "q");
  EXPECT_DOUBLE_EQ(q.compute, 18576 + lat);
  // Its weights: 192·192·2 B + 192·2 B = 74,112 B at 16 B/cycle = 4,632 cycles.
  EXPECT_DOUBLE_EQ(q.load, 74112.0 / 16 + lat);
  // fc1: 129 x 12 x 48 = 74,304.
  EXPECT_DOUBLE_EQ(linear_cost(a, s.tokens, s.d, s.hidden, false, "fc1").compute, 74304 + lat);
  // An expert layer on 16 tokens: 16 x 12 x 24 = 4,608 MAC cycles; its load 384·192·2 B + 384·2 B.
  UnitCost e = linear_cost(a, 16, s.d, s.moe_hidden, false, "fc1");
  EXPECT_DOUBLE_EQ(e.compute, 4608 + lat);
  EXPECT_DOUBLE_EQ(e.load, (147456.0 + 768) / 16 + lat);
  // Q·Kᵀ: 33 x 129 = 4,257 key steps x 24 cycles = 102,168 MAC cycles (the max stream depth of the
  // co-simulation log in sharc-lab/Edge-MoE issue #5), but each step reads a 768 B key through a 16 B/cycle port:
  // 4,257 x 48 = 204,336 cycles.
  UnitCost qk = attention_qk_cost(a, s);
  EXPECT_DOUBLE_EQ(qk.compute, 204336 + lat);
  EXPECT_DOUBLE_EQ(qk.macs, 129.0 * 129 * 192);
  EXPECT_DOUBLE_EQ(attention_av_cost(a, s).compute, 204336 + lat);
  // LayerNorm: per token (statistics 48 + output 48, port-bound) + 94 fixed = 190; x 129 tokens.
  EXPECT_DOUBLE_EQ(layernorm_cost(a, s, "ln").compute, 129 * 190 + lat);
  // Residual add: 129 x max(192/8, 192·4/16) = 129 x 48.
  EXPECT_DOUBLE_EQ(add_cost(a, s, "add").compute, 129 * 48 + lat);
  // Router per token: logits max(24, 48) + softmax 16 x 3 + top-k 16 + 40 = 152; zeroing the output
  // 129·192·4 / 16 = 6,192; two calls.
  EXPECT_DOUBLE_EQ(gating_cost(a, s).compute, 129 * 152 + 6192 + 2 * lat);
  // Patch embedding: 128 patches x (768/16) x (192/16) = 73,728 (conv.cpp: 8 rows x 3 channels x
  // 16 lines x 8 column blocks x 24 feature blocks, the same number) + the class token 24.
  EXPECT_DOUBLE_EQ(patch_embed_cost(a, s).compute, 73728 + lat + 24);
  EXPECT_DOUBLE_EQ(patch_embed_cost(a, s).load, 0);  // cached on chip at start-up
  EXPECT_DOUBLE_EQ(gelu_cost(a, s.tokens, s.hidden).compute, 0);  // fused
}

TEST(CycleUnits, Zcu104RunsAtTheCalibratedRate) {
  const AccelConfig a = accel_preset("zcu104");
  const ModelShape s = model_shape(m3vit_vits_pascal());
  // fc1 of ViT-S: 1,025 x (384/48) x (1536/32) = 393,600 cycles = 604.6 M MACs / 1,536.
  EXPECT_DOUBLE_EQ(linear_cost(a, s.tokens, s.d, s.hidden, false, "fc1").compute, 393600);
  // Q·Kᵀ: 12 heads x (22 x 1,025 + 16) key steps x 1 cycle.
  EXPECT_DOUBLE_EQ(attention_qk_cost(a, s).compute, 12.0 * (22 * 1025 + 16));
  // One expert from DDR4-2400: 591,360 B / 64 B per cycle + 64.
  EXPECT_DOUBLE_EQ(load_cycles(a, expert_bytes(a, s)), 591360.0 / 64 + 64);
}

TEST(Timeline, SerialWithoutOverlap) {
  Timeline tl(false);
  EXPECT_DOUBLE_EQ(tl.weighted(10, 100), 10);
  tl.plain(50);
  EXPECT_DOUBLE_EQ(tl.weighted(10, 100), 10);
  EXPECT_DOUBLE_EQ(tl.now(), 270);
  EXPECT_DOUBLE_EQ(tl.demand_load(5), 5);
  EXPECT_DOUBLE_EQ(tl.now(), 275);
}

TEST(Timeline, PingPongHidesLoadsBehindCompute) {
  Timeline tl(true);
  EXPECT_DOUBLE_EQ(tl.weighted(10, 100), 10);   // nothing to hide the first load behind
  EXPECT_DOUBLE_EQ(tl.weighted(10, 100), 0);    // loaded into pong during the first compute
  EXPECT_DOUBLE_EQ(tl.weighted(150, 100), 50);  // ping free at 110: load 110-260, needed at 210
  EXPECT_DOUBLE_EQ(tl.now(), 360);
  // A side load that could start long ago is ready; one that may only start now stalls.
  EXPECT_DOUBLE_EQ(tl.side_load(50, 0), 0);
  EXPECT_DOUBLE_EQ(tl.side_load(50, tl.now()), 50);
}

}  // namespace
}  // namespace m3vit::hw
