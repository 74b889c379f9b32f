// Kernel tests: every runtime op against a naive double-precision reference written out here
// (llama.cpp's test-backend-ops habit: each case with its own tolerance and the reason for it).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/errors.h"
#include "runtime/ops/bf16.h"
#include "runtime/ops/conv.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/resize.h"
#include "runtime/workspace.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

using rt_test::check_close;

std::vector<float> randv(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// y = x·Wᵀ + b (+ GELU) (+ y0), in double.
std::vector<float> linear_ref(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                              int rows, int in, int out, Epilogue epi, const std::vector<float>* y0 = nullptr) {
  std::vector<float> y(static_cast<size_t>(rows) * out);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int i = 0; i < in; ++i) s += static_cast<double>(x[r * in + i]) * w[o * in + i];
      if (epi == Epilogue::gelu) s = gelu_ref(s);
      if (epi == Epilogue::residual) s += (*y0)[r * out + o];
      y[r * out + o] = static_cast<float>(s);
    }
  return y;
}

// fp32 matmul, K <= 1536: the accumulation error is a few ulp of the row's magnitude; oneDNN's GELU
// is accurate to ~1e-7 relative. Bound 1e-5 of max|y|.
TEST(MatmulPlan, FixedRowsWithEveryEpilogue) {
  DnnlContext ctx;
  const int rows = 37, in = 48, out = 24;
  const auto x = randv(rows * in, 1), w = randv(out * in, 2, 0.3f), b = randv(out, 3);
  const auto y0 = randv(rows * out, 4);
  for (Epilogue epi : {Epilogue::none, Epilogue::gelu, Epilogue::residual}) {
    MatmulPlan plan(ctx, in, out, true, rows, epi, Precision::fp32);
    PackedWeights pw = plan.pack(w.data(), b.data());
    std::vector<float> y = y0;  // the residual epilogue adds into what is there
    plan.run(x.data(), pw, y.data());
    const auto want = linear_ref(x, w, b, rows, in, out, epi, &y0);
    check_close("matmul epilogue " + std::to_string(static_cast<int>(epi)), y.data(), want.data(), y.size(), 1e-5);
  }
}

// Expert chunks: one packed copy serves every row count 1..max (run on the next multiple of 8 rows),
// also from two threads at once with one scratch each (the MoE layer runs chunks concurrently).
TEST(MatmulBank, EveryRowCountFromConcurrentThreads) {
  DnnlContext ctx;
  const int in = 64, out = 40, max_rows = 37;
  const auto w = randv(out * in, 5, 0.2f), b = randv(out, 6);
  MatmulBank bank(ctx, in, out, max_rows, Epilogue::gelu, Precision::fp32);
  const PackedWeights pw = bank.pack(w.data(), b.data());
  const auto x = randv(static_cast<size_t>(max_rows) * in, 7);  // padded rows read past `rows`: in range
  std::vector<std::vector<float>> y(max_rows + 1);
  std::vector<MatmulScratch> scratch(2);
  for (auto& s : scratch) bank.reserve(s);
#pragma omp parallel for num_threads(2) schedule(dynamic)
  for (int rows = 1; rows <= max_rows; ++rows) {
    y[rows].assign(static_cast<size_t>(MatmulBank::padded(rows, max_rows)) * out, 0.f);
    bank.run(x.data(), rows, pw, y[rows].data(), scratch[omp_get_thread_num()]);
    y[rows].resize(static_cast<size_t>(rows) * out);  // the padding rows are not results
  }
  const auto want = linear_ref(x, w, b, max_rows, in, out, Epilogue::gelu);
  double worst = 0;
  for (int rows = 1; rows <= max_rows; ++rows)
    worst = std::max(worst, rt_test::compare("bank rows=" + std::to_string(rows), y[rows].data(), want.data(),
                                             y[rows].size()).rel());
  EXPECT_LE(worst, 1e-5);
  EXPECT_EQ(MatmulBank::padded(5, 37), 8);
  EXPECT_EQ(MatmulBank::padded(33, 37), 37);
  std::vector<float> yy(static_cast<size_t>(out) * (max_rows + 1));
  const auto xx = randv(static_cast<size_t>(in) * (max_rows + 1), 9);
  EXPECT_THROW(bank.run(xx.data(), max_rows + 1, pw, yy.data(), scratch[0]), ShapeError);
  EXPECT_THROW(bank.run(xx.data(), 0, pw, yy.data(), scratch[0]), ShapeError);
}

// bf16 keeps 8 mantissa bits: inputs and weights each carry a relative rounding of up to 2^-9, so a
// K-term dot product of random signs is off by ~2^-8·|y| in the worst rows. Bound 1e-2 of max|y|,
// and the error must be clearly above fp32's (otherwise the bf16 path did not run).
TEST(MatmulPlan, Bf16WithinItsRounding) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  DnnlContext ctx;
  const int rows = 50, in = 384, out = 96;
  const auto x = randv(rows * in, 11), w = randv(out * in, 12, 0.05f), b = randv(out, 13);
  MatmulPlan plan(ctx, in, out, true, rows, Epilogue::none, Precision::bf16);
  std::vector<float> y(static_cast<size_t>(rows) * out);
  plan.run(x.data(), plan.pack(w.data(), b.data()), y.data());
  const auto want = linear_ref(x, w, b, rows, in, out, Epilogue::none);
  const auto r = rt_test::compare("bf16 matmul", y.data(), want.data(), y.size());
  EXPECT_LE(r.rel(), 1e-2);
  EXPECT_GE(r.rel(), 1e-5);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
  float f;
  uint32_t u = 0x3f808000u;  // 1 + 2^-8: exactly halfway, the even neighbour is 1.0
  __builtin_memcpy(&f, &u, 4);
  EXPECT_EQ(f32_to_bf16(f), 0x3f80);
  u = 0x3f818000u;  // 1 + 3·2^-8: halfway, rounds up to the even 1 + 2^-6
  __builtin_memcpy(&f, &u, 4);
  EXPECT_EQ(f32_to_bf16(f), 0x3f82);
  u = 0x3f808001u;  // just above halfway: up
  __builtin_memcpy(&f, &u, 4);
  EXPECT_EQ(f32_to_bf16(f), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
}

// The array conversion (16 lanes at a time on AVX-512) rounds every value as the scalar one above
// does, bit for bit: random bit patterns (NaNs, infinities, subnormals included), exact halfway
// cases, and lengths that leave every tail size and take the parallel path (> 65536 values).
TEST(Bf16, ArrayConversionEqualsTheScalarRounding) {
  std::mt19937 rng(5);
  std::vector<float> x(70000 + 13);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t u = rng();
    if (i % 7 == 0) u = (u & 0xffff0000u) | 0x8000u;  // exactly halfway between two bf16 values
    if (i % 11 == 0) u = (u & 0x807fffffu) | 0x7f800000u;  // infinity or NaN
    if (i % 13 == 0) u &= 0x807fffffu;  // zero or subnormal
    __builtin_memcpy(&x[i], &u, 4);
  }
  for (const size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{4097}, x.size()}) {
    std::vector<uint16_t> got(n + 1, 0xdead);
    f32_to_bf16(x.data(), got.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], f32_to_bf16(x[i])) << "n " << n << ", element " << i;
    EXPECT_EQ(got[n], 0xdead) << "wrote past n = " << n;
  }
}

// 3×3 conv, stride 1, zero padding, + bias, ReLU: naive loops over nhwc in double.
std::vector<float> conv_ref(const std::vector<float>& src, int H, int W, int cin, const std::vector<float>& w,
                            const std::vector<float>& b, int cout, int pad_top, int pad_bottom, bool relu) {
  const int OH = H + pad_top + pad_bottom - 2;
  std::vector<float> y(static_cast<size_t>(OH) * W * cout);
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < W; ++ox)
      for (int o = 0; o < cout; ++o) {
        double s = b[o];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy + ky - pad_top, ix = ox + kx - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (int i = 0; i < cin; ++i)
              s += static_cast<double>(src[(static_cast<size_t>(iy) * W + ix) * cin + i]) * w[((o * cin + i) * 3 + ky) * 3 + kx];
          }
        y[(static_cast<size_t>(oy) * W + ox) * cout + o] = static_cast<float>(relu ? std::max(s, 0.0) : s);
      }
  return y;
}

// nhwc [H, W, C] <-> nChw16c [ceil(C/16)][H][W][16] (channels padded with zeros).
std::vector<float> to_blocked(const std::vector<float>& x, int H, int W, int C) {
  std::vector<float> y(blocked_floats(C, H, W), 0.f);
  for (int h = 0; h < H; ++h)
    for (int w = 0; w < W; ++w)
      for (int c = 0; c < C; ++c) y[((static_cast<size_t>(c / 16) * H + h) * W + w) * 16 + c % 16] = x[(static_cast<size_t>(h) * W + w) * C + c];
  return y;
}
std::vector<float> from_blocked(const std::vector<float>& y, int H, int W, int C) {
  std::vector<float> x(static_cast<size_t>(H) * W * C);
  for (int h = 0; h < H; ++h)
    for (int w = 0; w < W; ++w)
      for (int c = 0; c < C; ++c) x[(static_cast<size_t>(h) * W + w) * C + c] = y[((static_cast<size_t>(c / 16) * H + h) * W + w) * 16 + c % 16];
  return x;
}

// fp32 3×3 conv with 9·cin <= 300 terms: bound 1e-5 of max|y|. Winograd F(4×4, 3×3) adds rounding
// from its transforms (entries up to 8) yet measures the same ~1e-7 here; 1e-5 still separates
// rounding from a wrong tap. Winograd (on AVX-512, padded channels too) and direct.
TEST(ConvPlan, WholeMapAndBandsMatchNaive) {
  DnnlContext ctx;
  struct Case {
    int cin, cout;
    bool winograd;
  };
  Workspace pad;
  pad.reserve(16 << 20);  // scratchpads of these small convs
  for (Case cs : {Case{32, 32, true}, Case{24, 40, true}, Case{32, 32, false}}) {
    const int H = 12, W = 10, cin = cs.cin, cout = cs.cout;
    const auto src = randv(static_cast<size_t>(H) * W * cin, 21), w = randv(cout * cin * 9, 22, 0.2f), b = randv(cout, 23);
    const auto bsrc = to_blocked(src, H, W, cin);
    ConvPlan whole(ctx, 3, cin, cout, H, W, 1, 1, true, Precision::fp32, cs.winograd);
    ASSERT_LE(whole.scratchpad_bytes(), pad.bytes());
    if (__builtin_cpu_supports("avx512f")) {
      EXPECT_EQ(whole.winograd(), cs.winograd);
    }
    std::vector<float> y(blocked_floats(cout, H, W));
    whole.run(bsrc.data(), whole.pack(w.data(), b.data()), y.data(), pad.base());
    const auto want = conv_ref(src, H, W, cin, w, b, cout, 1, 1, true);
    const std::string tag = std::to_string(cin) + "->" + std::to_string(cout) + (whole.winograd() ? " winograd" : " direct");
    check_close("conv 3x3 whole map " + tag, from_blocked(y, H, W, cout).data(), want.data(), want.size(), 1e-5);
    // A band of 4 output rows from 6 input rows (its own halo), as the head runs conv_1..3:
    // output rows 4..7 of the whole map read input rows 3..8.
    ConvPlan band(ctx, 3, cin, cout, 6, W, 0, 0, true, Precision::fp32, cs.winograd);
    std::vector<float> rows(src.begin() + static_cast<size_t>(3) * W * cin, src.begin() + static_cast<size_t>(9) * W * cin);
    const auto brows = to_blocked(rows, 6, W, cin);
    std::vector<float> yb(blocked_floats(cout, 4, W));
    band.run(brows.data(), band.pack(w.data(), b.data()), yb.data(), pad.base());
    check_close("conv 3x3 band rows 4..7 " + tag, from_blocked(yb, 4, W, cout).data(),
                want.data() + static_cast<size_t>(4) * W * cout, static_cast<size_t>(4) * W * cout, 1e-5);
  }
}

// conv_4: 1×1 conv, 21 output channels (not a multiple of 16: the blocked output is padded).
TEST(ConvPlan, OneByOne) {
  DnnlContext ctx;
  const int H = 3, W = 7, cin = 32, cout = 21;
  const auto src = randv(static_cast<size_t>(H) * W * cin, 25), w = randv(cout * cin, 26, 0.3f), b = randv(cout, 27);
  ConvPlan plan(ctx, 1, cin, cout, H, W, 0, 0, false, Precision::fp32);
  Workspace pad;
  pad.reserve(plan.scratchpad_bytes() / 4 + 16);
  std::vector<float> yb(blocked_floats(cout, H, W));
  plan.run(to_blocked(src, H, W, cin).data(), plan.pack(w.data(), b.data()), yb.data(), pad.base());
  const std::vector<float> y = from_blocked(yb, H, W, cout);
  std::vector<float> want(y.size());
  for (int p = 0; p < H * W; ++p)
    for (int o = 0; o < cout; ++o) {
      double s = b[o];
      for (int i = 0; i < cin; ++i) s += static_cast<double>(src[p * cin + i]) * w[o * cin + i];
      want[p * cout + o] = static_cast<float>(s);
    }
  check_close("conv 1x1", y.data(), want.data(), y.size(), 1e-5);
}

// conv(W', b') with BN folded == BN(conv(W, b)) in eval mode; double-folded weights rounded once to
// fp32: bound 1e-5.
TEST(ConvPlan, BatchNormFoldEqualsConvThenBatchNorm) {
  DnnlContext ctx;
  const int H = 5, W = 7, cin = 16, cout = 16;
  const auto src = randv(static_cast<size_t>(H) * W * cin, 31), w = randv(cout * cin * 9, 32, 0.3f), b = randv(cout, 33);
  const auto gamma = randv(cout, 34), beta = randv(cout, 35), mean = randv(cout, 36);
  auto var = randv(cout, 37);
  for (auto& v : var) v = 0.5f + std::fabs(v);
  const double eps = 1e-5;
  std::vector<float> wf = w, bf = b;
  fold_batchnorm(wf, bf, cout, gamma.data(), beta.data(), mean.data(), var.data(), eps);
  ConvPlan plan(ctx, 3, cin, cout, H, W, 1, 1, false, Precision::fp32, /*winograd=*/true);
  Workspace pad;
  pad.reserve(plan.scratchpad_bytes() / 4 + 16);
  std::vector<float> y(blocked_floats(cout, H, W));
  plan.run(to_blocked(src, H, W, cin).data(), plan.pack(wf.data(), bf.data()), y.data(), pad.base());
  auto want = conv_ref(src, H, W, cin, w, b, cout, 1, 1, false);
  for (size_t i = 0; i < want.size(); ++i) {
    const int o = static_cast<int>(i % cout);
    want[i] = static_cast<float>((want[i] - mean[o]) / std::sqrt(var[o] + eps) * gamma[o] + beta[o]);
  }
  check_close("conv + folded BN", from_blocked(y, H, W, cout).data(), want.data(), want.size(), 1e-5);
}

// Two fp32 passes over 384 values: bound 1e-5.
TEST(LayerNorm, MatchesDoubleReference) {
  const int rows = 9, dim = 384;
  auto x = randv(static_cast<size_t>(rows) * dim, 51, 3.f);
  for (int i = 0; i < dim; ++i) x[i] += 100.f;  // a row with a large mean
  const auto g = randv(dim, 52), b = randv(dim, 53);
  std::vector<float> y(x.size()), want(x.size());
  layer_norm(x.data(), y.data(), rows, dim, g.data(), b.data(), 1e-6);
  for (int r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int i = 0; i < dim; ++i) m += x[r * dim + i];
    m /= dim;
    for (int i = 0; i < dim; ++i) v += (x[r * dim + i] - m) * (x[r * dim + i] - m);
    v /= dim;
    for (int i = 0; i < dim; ++i) want[r * dim + i] = static_cast<float>((x[r * dim + i] - m) / std::sqrt(v + 1e-6) * g[i] + b[i]);
  }
  check_close("layer_norm", y.data(), want.data(), y.size(), 1e-5);
}

// Hand-computed bilinear (align_corners=false): ×2 of [0, 4] is [0, 1, 3, 4]
// (sources −0.25→0, 0.25, 0.75, 1.25→clamped); 3 -> 2 samples at 0.25 and 1.75: [0,4,8] -> [1, 7].
TEST(Resize, HandComputedValues) {
  const std::vector<float> in = to_blocked({0, 4, 8, 12}, 2, 2, 1);  // one channel [[0, 4], [8, 12]]
  std::vector<float> out(16);
  resize_blocked_to_chw(in.data(), 1, 2, 2, out.data(), 4, 4);
  const float row[4] = {0, 1, 3, 4}, col[4] = {0, 2, 6, 8};  // along x: 0..4; along y: 0..8
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(out[y * 4 + x], row[x] + col[y]) << y << "," << x;
  const std::vector<float> line = {0, 4, 8};
  std::vector<float> two(2);
  resize_chw(line.data(), 1, 1, 3, two.data(), 1, 2);
  EXPECT_FLOAT_EQ(two[0], 1.f);
  EXPECT_FLOAT_EQ(two[1], 7.f);
}

// The banded ×2 upsampling (blocked layout) writes exactly the rows of the whole ×2 map, zeros
// outside it, and agrees with the planar bilinear resize; copy_rows_blocked puts a band back.
TEST(Resize, UpsampleBandRowsEqualTheWholeMap) {
  const int H = 3, W = 4, C = 20;  // two channel blocks, the second padded
  const auto in = randv(static_cast<size_t>(H) * W * C, 61);
  const auto bin = to_blocked(in, H, W, C);
  std::vector<float> whole(blocked_floats(C, 2 * H, 2 * W)), band(blocked_floats(C, 4, 2 * W));
  upsample2x_rows_blocked(bin.data(), H, W, C, 0, 2 * H, whole.data());
  upsample2x_rows_blocked(bin.data(), H, W, C, -1, 3, band.data());  // rows -1 (zero), 0, 1, 2
  const auto w_nhwc = from_blocked(whole, 2 * H, 2 * W, C), b_nhwc = from_blocked(band, 4, 2 * W, C);
  const size_t row = static_cast<size_t>(2 * W) * C;
  for (size_t i = 0; i < row; ++i) EXPECT_EQ(b_nhwc[i], 0.f);
  for (size_t i = 0; i < 3 * row; ++i) EXPECT_EQ(b_nhwc[row + i], w_nhwc[i]);
  std::vector<float> chw(static_cast<size_t>(C) * 2 * H * 2 * W);
  resize_blocked_to_chw(bin.data(), C, H, W, chw.data(), 2 * H, 2 * W);
  for (int y = 0; y < 2 * H; ++y)
    for (int x = 0; x < 2 * W; ++x)
      for (int c : {2, 17}) EXPECT_FLOAT_EQ(chw[(static_cast<size_t>(c) * 2 * H + y) * 2 * W + x], w_nhwc[(y * 2 * W + x) * C + c]);
  std::vector<float> map(whole.size(), -1.f), band3(blocked_floats(C, 3, 2 * W));
  upsample2x_rows_blocked(bin.data(), H, W, C, 0, 3, band3.data());
  copy_rows_blocked(band3.data(), C, 3, 2 * W, map.data(), 2 * H, 0);  // rows 0..2 back into a map
  const auto m_nhwc = from_blocked(map, 2 * H, 2 * W, C);
  for (size_t i = 0; i < 3 * row; ++i) EXPECT_EQ(m_nhwc[i], w_nhwc[i]);
}

// The head's last ×2 runs band by band (runtime/pup_head.cpp): a window of input rows [r0 − 1,
// r0 + band) gives exactly the output rows of the whole resize that sample only those rows.
TEST(Resize, RowWindowsGiveTheWholeResize) {
  const int H = 6, W = 5, C = 20, band = 2;
  const auto bin = to_blocked(randv(static_cast<size_t>(H) * W * C, 62), H, W, C);
  std::vector<float> whole(static_cast<size_t>(C) * 4 * H * W), parts(whole.size(), -1.f);
  resize_blocked_to_chw(bin.data(), C, H, W, whole.data(), 2 * H, 2 * W);
  const ResizeAxis ay = resize_axis(H, 2 * H);
  int y0 = 0;
  for (int r0 = 0; r0 < H; r0 += band) {
    // The window: input rows r0-1 .. r0+band-1 (row -1 is never sampled), blocked with band+1 rows.
    std::vector<float> win(blocked_floats(C, band + 1, W), 0.f);
    for (int cb = 0; cb < 2; ++cb)
      for (int r = std::max(r0 - 1, 0); r < r0 + band; ++r)
        std::copy_n(bin.data() + (static_cast<size_t>(cb) * H + r) * W * 16, W * 16,
                    win.data() + (static_cast<size_t>(cb) * (band + 1) + r - (r0 - 1)) * W * 16);
    int y1 = y0;
    while (y1 < 2 * H && ay.i1[y1] <= r0 + band - 1) ++y1;
    resize_blocked_rows_to_chw(win.data(), C, r0 - 1, band + 1, H, W, parts.data(), 2 * H, 2 * W, y0, y1);
    y0 = y1;
  }
  EXPECT_EQ(y0, 2 * H);
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(parts[i], whole[i]) << i;
}

// int8 mode keeps the head's upsampled maps in bf16: a band stored as bf16 and upsampled from it
// equals the fp32 path on the bf16-rounded map, and differs from the unrounded one by bf16 rounding.
TEST(Resize, Bf16MapUpsamplesLikeItsRoundedValues) {
  const int H = 3, W = 4, C = 32;
  const auto bin = to_blocked(randv(static_cast<size_t>(H) * W * C, 63), H, W, C);
  std::vector<uint16_t> map16(bin.size());
  copy_rows_blocked(bin.data(), C, H, W, map16.data(), H, 0);
  std::vector<float> rounded(bin.size());
  for (size_t i = 0; i < bin.size(); ++i) {
    rounded[i] = bf16_to_f32(map16[i]);
    // Round to nearest even: within half a bf16 step (2^-8 relative) of the fp32 value.
    EXPECT_LE(std::abs(rounded[i] - bin[i]), std::abs(bin[i]) * 0x1p-8f) << i;
  }
  std::vector<float> from16(blocked_floats(C, 5, 2 * W)), from32(from16.size()), exact(from16.size());
  upsample2x_rows_blocked(map16.data(), H, W, C, -1, 4, from16.data());
  upsample2x_rows_blocked(rounded.data(), H, W, C, -1, 4, from32.data());
  upsample2x_rows_blocked(bin.data(), H, W, C, -1, 4, exact.data());
  double worst = 0;
  for (size_t i = 0; i < from16.size(); ++i) {
    ASSERT_EQ(from16[i], from32[i]) << i;
    worst = std::max(worst, static_cast<double>(std::abs(from16[i] - exact[i])));
  }
  EXPECT_GT(worst, 0.0);
  // randv is in [-1, 1]: each value is within 2^-8 of its rounding, so is every weighted mean of them
  // (plus fp32 rounding of the interpolation).
  EXPECT_LT(worst, 1.01 * 0x1p-8);
}

}  // namespace
}  // namespace m3vit::rt
