// The fixed-point encoder's nonlinear pieces against exact math: GELU by table interpolation
// (177 points, step 1/32) against erf-GELU, and the single-pass softmax against the two-pass one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "hw/fx/fx_encoder.h"
#include "hw/fx/ref_encoder.h"

namespace m3vit::hw {
namespace {

using fm_t = FxTypes<Ovf::wrap>::fm_t;

TEST(FxGelu, TableInterpolationWithinOneTenThousandth) {
  double worst = 0, worst_x = 0;
  for (int i = -8 * 1024; i <= 8 * 1024; ++i) {
    fm_t x = fm_t(i / 1024.0);
    double got = fx_gelu<Ovf::wrap>(x).to_double();
    double want = gelu_exact(x.to_double());
    double e = std::fabs(got - want);
    if (e > worst) worst = e, worst_x = x.to_double();
  }
  // Linear interpolation of delta(a) = a·Φ(-a) with step h = 1/32 errs by at most h²/8·max|delta''|
  // = 9.74e-5 (delta'' = φ(a)(a² - 2) peaks at 2φ(0) = 0.80 at a = 0); truncation adds a few 2^-22.
  EXPECT_LT(worst, 1.0e-4) << "at x = " << worst_x;
  EXPECT_GT(worst, 2e-5) << "an interpolated table cannot be this exact: is the table used?";
  // Exact points and the ReLU tails.
  EXPECT_EQ(fx_gelu<Ovf::wrap>(fm_t(0.0)).raw(), 0);
  EXPECT_DOUBLE_EQ(fx_gelu<Ovf::wrap>(fm_t(6.0)).to_double(), 6.0);
  EXPECT_DOUBLE_EQ(fx_gelu<Ovf::wrap>(fm_t(-6.0)).to_double(), 0.0);
  EXPECT_NEAR(fx_gelu<Ovf::wrap>(fm_t(1.0)).to_double(), 0.8413447460685429, 3e-6);   // a table point
  EXPECT_NEAR(fx_gelu<Ovf::wrap>(fm_t(-1.0)).to_double(), -0.1586552539314571, 3e-6);
}

std::vector<double> two_pass(const std::vector<double>& s) {
  double mx = -1e300, sum = 0;
  for (double v : s) mx = std::max(mx, v);
  std::vector<double> p(s.size());
  for (size_t i = 0; i < s.size(); ++i) sum += p[i] = std::exp(s[i] - mx);
  for (auto& v : p) v /= sum;
  return p;
}

TEST(FxSoftmax, SinglePassMatchesTwoPass) {
  std::mt19937 rng(11);
  std::normal_distribution<double> nd(0, 3);
  for (int n : {1, 2, 16, 129, 1025}) {
    std::vector<double> s(n);
    for (auto& v : s) v = nd(rng);
    // Rising scores force a rescale of the running sum at every step.
    std::vector<double> rising(n);
    for (int i = 0; i < n; ++i) rising[i] = -4 + 8.0 * i / n;
    for (const auto& scores : {s, rising}) {
      std::vector<double> got = fx_single_pass_softmax<Ovf::wrap>(scores), want = two_pass(scores);
      double worst = 0, total = 0;
      for (int i = 0; i < n; ++i) {
        worst = std::max(worst, std::fabs(got[i] - want[i]));
        total += got[i];
      }
      // Each probability carries a few truncations of 2^-22 and the rescales' rounding (1e-5 relative).
      EXPECT_LT(worst, 2e-5) << "n = " << n;
      // Truncation only rounds down: exp(s - max) and the product with 1/sum each lose < 2^-22, so
      // the probabilities sum to at most 1 (+ the rescales' rounding) and at least 1 - 2n·2^-22.
      EXPECT_LE(total, 1.0 + 1e-5) << "n = " << n;
      EXPECT_GE(total, 1.0 - 2 * n * std::ldexp(1.0, -22) - 1e-5) << "n = " << n;
    }
  }
}

}  // namespace
}  // namespace m3vit::hw
