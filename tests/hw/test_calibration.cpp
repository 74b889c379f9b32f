// The zcu104 preset's calibrated constants (hw/cost/calibration.h): every fit lands on the preset's
// value, every field the preset calls calibrated has a fit, and the fitted quantities match the
// paper's numbers worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "hw/cost/calibration.h"
#include "hw/cost/hw_model.h"
#include "hw/cost/repro.h"

namespace m3vit::hw {
namespace {

const std::vector<Calibration>& fits() {
  static const std::vector<Calibration> f = calibrate_zcu104(accel_preset("zcu104"), 1);
  return f;
}

TEST(Calibration, EveryFitLandsOnThePreset) {
  for (const Calibration& c : fits()) EXPECT_EQ(c.chosen, c.preset) << c.fields << " (fitted " << c.fitted << ")";
}

TEST(Calibration, CalibratedSourcesAreExactlyTheFits) {
  // A preset field whose source says "calibrated" must be set by a fit, and a fit must set a field
  // whose source says so: the preset file and the fits cannot drift apart.
  const AccelConfig z4 = accel_preset("zcu104");
  std::set<std::string> by_source, by_fit;
  for (const std::string& f : accel_field_names())
    if (field_kind(z4, f) == "calibrated") by_source.insert(f);
  for (const Calibration& c : fits()) by_fit.insert(c.fields);
  EXPECT_EQ(by_source, by_fit);
  // Edge-MoE's preset is fit on nothing: its row is a prediction.
  const AccelConfig z2 = accel_preset("zcu102");
  for (const std::string& f : accel_field_names()) EXPECT_NE(field_kind(z2, f), "calibrated") << f;
}

TEST(Calibration, MacRateByHand) {
  // ViT-S at 512x512: N = 1025 tokens, d = 384, 12 blocks. Per block the linears are
  // N·(4d² + 2·d·4d) = 1025 · 12 · 384² MACs, the attention matmuls 2·N²·d; the patch embedding
  // 1024 · 768 · 384. The hardware model counts the same MACs.
  const double N = 1025, d = 384;
  const double macs = 12 * (N * 12 * d * d + 2 * N * N * d) + 1024.0 * 768 * 384;
  EXPECT_NEAR(evaluate(m3vit_vits_pascal_dense(), accel_preset("zcu104"), MoeStrategy::reordered, nullptr).macs, macs,
              1e-6 * macs);
  const double rate = macs / (68.931e-3 * 300e6);  // 1,535 MAC/cycle
  for (const Calibration& c : fits()) {
    if (c.fields == "linear_in_lanes" || c.fields == "attn_queries") {
      EXPECT_NEAR(c.fitted, rate / 32, 1e-9) << c.fields;
    }
  }
}

TEST(Calibration, DramEfficiencyIsCappedAtThePeak) {
  // The cache's misses at DDR4-2400's peak already cost a little more than the paper's 637.478 ms, so
  // the fit asks for an efficiency just above 1 (a stream faster than the DRAM), which is capped.
  for (const Calibration& c : fits())
    if (c.fields == "dram_efficiency") {
      EXPECT_GT(c.fitted, 1.0);
      EXPECT_LT(c.fitted, 1.05);
      EXPECT_EQ(c.chosen, 1.0);
    }
}

TEST(Calibration, MemoryFitByHand) {
  // Reordered memory with W16 and three token buffers + three head buffers, by hand: two ping/pong
  // buffers of the largest layer (fc1 or fc2 of the dense MLP: 384·1536 weights + 1536 biases, 16 bit),
  // 3·1025·384 + 3·1025·32 activations and 48·1025 score entries (16 bit), the queues (1025·4 entries
  // of index + gate weight, 16 + 16 bit), one router (384·16 weights) and two LayerNorms (4·384).
  const double buffers = 2 * (384.0 * 1536 + 1536) * 2;
  const double acts = (3.0 * 1025 * 384 + 3.0 * 1025 * 32 + 48.0 * 1025) * 2;
  const double queues = 1025.0 * 4 * 4, router = 384.0 * 16 * 2, norms = 4.0 * 384 * 2;
  const double total = buffers + acts + queues + router + norms;
  const MemoryNeed m = memory_need(model_shape(m3vit_vits_pascal()), accel_preset("zcu104"), MoeStrategy::reordered, 0);
  EXPECT_NEAR(m.total(), total, 1e-6 * total);
  EXPECT_NEAR(total / (1024.0 * 1024.0), 4.84, 0.01 * 4.84);  // the paper's cell, within 1%
}

TEST(Calibration, FieldKinds) {
  AccelConfig a;
  a.sources["x"] = "calibrated on something";
  a.sources["y"] = "assumed: a choice";
  a.sources["z"] = "M3ViT paper §4.1: 300 MHz";
  a.sources["u"] = "unused when pipelined";
  a.sources["m"] = "measured: 16-bit activations";
  EXPECT_EQ(field_kind(a, "x"), "calibrated");
  EXPECT_EQ(field_kind(a, "y"), "assumed");
  EXPECT_EQ(field_kind(a, "z"), "fact");
  EXPECT_EQ(field_kind(a, "u"), "unused");
  EXPECT_EQ(field_kind(a, "m"), "measured");
  EXPECT_EQ(field_kind(a, "missing"), "unknown");
}

}  // namespace
}  // namespace m3vit::hw
