// The bf16 Winograd F(2×2, 3×3) and F(4×4, 3×3) head convs (runtime/ops/winograd.h) against a double-precision 3×3
// conv written out here, and against the bf16 direct conv's own rounding error.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/ops/bf16.h"
#include "runtime/ops/conv.h"
#include "runtime/workspace.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

struct Shape {
  int cin, cout, in_h, w, pad_top, pad_bottom;
  bool relu;
  int out_h() const { return in_h + pad_top + pad_bottom - 2; }
};

// Inputs are ReLU outputs upsampled (non-negative) in the head; weights are He-scaled.
std::vector<float> rand_blocked(int c, int h, int w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> v(blocked_floats(c, h, w));
  for (auto& x : v) x = u(rng);
  return v;
}
std::vector<float> rand_weights(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, std::sqrt(2.f / (9.f * s.cin)));
  std::vector<float> v(static_cast<size_t>(s.cout) * s.cin * 9);
  for (auto& x : v) x = n(rng);
  return v;
}

// y = conv3×3(x) + b (ReLU), padding 1 left/right and pad_top/pad_bottom rows, in double, reading
// and writing the blocked layout nChw16c directly.
std::vector<float> conv_ref_blocked(const Shape& s, const std::vector<float>& x, const std::vector<float>& w,
                                    const std::vector<float>& b) {
  const int OH = s.out_h(), W = s.w;
  auto at = [&](int c, int y, int xx) { return x[((static_cast<size_t>(c / 16) * s.in_h + y) * W + xx) * 16 + c % 16]; };
  std::vector<float> y(blocked_floats(s.cout, OH, W), 0.f);
  for (int o = 0; o < s.cout; ++o)
    for (int oy = 0; oy < OH; ++oy)
      for (int ox = 0; ox < W; ++ox) {
        double acc = b[o];
        for (int i = 0; i < s.cin; ++i)
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = oy + ky - s.pad_top, ix = ox + kx - 1;
              if (iy >= 0 && iy < s.in_h && ix >= 0 && ix < W)
                acc += static_cast<double>(at(i, iy, ix)) * w[((static_cast<size_t>(o) * s.cin + i) * 3 + ky) * 3 + kx];
            }
        y[((static_cast<size_t>(o / 16) * OH + oy) * W + ox) * 16 + o % 16] =
            static_cast<float>(s.relu ? std::max(acc, 0.0) : acc);
      }
  return y;
}

// bf16 inputs rounded to 8 mantissa bits: a K-term dot product of non-negative inputs is off by
// ~2^-9·|y| (measured ~3e-3 of max|y| for the direct conv). F(2×2)'s transforms only add and
// subtract, then round V once: measured 1.1-1.4× the direct conv's error. F(4×4)'s transforms scale
// by up to 8 before and after the rounding: measured 5.0-5.8× (~1.5e-2 of max|y|).
// Bounds, relative to max|y|: F(2×2) at most 1e-2 and 2× the bf16 direct conv's error on the same
// data; F(4×4) at most 3e-2 and 8×; both above 1e-5 (the bf16 path really ran). A wrong
// coefficient, tap, sign or tile offset is off by O(1).
void check_against_double(int tile) {
  DnnlContext ctx;
  Workspace pad;
  pad.reserve(64 << 20);
  // Outputs in whole tiles of both sizes (12×12 is 3×3 tiles of 4 and 6×6 of 2).
  const Shape shapes[] = {
      {32, 32, 12, 12, 1, 1, true},    // a whole map with zero rows above and below (conv_0)
      {16, 48, 6, 8, 0, 0, false},     // a band carrying its halo (conv_1..3), no ReLU
      {32, 16, 38, 36, 0, 0, true},    // 36×36: 324 (F2) or 81 (F4) tiles, several chunks, the last partial
      {48, 32, 10, 16, 1, 1, false},   // 3 input channel blocks, 2 output blocks; F4: 10 rows fall back
  };
  // Threads take whole chunks of tiles (1: one thread does all; 3: uneven shares and idle threads).
  const int saved_threads = omp_get_max_threads();
  for (const int threads : {1, 2, 3}) {
  omp_set_num_threads(threads);
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    const std::string tag = std::to_string(s.cin) + "->" + std::to_string(s.cout) + " " + std::to_string(s.out_h()) +
                            "x" + std::to_string(s.w) + ", " + std::to_string(threads) + " threads";
    const auto x = rand_blocked(s.cin, s.in_h, s.w, seed++);
    const auto w = rand_weights(s, seed++);
    std::vector<float> b(s.cout);
    for (int o = 0; o < s.cout; ++o) b[o] = 0.01f * static_cast<float>(o % 7) - 0.03f;
    const auto want = conv_ref_blocked(s, x, w, b);

    ConvPlan wino(ctx, 3, s.cin, s.cout, s.in_h, s.w, s.pad_top, s.pad_bottom, s.relu, Precision::bf16, true,
                  /*input_nonneg=*/false, tile);
    ASSERT_TRUE(wino.winograd()) << tag;
    // F(4×4) where the output is in whole 4×4 tiles, else F(2×2).
    const int used = (s.out_h() % tile == 0 && s.w % tile == 0) ? tile : 2;
    ASSERT_EQ(wino.winograd_tile(), used) << tag;
    ASSERT_EQ(wino.src_type(), dnnl::memory::data_type::f32) << tag << ": the transform reads fp32";
    ASSERT_LE(wino.scratchpad_bytes(), pad.bytes());
    std::vector<float> y(want.size(), -1.f);
    const PackedConv pw = wino.pack(w.data(), b.data());
    wino.run(x.data(), pw, y.data(), pad.base());
    const auto rw = rt_test::compare("bf16 winograd " + tag, y.data(), want.data(), want.size());
    // Into rows [1, 1 + out_h) of a bf16 map (the head's conv_3 band for a bf16 conv_4): y rounded to
    // bf16, bit for bit, and row 0 untouched.
    ASSERT_TRUE(wino.writes_bf16_maps());
    const int oh = s.out_h(), rows = oh + 1;
    std::vector<uint16_t> map(static_cast<size_t>((s.cout + 15) / 16) * rows * s.w * 16, 0xABCD);
    wino.run_into_map(x.data(), pw, map.data(), rows, 1, pad.base());
    size_t wrong = 0;
    for (int cb = 0; cb < (s.cout + 15) / 16; ++cb)
      for (int r = 0; r < rows; ++r)
        for (int i = 0; i < s.w * 16; ++i) {
          const uint16_t got = map[(static_cast<size_t>(cb) * rows + r) * s.w * 16 + i];
          wrong += r == 0 ? got != 0xABCD : got != f32_to_bf16(y[(static_cast<size_t>(cb) * oh + r - 1) * s.w * 16 + i]);
        }
    EXPECT_EQ(wrong, 0u) << tag << ": the bf16 map differs from the fp32 output rounded";

    // The direct bf16 conv on the same data (its input rounded to bf16 here, as the head does).
    ConvPlan direct(ctx, 3, s.cin, s.cout, s.in_h, s.w, s.pad_top, s.pad_bottom, s.relu, Precision::bf16, false);
    ASSERT_FALSE(direct.winograd());
    std::vector<uint16_t> xb(x.size());
    f32_to_bf16(x.data(), xb.data(), static_cast<int64_t>(x.size()));
    std::vector<float> yd(want.size());
    direct.run(xb.data(), direct.pack(w.data(), b.data()), yd.data(), pad.base());
    const auto rd = rt_test::compare("bf16 direct   " + tag, yd.data(), want.data(), want.size());

    EXPECT_LE(rw.rel(), used == 4 ? 3e-2 : 1e-2) << tag << ", F" << used;
    EXPECT_LE(rw.rel(), (used == 4 ? 8.0 : 2.0) * rd.rel()) << tag << ", F" << used
                                                              << ": Winograd error against the direct conv's";
    EXPECT_GE(rw.rel(), 1e-5) << tag << ": no bf16 rounding seen";
  }
  }
  omp_set_num_threads(saved_threads);
}

TEST(WinogradBf16, F2MatchesDoubleConvWithinBf16Rounding) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  check_against_double(2);
}

TEST(WinogradBf16, F4MatchesDoubleConvWithinBf16Rounding) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  check_against_double(4);
}

// Streamed head convs are packed into ring slots with pack_weights (runtime/head_store.cpp): the
// bytes must be those of pack(), or a streamed run would differ from a resident one. Both tiles.
TEST(WinogradBf16, PackIntoSlotEqualsPack) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  DnnlContext ctx;
  const Shape s{32, 16, 10, 8, 0, 0, true};
  for (const int tile : {2, 4}) {
  ConvPlan plan(ctx, 3, s.cin, s.cout, s.in_h, s.w, 0, 0, true, Precision::bf16, true, false, tile);
  ASSERT_TRUE(plan.winograd());
  ASSERT_EQ(plan.winograd_tile(), tile);
  const auto w = rand_weights(s, 7);
  std::vector<float> b(s.cout, 0.f);
  const PackedConv packed = plan.pack(w.data(), b.data());
  const size_t n = plan.weights_desc().get_size();
  std::vector<uint8_t> slot(n, 0xAB);
  dnnl::memory dst(plan.weights_desc(), ctx.eng, slot.data());
  plan.pack_weights(w.data(), dst, ctx.strm);
  EXPECT_EQ(0, std::memcmp(slot.data(), packed.weights.get_data_handle(), n)) << "F" << tile;
  }
}

// F(2×2) needs an even output: an odd width falls back to the direct bf16 conv, with its bf16 input.
TEST(WinogradBf16, OddOutputFallsBackToDirect) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  DnnlContext ctx;
  ConvPlan odd(ctx, 3, 16, 16, 8, 9, 1, 1, true, Precision::bf16, true);
  EXPECT_FALSE(odd.winograd());
  EXPECT_EQ(odd.src_type(), dnnl::memory::data_type::bf16);
  ConvPlan fp32(ctx, 3, 16, 16, 8, 8, 1, 1, true, Precision::fp32, false);
  EXPECT_EQ(fp32.src_type(), dnnl::memory::data_type::f32);
}

}  // namespace
}  // namespace m3vit::rt
