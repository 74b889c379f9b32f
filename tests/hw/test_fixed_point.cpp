// ap_fx (hw/fx/fixed_point.h) against hand-computed values: truncation toward minus infinity,
// wrap-around and saturation, exact products and sums, and fx_dot against the step-by-step loop.
#include <gtest/gtest.h>

#include <random>

#include "hw/fx/fixed_point.h"

namespace m3vit::hw {
namespace {

using q8_4 = ap_fx<8, 4>;                        // range [-8, 7.9375], step 1/16
using q8_4s = ap_fx<8, 4, true, Ovf::saturate>;
using fm_t = ap_fx<32, 10>;                      // Edge-MoE activations
using wt_t = ap_fx<16, 2>;                       // Edge-MoE weights

TEST(FixedPoint, TruncatesTowardMinusInfinity) {
  EXPECT_EQ(q8_4(1.30).raw(), 20);  // floor(20.8)
  EXPECT_DOUBLE_EQ(q8_4(1.30).to_double(), 1.25);
  EXPECT_EQ(q8_4(-1.30).raw(), -21);  // floor(-20.8), not -20
  EXPECT_DOUBLE_EQ(q8_4(-1.30).to_double(), -1.3125);
  EXPECT_EQ(q8_4(0.0624).raw(), 0);
  EXPECT_EQ(q8_4(-0.0001).raw(), -1);
  // Edge-MoE's LayerNorm pre-scale 1/192 as fm_t: floor(2^22 / 192) = 21845.
  EXPECT_EQ(fm_t(1.0 / 192).raw(), 21845);
  // Narrowing conversion truncates too: 0.75 + 2^-22 as <16,2> (14 fraction bits) -> 0.75.
  fm_t x = fm_t::from_raw((3 << 20) + 1);
  EXPECT_EQ(wt_t(x).raw(), 3 << 12);
  EXPECT_EQ(wt_t(fm_t::from_raw(-(3 << 20) - 1)).raw(), -(3 << 12) - 1);
}

TEST(FixedPoint, WrapsAroundAndCounts) {
  fx_reset_overflows();
  EXPECT_EQ(q8_4(7.9375).raw(), 127);
  EXPECT_EQ(fx_overflow_count(), 0u);
  EXPECT_DOUBLE_EQ(q8_4(8.0).to_double(), -8.0);   // raw 128 -> -128
  EXPECT_DOUBLE_EQ(q8_4(9.5).to_double(), -6.5);   // raw 152 -> 152 - 256 = -104
  EXPECT_DOUBLE_EQ(q8_4(-8.5).to_double(), 7.5);   // raw -136 -> 120
  EXPECT_EQ(fx_overflow_count(), 3u);
  // Unsigned pixels: ap_ufixed<8,0> holds [0, 255/256]; 1.0 wraps to 0.
  using pix = ap_ufx<8, 0>;
  EXPECT_EQ(pix(0.999).raw(), 255);
  EXPECT_EQ(pix(1.0).raw(), 0);
  EXPECT_EQ(fx_overflow_count(), 4u);
  // A sum that leaves the range wraps when assigned back.
  q8_4 a(7.0), b(2.0);
  a += b;
  EXPECT_DOUBLE_EQ(a.to_double(), -7.0);  // 9 - 16
  EXPECT_EQ(fx_overflow_count(), 5u);
}

TEST(FixedPoint, SaturatesAndCounts) {
  fx_reset_overflows();
  EXPECT_DOUBLE_EQ(q8_4s(9.5).to_double(), 7.9375);
  EXPECT_DOUBLE_EQ(q8_4s(-20.0).to_double(), -8.0);
  EXPECT_DOUBLE_EQ(q8_4s(-1.30).to_double(), -1.3125);  // in range: truncation only
  EXPECT_EQ(fx_overflow_count(), 2u);
  q8_4s a(7.0);
  a += q8_4s(2.0);
  EXPECT_DOUBLE_EQ(a.to_double(), 7.9375);
}

TEST(FixedPoint, ProductsAndSumsAreExact) {
  wt_t w(1.5);
  fm_t x(-3.25);
  auto p = w * x;
  static_assert(decltype(p)::width == 48 && decltype(p)::iwidth == 12, "ap_fixed product type");
  EXPECT_DOUBLE_EQ(p.to_double(), -4.875);
  auto s = fm_t(511.5) + fm_t(1.0);  // 512.5 does not fit fm_t but fits the sum type
  EXPECT_DOUBLE_EQ(s.to_double(), 512.5);
  EXPECT_DOUBLE_EQ(fm_t(s).to_double(), -511.5);  // wraps on assignment: 512.5 - 1024
  // acc += x*w floors the product onto acc's grid: a negative product below the resolution
  // becomes -2^-22, a positive one 0.
  fm_t acc(0.0);
  acc += fm_t::from_raw(1) * wt_t::from_raw(-1);  // -2^-36
  EXPECT_EQ(acc.raw(), -1);
  fm_t acc2(0.0);
  acc2 += fm_t::from_raw(1) * wt_t::from_raw(1);  // +2^-36
  EXPECT_EQ(acc2.raw(), 0);
  EXPECT_TRUE(fm_t(1.0) > wt_t(0.5));
  EXPECT_TRUE(wt_t(-0.5) < fm_t(-0.25));
  EXPECT_TRUE(fm_t(0.5) == wt_t(0.5));
}

template <class Acc, class A, class B>
Acc stepwise(Acc acc, const std::vector<A>& a, const std::vector<B>& b) {
  for (size_t i = 0; i < a.size(); ++i) acc += a[i] * b[i];
  return acc;
}

TEST(FixedPoint, DotMatchesStepByStepIncludingOverflow) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> ux(-8, 8), uw(-2, 2);
  for (double scale : {1.0, 100.0}) {  // 100: partial sums leave fm_t's range [-512, 512)
    std::vector<fm_t> a(384);
    std::vector<wt_t> b(384);
    for (auto& v : a) v = fm_t(ux(rng) * scale / 8);  // |a| <= 1 or <= 100
    for (auto& v : b) v = wt_t(uw(rng) * 0.99);
    fx_reset_overflows();
    fm_t ref = stepwise(fm_t(0.25), a, b);
    uint64_t n_ref = fx_overflow_count();
    fx_reset_overflows();
    fm_t got = fx_dot(fm_t(0.25), a.data(), b.data(), 384);
    EXPECT_EQ(got.raw(), ref.raw());
    EXPECT_EQ(fx_overflow_count(), n_ref);
    if (scale > 1) {
      EXPECT_GT(n_ref, 0u);
    }

    using fs = ap_fx<32, 10, true, Ovf::saturate>;
    using ws = ap_fx<16, 2, true, Ovf::saturate>;
    std::vector<fs> as(a.begin(), a.end());
    std::vector<ws> bs(b.begin(), b.end());
    fx_reset_overflows();
    fs ref_s = stepwise(fs(0.25), as, bs);
    uint64_t n_ref_s = fx_overflow_count();
    fx_reset_overflows();
    fs got_s = fx_dot(fs(0.25), as.data(), bs.data(), 384);
    EXPECT_EQ(got_s.raw(), ref_s.raw());
    EXPECT_EQ(fx_overflow_count(), n_ref_s);
  }
}

}  // namespace
}  // namespace m3vit::hw
