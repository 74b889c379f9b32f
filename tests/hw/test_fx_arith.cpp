// The two orders of operations of the fixed-point encoder (FxArith, hw/fx/fx_encoder.h): ours and
// Edge-MoE's (sharc-lab/Edge-MoE at 984b23b). Each difference has a case whose expected value is
// computed here by hand or by integer arithmetic written from Edge-MoE's lines (raw units of
// fm_t = ap_fixed<32,10>, 22 fraction bits), and the whole encoder in edge_moe order stays as close
// to fp32 as ours.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "hw/fx/fx_check.h"
#include "hw/fx/fx_encoder.h"
#include "tests/hw/fx_test_model.h"

namespace m3vit::hw {
namespace {

constexpr int F = 22;
constexpr double kUlp = 1.0 / (1 << F);
double real(int64_t raw) { return std::ldexp(static_cast<double>(raw), -F); }
int64_t floor_shift(__int128 v, int n) { return static_cast<int64_t>(v >> n); }  // arithmetic: floor
uint64_t isqrt(uint64_t n) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(n)));
  while (r * r > n) --r;
  while ((r + 1) * (r + 1) <= n) ++r;
  return r;
}

// LayerNorm statistics in raw integers. Ours: one running sum, var = floor(msq - mean² + eps) with
// a guard, 1/sqrt(var) truncated once. Edge-MoE (src/layernorm.cpp:85-118): sums per 8 features,
// mean² floored first, sqrt floored, then the quotient floored; no guard.
struct LnRaw {
  int64_t mean, var, rstd;
};
LnRaw ln_oracle(const std::vector<int64_t>& x, int64_t eps, bool edge) {
  const int d = static_cast<int>(x.size());
  const int64_t inv_d = (int64_t{1} << F) / d;
  int64_t mean = 0, msq = 0;
  for (int64_t v : x) {
    int64_t term = floor_shift(static_cast<__int128>(v) * inv_d, F);
    mean += term;
    msq += floor_shift(static_cast<__int128>(v) * term, F);
  }
  LnRaw r{mean, 0, 0};
  if (!edge) {
    r.var = floor_shift((static_cast<__int128>(msq) << F) - static_cast<__int128>(mean) * mean + (static_cast<__int128>(eps) << F), F);
    if (r.var <= 0) r.var = eps;
    r.rstd = static_cast<int64_t>(std::floor(std::ldexp(1.0 / std::sqrt(real(r.var)), F)));
  } else {
    r.var = msq - floor_shift(static_cast<__int128>(mean) * mean, F) + eps;
    if (r.var <= 0) return r;  // no square root of it (rstd left 0)
    const uint64_t sd = isqrt(static_cast<uint64_t>(r.var) << F);  // floor(sqrt(var) · 2^F)
    r.rstd = static_cast<int64_t>((static_cast<unsigned __int128>(1) << (2 * F)) / sd);
  }
  return r;
}

std::vector<double> reals(const std::vector<int64_t>& raw) {
  std::vector<double> v;
  for (int64_t r : raw) v.push_back(real(r));
  return v;
}

TEST(FxArith, LayerNormDoubleTruncationChangesTheLastBit) {
  // By hand: a row [x, -x] with x² = 2 has var = 2 (eps = 0). Ours: floor(2^22 / sqrt 2) =
  // floor(2965820.995) = 2965820. Edge-MoE: sqrt(2) floored to 5931641 / 2^22, then
  // floor(2^44 / 5931641) = 2965821: truncating the root first makes the reciprocal one ulp larger.
  // x = sqrt(2) is not representable, so this is checked on the stated formula.
  EXPECT_EQ(static_cast<int64_t>(std::floor(std::ldexp(1.0 / std::sqrt(2.0), F))), 2965820);
  EXPECT_EQ(isqrt(uint64_t{2} << (2 * F)), 5931641u);
  EXPECT_EQ((static_cast<unsigned __int128>(1) << 44) / 5931641, 2965821u);

  // A row of 16 values where mean and var agree in both orders and only the double truncation of
  // 1/sqrt(var) differs: rstd 2358937 (ours) against 2358938 (Edge-MoE).
  const std::vector<int64_t> row = {-7448090, -11869776, -11563421, -298182, -5403282, 10231699, 9297111, 6409580,
                                    5492059,  3395568,   1868058,   9895956, 7974746,  10506675, 7204691, -1516260};
  const double eps = 1e-6;
  const int64_t eps_raw = static_cast<int64_t>(std::floor(eps * (1 << F)));
  LnRaw ours = ln_oracle(row, eps_raw, false), edge = ln_oracle(row, eps_raw, true);
  ASSERT_EQ(ours.var, edge.var);
  EXPECT_EQ(ours.rstd, 2358937);
  EXPECT_EQ(edge.rstd, 2358938);
  auto got_ours = fx_layernorm_stats<Ovf::wrap>(reals(row), eps, FxArith::ours);
  auto got_edge = fx_layernorm_stats<Ovf::wrap>(reals(row), eps, FxArith::edge_moe);
  EXPECT_EQ(got_ours.first, real(ours.mean));
  EXPECT_EQ(got_edge.first, real(edge.mean));
  EXPECT_EQ(got_ours.second, real(ours.rstd));
  EXPECT_EQ(got_edge.second, real(edge.rstd));
}

TEST(FxArith, LayerNormMeanSquareTruncatedFirst) {
  // Edge-MoE floors mean² to fm_t before subtracting it (src/layernorm.cpp:116), so its variance
  // is one ulp larger whenever mean² is off the grid; here that moves rstd by one ulp too.
  const std::vector<int64_t> row = {-1097117, 9342052, -3812545, 4069474, -10702434, -9071781, -5093478, 11548563,
                                    -8327829, 4640212, 10598001, -8015620, 8063022,  -352389,  -2411098, 12119004};
  std::mt19937_64 rng(5);
  int differing_var = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int64_t> r = row;
    std::uniform_int_distribution<int64_t> u(-3 << F, 3 << F);
    if (trial > 0)
      for (auto& v : r) v = u(rng);
    LnRaw ours = ln_oracle(r, 4, false), edge = ln_oracle(r, 4, true);
    auto got_ours = fx_layernorm_stats<Ovf::wrap>(reals(r), 1e-6, FxArith::ours);
    auto got_edge = fx_layernorm_stats<Ovf::wrap>(reals(r), 1e-6, FxArith::edge_moe);
    ASSERT_EQ(got_ours.second, real(ours.rstd)) << "trial " << trial;
    ASSERT_EQ(got_edge.second, real(edge.rstd)) << "trial " << trial;
    ASSERT_GE(edge.var, ours.var);  // flooring the subtrahend can only raise the difference
    ASSERT_LE(edge.var, ours.var + 1);
    differing_var += edge.var != ours.var;
  }
  EXPECT_GT(differing_var, 50) << "mean² is off the grid for most rows";
}

TEST(FxArith, LayerNormWithoutGuard) {
  // A constant row of 192 values 36926 / 2^22: the one-pass E[x²] - E[x]² truncates to -132 ulps.
  // With eps = 1e-5 (41 ulps) ours guards var <= 0 by using eps: rstd = 1/sqrt(41 · 2^-22) =
  // 319.84. Edge-MoE has no guard (src/layernorm.cpp:117-118): var = -91 ulps, hls::sqrt of it is
  // 0 here, and the division by zero counts as an overflow.
  const std::vector<int64_t> row(192, 36926);
  ASSERT_EQ(ln_oracle(row, 41, false).var, 41);  // ours: guarded
  ASSERT_EQ(ln_oracle(row, 41, true).var, -91);  // Edge-MoE: not
  fx_reset_overflows();
  auto got_ours = fx_layernorm_stats<Ovf::wrap>(reals(row), 1e-5, FxArith::ours);
  EXPECT_EQ(fx_overflow_count(), 0u);
  EXPECT_NEAR(got_ours.second, 1.0 / std::sqrt(41 * kUlp), 2 * kUlp);
  EXPECT_NEAR(got_ours.second, 319.84, 0.01);
  fx_reset_overflows();
  auto got_edge = fx_layernorm_stats<Ovf::saturate>(reals(row), 1e-5, FxArith::edge_moe);
  EXPECT_EQ(fx_overflow_count(), 2u);  // the division by zero, and its result assigned to fm_t
  EXPECT_EQ(got_edge.second, 512 - kUlp);  // the largest quotient, saturated into fm_t
}

TEST(FxArith, AttentionScaleOnEachEightFeaturePartialSum) {
  // hd = 16: two 8-feature blocks, scale 1/sqrt(16) = 0.25 exactly. q0·k0 = q8·k8 = 3 ulps.
  // Ours: floor(6 · 0.25) = 1 ulp. Edge-MoE (src/attention.cpp:99-105): floor(3 · 0.25) twice = 0.
  std::vector<double> q(16, 0.0), k(16, 0.0);
  q[0] = q[8] = 3 * std::ldexp(1.0, -11);
  k[0] = k[8] = std::ldexp(1.0, -11);
  EXPECT_EQ(fx_attention_score<Ovf::wrap>(q, k, FxArith::ours), kUlp);
  EXPECT_EQ(fx_attention_score<Ovf::wrap>(q, k, FxArith::edge_moe), 0.0);
  // Parts -3 and +3 ulps: ours floor(0) = 0, Edge-MoE floor(-0.75) + floor(0.75) = -1 ulp.
  q[0] = -q[0];
  EXPECT_EQ(fx_attention_score<Ovf::wrap>(q, k, FxArith::ours), 0.0);
  EXPECT_EQ(fx_attention_score<Ovf::wrap>(q, k, FxArith::edge_moe), -kUlp);

  // Random rows of hd = 24 (three blocks, scale floor(2^22/sqrt 24)) against the integer formulas.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> u(-(1 << F), 1 << F);
  const int hd = 24;
  const int64_t scale = static_cast<int64_t>(std::floor(std::ldexp(1.0 / std::sqrt(24.0), F)));
  int differ = 0;
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<int64_t> qr(hd), kr(hd);
    for (auto& v : qr) v = u(rng);
    for (auto& v : kr) v = u(rng);
    int64_t dot = 0, edge = 0;
    for (int b = 0; b < hd; b += 8) {
      int64_t part = 0;
      for (int j = b; j < b + 8; ++j) part += floor_shift(static_cast<__int128>(qr[j]) * kr[j], F);
      dot += part;
      edge += floor_shift(static_cast<__int128>(part) * scale, F);
    }
    const int64_t ours = floor_shift(static_cast<__int128>(dot) * scale, F);
    ASSERT_EQ(fx_attention_score<Ovf::wrap>(reals(qr), reals(kr), FxArith::ours), real(ours)) << trial;
    ASSERT_EQ(fx_attention_score<Ovf::wrap>(reals(qr), reals(kr), FxArith::edge_moe), real(edge)) << trial;
    // Three floors instead of one: Edge-MoE's score is 0, 1 or 2 ulps below ours, never above.
    ASSERT_LE(edge, ours);
    ASSERT_GE(edge, ours - 2);
    differ += edge != ours;
  }
  EXPECT_GT(differ, 30);
}

TEST(FxArith, ProductWrappedBeforeTheSum) {
  // acc = 0 + (-300)(0.5) + (300)(1.9375): the second product, 581.25, leaves fm_t's [-512, 512).
  // Ours adds it exactly: 431.25. Edge-MoE assigns it to fm_t first (src/linear.cpp:492-494):
  // saturated to 512 - 2^-22, then -150 + that = 362 - 2^-22. With wrap-around the two agree
  // (modular arithmetic): 581.25 wraps to -442.75, and -150 - 442.75 = -592.75 wraps back to 431.25.
  using fs = ap_fx<32, 10, true, Ovf::saturate>;
  using ws = ap_fx<16, 2, true, Ovf::saturate>;
  const fs x[2] = {fs(-300.0), fs(300.0)};
  const ws w[2] = {ws(0.5), ws(1.9375)};
  EXPECT_EQ(fx_dot(fs(), x, w, 2).to_double(), 431.25);
  fx_reset_overflows();
  EXPECT_EQ(fx_dot<true>(fs(), x, w, 2).to_double(), 362.0 - kUlp);
  EXPECT_EQ(fx_overflow_count(), 1u);
  using fw = ap_fx<32, 10>;
  using ww = ap_fx<16, 2>;
  const fw xw[2] = {fw(-300.0), fw(300.0)};
  const ww wr[2] = {ww(0.5), ww(1.9375)};
  EXPECT_EQ(fx_dot(fw(), xw, wr, 2).to_double(), 431.25);
  fx_reset_overflows();
  EXPECT_EQ(fx_dot<true>(fw(), xw, wr, 2).to_double(), 431.25);
  EXPECT_EQ(fx_overflow_count(), 2u);  // the product wraps, and the sum wraps back
}

TEST(FxArith, EdgeMoeOrderStaysCloseToFp32) {
  // Same bounds as FxEncoder.MatchesFp32ReferenceAtAuthorsInit: the order of operations moves
  // results by a few ulps, far below the format's error against fp32.
  EncoderWeights w = random_encoder_weights(fx_test::tiny_fx_model(), 3);
  auto imgs = random_images(2, 32, 48, 9);
  FxCheckOptions o;
  o.progress = false;
  FxCheckResult ours = fx_check(w, imgs, o);
  o.arith = FxArith::edge_moe;
  FxCheckResult edge = fx_check(w, imgs, o);
  EXPECT_EQ(edge.arith, "edge_moe");
  EXPECT_LT(edge.mse, 1e-4);
  EXPECT_LT(edge.max_abs, 0.05);
  EXPECT_EQ(edge.total_overflows(), 0u);
  EXPECT_GE(edge.routing_agreement, 0.9);
  EXPECT_LT(std::fabs(edge.mse - ours.mse), 0.1 * ours.mse) << "the order changes only the last bits";
  // ... but it does change them.
  const FxWeights<Ovf::wrap> fw = convert_weights<Ovf::wrap>(w, 0);
  std::vector<float> a = fx_encoder(fw, imgs[0].data(), nullptr, FxArith::ours);
  std::vector<float> b = fx_encoder(fw, imgs[0].data(), nullptr, FxArith::edge_moe);
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 1e-3);
}

}  // namespace
}  // namespace m3vit::hw
