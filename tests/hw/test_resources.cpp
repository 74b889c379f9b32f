// FPGA resource estimate (hw/cost/resources.h). Every expected value is worked out here by hand from
// the vendor facts: DSP48E2 = one 27x18 signed multiplier (UG579), two 8-bit products with a common
// operand per DSP (WP487), RAMB18E2 = 18 Kbit in simple dual port as 512x36 ... 16Kx1, URAM288 =
// 4K x 72 (UG573), and the per-unit rules of docs/HW_MODEL.md "Resources".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "hw/cost/accel_config.h"
#include "hw/cost/cycle_model.h"
#include "hw/cost/hw_model.h"
#include "hw/cost/resources.h"

namespace m3vit::hw {
namespace {

// M³ViT's MoE ViT-S at 512x512 (paper §4.1; configs/pascal_vits_moe16.yaml): 32x32 patches of
// 16x16x3, d 384, 12 heads of 32, dense MLP 1,536, experts 384 wide, 16 experts, top-4, MoE in the
// odd blocks.
ModelShape vits_moe() {
  ModelShape s;
  s.patches = 1024;
  s.tokens = 1025;
  s.patch_in = 768;
  s.img_bytes = 3 * 512 * 512;
  s.grid_w = 32;
  s.d = 384;
  s.heads = 12;
  s.head_dim = 32;
  s.hidden = 1536;
  s.moe_hidden = 384;
  s.experts = 16;
  s.top_k = 4;
  s.depth = 12;
  for (int b = 0; b < 12; ++b) s.moe.push_back(b % 2 == 1);
  return s;
}

// Edge-MoE's ViT-T at 128x256 (sharc-lab/Edge-MoE model.hpp): 8x16 patches, d 192, 3 heads of 64,
// MLP 768, experts 384, 16 experts, top-2.
ModelShape edge_moe_vitt() {
  ModelShape s;
  s.patches = 128;
  s.tokens = 129;
  s.patch_in = 768;
  s.img_bytes = 3 * 128 * 256;
  s.grid_w = 16;
  s.d = 192;
  s.heads = 3;
  s.head_dim = 64;
  s.hidden = 768;
  s.moe_hidden = 384;
  s.experts = 16;
  s.top_k = 2;
  s.depth = 12;
  for (int b = 0; b < 12; ++b) s.moe.push_back(b % 2 == 1);
  return s;
}

const ResourceRow& row(const ResourceEstimate& r, const std::string& unit) {
  for (const auto& u : r.rows)
    if (u.unit == unit) return u;
  throw std::runtime_error("no row " + unit);
}

TEST(Resources, DspPerProductFromThe27x18Multiplier) {
  // 16x16: both operands fit a port (27 and 18 bits) → one multiplier.
  EXPECT_EQ(dsp_per_product(16, 16), 1);
  EXPECT_EQ(dsp_per_product(27, 18), 1);
  EXPECT_EQ(dsp_per_product(18, 27), 1);
  // 32x16: the 16-bit operand fits the 18-bit port, the 32-bit one does not fit even the 27-bit port:
  // low 26 unsigned bits + a 6-bit signed top → two multipliers.
  EXPECT_EQ(dsp_per_product(32, 16), 2);
  EXPECT_EQ(dsp_per_product(16, 32), 2);
  // 32x32: two pieces on each side → 2 x 2 partial products.
  EXPECT_EQ(dsp_per_product(32, 32), 4);
  // 24x24: 24 fits the 27-bit port, on the 18-bit port it needs 17 + a 7-bit top → 2.
  EXPECT_EQ(dsp_per_product(24, 24), 2);
  // INT8 packing (WP487): 6 products sharing one operand → 3 DSPs; at 9 bits no packing.
  EXPECT_EQ(dsps_for_products(1, 6, 8, 8), 3);
  EXPECT_EQ(dsps_for_products(1, 5, 8, 8), 3);
  EXPECT_EQ(dsps_for_products(1, 6, 9, 8), 6);
  EXPECT_EQ(dsps_for_products(48, 32, 8, 8), 48 * 16);
}

TEST(Resources, BoardResourcesOfThePresets) {
  // XCZU7EV: 1,728 DSP48E2, 312 BRAM36 = 624 BRAM18, 96 URAM, 230,400 LUTs; XCZU9EG: 2,520 DSP,
  // 912 BRAM36 = 1,824 BRAM18, no URAM, 274,080 LUTs (Zynq UltraScale+ product selection guide).
  const AccelConfig z4 = accel_preset("zcu104"), z2 = accel_preset("zcu102");
  EXPECT_EQ(z4.dsp_slices, 1728);
  EXPECT_EQ(z4.bram18_blocks, 2 * 312);
  EXPECT_EQ(z4.uram_blocks, 96);
  EXPECT_EQ(z4.lut_count, 230400);
  EXPECT_TRUE(z4.shared_mac_array);
  EXPECT_EQ(z2.dsp_slices, 2520);
  EXPECT_EQ(z2.bram18_blocks, 2 * 912);
  EXPECT_EQ(z2.uram_blocks, 0);
  EXPECT_EQ(z2.lut_count, 274080);
  EXPECT_FALSE(z2.shared_mac_array);
  // The block counts agree with the capacities already in the presets: 312 x 36 Kbit = 10.97 Mbit
  // (bram_mbit 11), 96 x 288 Kbit = 27 Mbit, 912 x 36 Kbit = 32.06 Mbit (bram_mbit 32.1).
  EXPECT_NEAR(z4.bram18_blocks * 18.0 / 1024, z4.bram_mbit, 0.05);
  EXPECT_NEAR(z4.uram_blocks * 288.0 / 1024, z4.uram_mbit, 0.05);
  EXPECT_NEAR(z2.bram18_blocks * 18.0 / 1024, z2.bram_mbit, 0.05);
}

TEST(Resources, Zcu104AtA16) {
  const AccelConfig a = accel_preset("zcu104");
  const ResourceEstimate r = estimate_resources(vits_moe(), a, MoeStrategy::reordered, -1);
  // The 48 x 32 array of 16x16-bit MACs: one DSP each.
  EXPECT_EQ(row(r, "linear array").dsp, 48 * 32);
  // Attention (48 queries x 32 lanes of 16x16) runs on that array: no DSPs of its own.
  EXPECT_EQ(row(r, "attention").dsp, 0);
  // Softmax: 48 lanes x (exp + rescale) + one reciprocal (2 multipliers) for the one head at a time.
  EXPECT_EQ(row(r, "softmax").dsp, 48 * 2 + 2);
  // LayerNorm: 64 lanes x 3 multipliers = 192 fit on the array; 5 per-token multipliers of its own.
  EXPECT_EQ(row(r, "layernorm").dsp, 5);
  EXPECT_EQ(row(r, "gelu").dsp, 32);             // fused on the 32 output lanes
  EXPECT_EQ(row(r, "router").dsp, 2 + 4 * 4);     // logits (32 x 16 = 512) on the array; softmax + top-4
  EXPECT_EQ(row(r, "expert output scaling").dsp, 32);
  const int64_t dsp = 1536 + 98 + 5 + 32 + 18 + 32;  // 1,721
  EXPECT_EQ(r.total.dsp, dsp);
  EXPECT_TRUE(r.dsp.fits());
  EXPECT_EQ(r.dsp.short_by(), 0);
  // The ping/pong rows hold the 1,536 weights of 16 bit the array reads per cycle: 24,576 bit. The
  // largest streamed layer is fc1/fc2 of the dense MLP, 384 x 1,536 weights + 1,536 biases, twice:
  // 2 x (589,824 + 1,536) x 16 = 18,923,520 bit → ⌈18,923,520 / 24,576⌉ = 770 rows. As 512x36:
  // ⌈24,576/36⌉ = 683 columns x ⌈770/512⌉ = 2 = 1,366 BRAM18 (1Kx18: 1,366 x 1, the same; 2Kx9:
  // 2,731). 1,366 > 624: the buffers cannot be split finely enough on the XCZU7EV's block RAM.
  EXPECT_EQ(row(r, "weight buffers (ping/pong)").bram18, 1366);
  EXPECT_EQ(row(r, "weight buffers (ping/pong)").uram, 0);  // 770 rows < 2,048: not URAM
  EXPECT_FALSE(r.bram18.fits());
  EXPECT_GE(r.bram18.short_by(), 1366 - 624);
  // Three token buffers of 1,025 x 384 values, rows of max(48, 32, 64) = 64 values x 16 bit = 1,024
  // bit: 1,025 x 384 / 64 = 6,150 rows ≥ 2,048 → URAM: ⌈1,024/72⌉ = 15 x ⌈6,150/4,096⌉ = 2 = 30 each.
  const ResourceRow& act = row(r, "activations (on chip)");
  EXPECT_NE(act.partition.find("token buffers: 3 banks x 6,150 rows x 1,024 bit → 30 URAM (4Kx72) each"),
            std::string::npos)
      << act.partition;
  EXPECT_GE(act.uram, 90);
  EXPECT_FALSE(r.fits());
}

TEST(Resources, Zcu104AtA32DoesNotFit) {
  AccelConfig a = accel_preset("zcu104");
  a.act_bits = 32;
  const ResourceEstimate r = estimate_resources(vits_moe(), a, MoeStrategy::reordered, -1);
  // 32x16-bit MACs: two DSP48E2 each → 3,072, 1,344 more than the board's 1,728.
  EXPECT_EQ(row(r, "linear array").dsp, 2 * 48 * 32);
  EXPECT_EQ(row(r, "linear array").dsp - a.dsp_slices, 1344);
  // The shared array must also form the attention's 32x32 products: 48 x 32 x 4 = 6,144 DSPs, 3,072
  // more than the linear unit needs.
  EXPECT_EQ(row(r, "attention").dsp, 48 * 32 * 4 - 2 * 48 * 32);
  // Softmax 48 x 2 x 4 + 2 x 4 = 392; LayerNorm 5 x 4 (its 64 x (4+4+2) = 640 on the array);
  // GELU 32 x 4; router (2 + 16) x 4 (its 32 x 16 x 2 = 1,024 logit DSPs on the array); scaling 32 x 4.
  const int64_t dsp = 3072 + 3072 + 392 + 20 + 128 + 72 + 128;  // 6,884
  EXPECT_EQ(r.total.dsp, dsp);
  EXPECT_FALSE(r.dsp.fits());
  EXPECT_EQ(r.dsp.short_by(), dsp - 1728);
  // The activations double (memory_need counts them at act_bits), so the bytes exceed BRAM + URAM.
  EXPECT_FALSE(r.memory_fits());
  const std::string summary = fit_summary(r);
  EXPECT_NE(summary.find("zcu104 at W16/A32"), std::string::npos) << summary;
  EXPECT_NE(summary.find("not fitting by 5,156 DSP48E2"), std::string::npos) << summary;
  EXPECT_NE(summary.find("MiB of on-chip memory"), std::string::npos) << summary;
}

TEST(Resources, Zcu102IsEdgeMoe) {
  const AccelConfig a = accel_preset("zcu102");
  const ResourceEstimate r = estimate_resources(edge_moe_vitt(), a, MoeStrategy::reordered, -1);
  // 16 x 16 MACs of ap_fixed<16,2> weights x ap_fixed<32,10> activations: two DSPs each.
  EXPECT_EQ(row(r, "linear array").dsp, 16 * 16 * 2);
  // Own attention units (attention.cpp): Q·Kᵀ and A·V, each 4 queries x 8 lanes of 32x32 (4 DSPs);
  // the 1/√d scale per query; A·V's exp and 1/sum per query and head (4 x 3 x 2).
  EXPECT_EQ(row(r, "attention").dsp, 2 * 4 * 8 * 4 + 4 * 4 + 4 * 3 * 2 * 4);
  // Softmax: 1 pair x 3 heads x (exp + rescale) + 3 reciprocals x 2, all 32x32.
  EXPECT_EQ(row(r, "softmax").dsp, 3 * 2 * 4 + 3 * 2 * 4);
  // LayerNorm: 8 lanes x (x² and ·1/σ at 32x32, ·γ at 32x16) + 5 per-token multipliers at 32x32.
  EXPECT_EQ(row(r, "layernorm").dsp, 8 * (4 + 4 + 2) + 5 * 4);
  // Router (moe.cpp): 8 features x 16 experts of 32x16, + (2 + 4 x 2) x 4.
  EXPECT_EQ(row(r, "router").dsp, 8 * 16 * 2 + 10 * 4);
  const int64_t dsp = 512 + 368 + 48 + 100 + 16 * 4 + 296 + 16 * 4;  // 1,452
  EXPECT_EQ(r.total.dsp, dsp);
  EXPECT_TRUE(r.dsp.fits());
  // Ping/pong: the largest streamed layer is the dense MLP, 192 x 768 weights + 768 biases, twice:
  // 2 x 148,224 x 16 = 4,743,168 bit in rows of 16 x 16 x 16 = 4,096 bit → 1,158 rows; 512x36:
  // ⌈4,096/36⌉ = 114 x ⌈1,158/512⌉ = 3 = 342 BRAM18 (1Kx18: 228 x 2 = 456). No URAM on the board.
  EXPECT_EQ(row(r, "weight buffers (ping/pong)").bram18, 342);
  EXPECT_EQ(r.total.uram, 0);
  EXPECT_TRUE(r.uram.fits());
}

TEST(Resources, BufferMappingByHand) {
  // A 4 x 4 array of 16-bit weights reads 4 x 4 x 16 = 256 bit per cycle. 266,240 bit (two buffers of
  // 64 x 128 weights + 128 biases at 16 bit) → 1,040 rows of 256 bit.
  const double bits = 2 * (64.0 * 128 + 128) * 16;
  BufferMap m = map_buffer("ping+pong", bits, 1, 256, false);
  EXPECT_EQ(m.depth, 1040);
  EXPECT_EQ(m.kind, MemKind::bram18);
  // 512x36: ⌈256/36⌉ = 8 x ⌈1,040/512⌉ = 3 = 24; 1Kx18: 15 x 2 = 30; 2Kx9: 29 x 1 = 29; 4Kx4: 64.
  EXPECT_EQ(m.bram18, 24);
  EXPECT_EQ(m.shape, "512x36");
  // 1,040 rows are too shallow for URAM even on a board with URAM.
  EXPECT_EQ(map_buffer("ping+pong", bits, 1, 256, true).kind, MemKind::bram18);
  // Three banks of 4,112 rows x 64 bit: URAM ⌈64/72⌉ = 1 x ⌈4,112/4,096⌉ = 2 = 2 per bank, 6 in all;
  // without URAM, 512x36: 2 x 9 = 18 per bank (1Kx18: 4 x 5 = 20), 54.
  const double act = 3.0 * 4112 * 64;
  BufferMap u = map_buffer("tokens", act, 3, 64, true);
  EXPECT_EQ(u.kind, MemKind::uram);
  EXPECT_EQ(u.uram, 6);
  EXPECT_EQ(u.bram18, 0);
  BufferMap b = map_buffer("tokens", act, 3, 64, false);
  EXPECT_EQ(b.kind, MemKind::bram18);
  EXPECT_EQ(b.bram18, 54);
  // 4 banks of 6 rows x 1,024 bit: distributed RAM, 1,024 LUTs per bank (64 x 1 bit per LUT).
  BufferMap l = map_buffer("gamma/beta", 4.0 * 6 * 1024, 4, 1024, true);
  EXPECT_EQ(l.kind, MemKind::lutram);
  EXPECT_EQ(l.lut, 4 * 1024);
  EXPECT_EQ(l.bram18 + l.uram, 0);
}

TEST(Resources, PingPongOfASmallDesign) {
  // The same 4 x 4 array in a whole estimate: a dense model whose largest layer is 64 x 128.
  ModelShape s;
  s.patches = 16;
  s.tokens = 17;
  s.patch_in = 48;  // 3 x 4 x 4
  s.grid_w = 4;
  s.d = 64;
  s.heads = 2;
  s.head_dim = 32;
  s.hidden = 128;
  s.moe_hidden = 64;
  s.depth = 2;
  s.moe = {false, false};
  AccelConfig a;
  a.linear_in_lanes = a.linear_out_lanes = 4;
  a.weight_bits = 16;
  a.bias_bits = 16;
  a.dsp_slices = 100;
  a.bram18_blocks = 20;  // fewer than the 24 the ping/pong needs
  a.uram_blocks = 0;
  a.lut_count = 100000;
  const ResourceEstimate r = estimate_resources(s, a, MoeStrategy::reordered, -1);
  EXPECT_EQ(row(r, "weight buffers (ping/pong)").bram18, 24);
  EXPECT_NE(row(r, "weight buffers (ping/pong)").partition.find("1 bank x 1,040 rows x 256 bit"), std::string::npos);
  EXPECT_FALSE(r.bram18.fits());
  // No MoE layer: no router, queue or scaling rows.
  for (const auto& u : r.rows) EXPECT_TRUE(u.unit != "router" && u.unit != "moe queues") << u.unit;
}

TEST(Resources, TotalsAreTheSumOfTheRows) {
  for (const char* preset : {"zcu104", "zcu102"})
    for (MoeStrategy st : all_strategies()) {
      const AccelConfig a = accel_preset(preset);
      const ResourceEstimate r = estimate_resources(vits_moe(), a, st, st == MoeStrategy::cache ? 8 : -1);
      int64_t dsp = 0, bram = 0, uram = 0, lut = 0;
      for (const auto& u : r.rows) {
        dsp += u.dsp;
        bram += u.bram18;
        uram += u.uram;
        lut += u.lut;
      }
      EXPECT_EQ(r.total.dsp, dsp);
      EXPECT_EQ(r.total.bram18, bram);
      EXPECT_EQ(r.total.uram, uram);
      EXPECT_EQ(r.total.lut, lut);
      EXPECT_EQ(r.dsp.need, dsp);
      EXPECT_EQ(r.dsp.have, a.dsp_slices);
      EXPECT_EQ(r.bram18.have, a.bram18_blocks);
      EXPECT_DOUBLE_EQ(r.memory_bytes, memory_need(vits_moe(), a, st, r.cache_slots).total());
    }
}

TEST(Resources, AllExpertsOnChipGoToUram) {
  // all_on_chip on the zcu104: 16 experts of 2 x (384 x 384 + 384) x 16 bit = 4,730,880 bit each,
  // 75,694,080 bit, minus the 18,923,520 bit of ping/pong already there = 56,770,560 bit, in rows of
  // 24,576 bit: 2,310 rows ≥ 2,048 → URAM: ⌈24,576/72⌉ = 342 x ⌈2,310/4,096⌉ = 1 = 342 > 96.
  const ResourceEstimate r = estimate_resources(vits_moe(), accel_preset("zcu104"), MoeStrategy::all_on_chip, -1);
  EXPECT_EQ(row(r, "expert store").uram, 342);
  EXPECT_EQ(row(r, "expert store").bram18, 0);
  EXPECT_FALSE(r.uram.fits());
}

TEST(Resources, UnknownBoardChecksOnlyBytes) {
  AccelConfig a;  // no device given
  const ResourceEstimate r = estimate_resources(vits_moe(), a, MoeStrategy::reordered, -1);
  EXPECT_FALSE(r.board_known);
  EXPECT_TRUE(r.fits());  // capacity 0: nothing to check against
  EXPECT_NE(fit_summary(r).find("no device resources given"), std::string::npos) << fit_summary(r);
}

TEST(Resources, TableAndJson) {
  AccelConfig a = accel_preset("zcu104");
  a.act_bits = 32;
  const ResourceEstimate r = estimate_resources(vits_moe(), a, MoeStrategy::reordered, -1);
  const std::string md = format_resources_table(r);
  EXPECT_NE(md.find("| unit | DSP48E2 | BRAM18 | URAM | LUT (rough) | partition | note |"), std::string::npos);
  EXPECT_NE(md.find("| **total** | **6,884** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| short by | 5,156 |"), std::string::npos) << md;
  const auto j = nlohmann::json::parse(resources_to_json(r));
  EXPECT_EQ(j["units"].size(), r.rows.size());
  EXPECT_EQ(j["total"]["dsp"].get<int64_t>(), 6884);
  EXPECT_EQ(j["short_by"]["dsp"].get<int64_t>(), 6884 - 1728);
  EXPECT_EQ(j["act_bits"].get<int>(), 32);
  EXPECT_FALSE(j["fits"].get<bool>());
  EXPECT_FALSE(j["memory_fits"].get<bool>());
}

}  // namespace
}  // namespace m3vit::hw
