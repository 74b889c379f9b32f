// int8 mode (`--precision int8`, runtime/ops/quantize.h, runtime/int8_format.h): the kernels against
// double-precision references written here, the calibrated tiny models against the fp32 engine,
// and the int8 file's checks. Suites are named int8* so that `ctest -R int8` selects them.
//
// Two references per kernel: (1) the same quantised operands (q_x·s_x, q_w·s_w) multiplied in double:
// only fp32 rounding of the scaling and the sums separates it from oneDNN's s32 sums, so a wrong
// scale, bias, layout, zero point or compensation shows as an O(1) error; (2) the unquantised fp32
// operands in double: the quantisation error itself, bounded by what 7-8 bits allow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <vector>

#include "common/errors.h"
#include "io/safetensors.h"
#include "core/export.h"
#include "runtime/engine.h"
#include "runtime/int8_format.h"
#include "runtime/ops/bf16.h"
#include "runtime/ops/conv.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/quantize.h"
#include "runtime/workspace.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

std::vector<float> randn(size_t n, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

// Round half to even, as the kernels do.
double rne(double v) { return std::nearbyint(v); }

TEST(int8Quantize, PerChannelWeightsAndActivations) {
  // Row 0: the largest entry maps to exactly 127; 0.5 steps round to even. Row 1: zeros, scale 1.
  const float w[] = {1.27f, -0.635f, 0.005f, 0.015f, 0.f, 0.f, 0.f, 0.f};
  int8_t q[8];
  float s[2];
  quantize_weights_s8(w, 2, 4, q, s);
  EXPECT_FLOAT_EQ(s[0], 0.01f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], static_cast<int8_t>(rne(-0.635f / s[0])));
  EXPECT_EQ(q[3], static_cast<int8_t>(rne(0.015f / s[0])));
  EXPECT_FLOAT_EQ(s[1], 1.f);
  EXPECT_EQ(q[4], 0);
  // Activations: clamped at ±127, 100003 values so both the vector loop and its tail run in pieces.
  const std::vector<float> x = randn(100003, 2.f, 1);
  std::vector<int8_t> qx(x.size());
  const float step = 3.f / 127;  // |x| > 3 saturates
  quantize_s8(x.data(), qx.data(), static_cast<int64_t>(x.size()), step, /*parallel=*/true);
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    // The kernel's definition: the product x·(1/step) in fp32, then rounded.
    const double want = std::clamp(rne(x[i] * (1.f / step)), -127.0, 127.0);
    bad += qx[i] != static_cast<int8_t>(want);
  }
  EXPECT_EQ(bad, 0);
}

struct MatmulCase {
  int rows, in, out;
  Epilogue epi;
  bool bias;
};

// y = x·Wᵀ + b (GELU | += residual), the plan's int8 path, against both references.
void check_matmul(const MatmulCase& c, uint32_t seed) {
  SCOPED_TRACE("rows " + std::to_string(c.rows) + " in " + std::to_string(c.in) + " out " + std::to_string(c.out) +
               " epilogue " + std::to_string(static_cast<int>(c.epi)));
  DnnlContext ctx;
  const std::vector<float> x = randn(static_cast<size_t>(c.rows) * c.in, 1.f, seed);
  const std::vector<float> w = randn(static_cast<size_t>(c.out) * c.in, 1.f / std::sqrt(float(c.in)), seed + 1);
  const std::vector<float> b = randn(c.out, 0.5f, seed + 2);
  const std::vector<float> res = randn(static_cast<size_t>(c.rows) * c.out, 1.f, seed + 3);
  std::vector<int8_t> qw(w.size());
  std::vector<float> sw(c.out);
  quantize_weights_s8(w.data(), c.out, c.in, qw.data(), sw.data());
  const float step = absmax(x.data(), static_cast<int64_t>(x.size())) / kS8Max;
  MatmulPlan plan(ctx, c.in, c.out, c.bias, c.rows, c.epi, Precision::int8);
  const PackedWeights pw = plan.pack_s8(qw.data(), sw.data(), c.bias ? b.data() : nullptr, step);
  std::vector<float> y = c.epi == Epilogue::residual ? res : std::vector<float>(res.size(), 0.f);
  plan.run(x.data(), pw, y.data());

  std::vector<float> ref_q(y.size()), ref_f(y.size());
  for (int r = 0; r < c.rows; ++r)
    for (int n = 0; n < c.out; ++n) {
      double aq = 0, af = 0;
      for (int k = 0; k < c.in; ++k) {
        const double xv = x[static_cast<size_t>(r) * c.in + k], wv = w[static_cast<size_t>(n) * c.in + k];
        const double xq = std::clamp(rne(x[static_cast<size_t>(r) * c.in + k] * (1.f / step)), -127.0, 127.0) * step;
        aq += xq * (qw[static_cast<size_t>(n) * c.in + k] * static_cast<double>(sw[n]));
        af += xv * wv;
      }
      const double bb = c.bias ? b[n] : 0.0, rr = c.epi == Epilogue::residual ? res[static_cast<size_t>(r) * c.out + n] : 0.0;
      auto fin = [&](double a) { return c.epi == Epilogue::gelu ? gelu(a + bb) : a + bb + rr; };
      ref_q[static_cast<size_t>(r) * c.out + n] = static_cast<float>(fin(aq));
      ref_f[static_cast<size_t>(r) * c.out + n] = static_cast<float>(fin(af));
    }
  // (1) Same quantised operands: fp32 scaling and the GELU post-op only (measured ~1e-7 of max|y|;
  // bound 1e-5: a wrong scale, bias or compensation is off by > 1e-2).
  rt_test::check_close("int8 matmul vs quantised double", y.data(), ref_q.data(), y.size(), 1e-5);
  // (2) Quantisation: Gaussian inputs at 1/127 of their absmax (~4.4σ) and weights per channel; a
  // dot product of K terms with independent rounding errors: measured 7e-3..1e-2 of max|y| at
  // K = 32..384; bound 3e-2.
  rt_test::check_close("int8 matmul vs fp32 double", y.data(), ref_f.data(), y.size(), 3e-2);
}

TEST(int8Matmul, MatchesDoubleReferences) {
  check_matmul({37, 64, 48, Epilogue::none, true}, 10);
  check_matmul({64, 384, 96, Epilogue::gelu, true}, 20);
  check_matmul({40, 96, 32, Epilogue::residual, true}, 30);
  check_matmul({16, 32, 96, Epilogue::none, false}, 40);  // qkv without bias
}

// An expert bank: a chunk of 13 rows runs on the 16-row plan; the padding rows are not observed.
TEST(int8Matmul, ExpertBankChunkAndCalibrationObserver) {
  DnnlContext ctx;
  const int in = 32, out = 24, rows = 13;
  std::vector<float> x = randn(16 * in, 1.f, 5);
  for (int i = rows * in; i < 16 * in; ++i) x[i] = 1000.f;  // padding: must not reach the observer
  const std::vector<float> w = randn(out * in, 0.2f, 6), b = randn(out, 0.1f, 7);
  MatmulBank fp(ctx, in, out, 64, Epilogue::none, Precision::fp32);
  PackedWeights pw = fp.pack(w.data(), b.data());
  float seen = 0.f;
  pw.observe = &seen;
  MatmulScratch sc;
  fp.reserve(sc);
  std::vector<float> y(16 * out);
  fp.run(x.data(), rows, pw, y.data(), sc);
  EXPECT_FLOAT_EQ(seen, absmax(x.data(), rows * in));

  std::vector<int8_t> qw(w.size());
  std::vector<float> sw(out);
  quantize_weights_s8(w.data(), out, in, qw.data(), sw.data());
  MatmulBank q8(ctx, in, out, 64, Epilogue::none, Precision::int8);
  const PackedWeights p8 = q8.pack_s8(qw.data(), sw.data(), b.data(), seen / kS8Max);
  MatmulScratch s8;
  q8.reserve(s8);
  std::vector<float> y8(16 * out);
  q8.run(x.data(), rows, p8, y8.data(), s8);
  rt_test::check_close("int8 expert chunk vs fp32", y8.data(), y.data(), static_cast<size_t>(rows) * out, 3e-2);
}

struct ConvCase {
  int cin, cout, in_h, w, pad_top, pad_bottom;
  bool relu, nonneg;
  bool winograd = false;
  int tile = 2;  // the Winograd's F(m×m)
};

void check_conv(const ConvCase& c, uint32_t seed) {
  SCOPED_TRACE("conv " + std::to_string(c.cin) + "->" + std::to_string(c.cout) + (c.nonneg ? " u8" : " s8"));
  DnnlContext ctx;
  const int OH = c.in_h + c.pad_top + c.pad_bottom - 2, W = c.w;
  std::vector<float> x(blocked_floats(c.cin, c.in_h, W), 0.f);
  {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int ch = 0; ch < c.cin; ++ch)  // real channels only; the blocked padding stays zero
      for (int p = 0; p < c.in_h * W; ++p) {
        const float v = nd(rng);
        x[(static_cast<size_t>(ch / 16) * c.in_h * W + p) * 16 + ch % 16] = c.nonneg ? std::fabs(v) : v;
      }
  }
  const std::vector<float> wt = randn(static_cast<size_t>(c.cout) * c.cin * 9, std::sqrt(2.f / (9.f * c.cin)), seed + 1);
  const std::vector<float> b = randn(c.cout, 0.2f, seed + 2);
  std::vector<int8_t> qw(wt.size());
  std::vector<float> sw(c.cout);
  quantize_weights_s8(wt.data(), c.cout, static_cast<int64_t>(c.cin) * 9, qw.data(), sw.data());
  const float step = absmax(x.data(), static_cast<int64_t>(x.size())) / (c.nonneg ? kU8Max : kS8Max);
  ConvPlan plan(ctx, 3, c.cin, c.cout, c.in_h, W, c.pad_top, c.pad_bottom, c.relu, Precision::int8, c.winograd,
                c.nonneg, c.tile);
  ASSERT_EQ(plan.input_u8(), c.nonneg);
  ASSERT_EQ(plan.winograd(), c.winograd);
  if (c.winograd) {
    ASSERT_EQ(plan.winograd_tile(), c.tile);
  }
  const PackedConv pc = plan.pack_s8(qw.data(), sw.data(), b.data(), step);
  Workspace pad;
  pad.reserve(plan.scratchpad_bytes() / 4 + 16);
  std::vector<float> y(blocked_floats(c.cout, OH, W), -1.f);
  plan.run(x.data(), pc, y.data(), pad.base());
  if (c.winograd) {
    // The same conv written into rows [2, 2 + OH) of a bf16 map of OH + 3 rows (the head's conv_1 and
    // conv_2 write their bands so): exactly y rounded to bf16, nothing outside those rows touched.
    ASSERT_TRUE(plan.writes_bf16_maps());
    const int rows = OH + 3, row0 = 2;
    std::vector<uint16_t> map(blocked_floats(c.cout, rows, W), 0xABCD);
    plan.run_into_map(x.data(), pc, map.data(), rows, row0, pad.base());
    size_t wrong = 0, touched = 0;
    for (int cb = 0; cb < (c.cout + 15) / 16; ++cb)
      for (int r = 0; r < rows; ++r)
        for (int i = 0; i < W * 16; ++i) {
          const uint16_t got = map[(static_cast<size_t>(cb) * rows + r) * W * 16 + i];
          if (r < row0 || r >= row0 + OH) {
            touched += got != 0xABCD;
            continue;
          }
          wrong += got != f32_to_bf16(y[(static_cast<size_t>(cb) * OH + r - row0) * W * 16 + i]);
        }
    EXPECT_EQ(wrong, 0u) << "bf16 map rows differ from the fp32 output rounded";
    EXPECT_EQ(touched, 0u) << "rows outside the band were written";
    EXPECT_THROW(plan.run_into_map(x.data(), pc, map.data(), OH + 1, 2, pad.base()), ShapeError);
  }

  auto at = [&](int ch, int yy, int xx) { return x[((static_cast<size_t>(ch / 16) * c.in_h + yy) * W + xx) * 16 + ch % 16]; };
  const double lo = c.nonneg ? 0.0 : -127.0, hi = c.nonneg ? 255.0 : 127.0;
  std::vector<float> ref_q(y.size(), 0.f), ref_f(y.size(), 0.f), got(y.size(), 0.f);
  for (int o = 0; o < c.cout; ++o)
    for (int oy = 0; oy < OH; ++oy)
      for (int ox = 0; ox < W; ++ox) {
        double aq = b[o], af = b[o];
        for (int i = 0; i < c.cin; ++i)
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = oy + ky - c.pad_top, ix = ox + kx - 1;
              if (iy < 0 || iy >= c.in_h || ix < 0 || ix >= W) continue;
              const size_t wi = ((static_cast<size_t>(o) * c.cin + i) * 3 + ky) * 3 + kx;
              const double xv = at(i, iy, ix);
              aq += std::clamp(rne(at(i, iy, ix) * (1.f / step)), lo, hi) * step * (qw[wi] * static_cast<double>(sw[o]));
              af += xv * wt[wi];
            }
        const size_t k = ((static_cast<size_t>(o / 16) * OH + oy) * W + ox) * 16 + o % 16;
        ref_q[k] = static_cast<float>(c.relu ? std::max(aq, 0.0) : aq);
        ref_f[k] = static_cast<float>(c.relu ? std::max(af, 0.0) : af);
        got[k] = y[k];
      }
  if (c.winograd && c.tile == 2) {
    // F(2×2): V quantised per α and tile (its own steps, not the input's), U re-quantised per α and
    // channel from the s8 weights: measured 1.1-2.2e-2 of max|y| against the fp32 conv, 1.5-2.5× the
    // direct int8 conv's error; bound 5e-2. A wrong tap, sign or scale is off by O(1).
    rt_test::check_close("int8 Winograd conv vs fp32 double", got.data(), ref_f.data(), got.size(), 5e-2);
    return;
  }
  if (c.winograd) {
    // F(4×4): the same two roundings, but on 36 α whose transforms mix the patch with weights up to
    // 2.5 (Bᵀ) and 8 (Aᵀ), so each rounding counts for more: measured 5.0-7.2e-2 of max|y| against
    // the fp32 conv; bound 1e-1 (a float64 emulation gave 3.3× F(2×2)'s RMS error). A wrong tap,
    // sign or scale is off by O(1).
    rt_test::check_close("int8 Winograd F(4x4) conv vs fp32 double", got.data(), ref_f.data(), got.size(), 1e-1);
    return;
  }
  rt_test::check_close("int8 conv vs quantised double", got.data(), ref_q.data(), got.size(), 1e-5);
  // u8 (8 bits of range) and s8 inputs, K = 9·cin: measured 5e-3..1.5e-2 of max|y| (s8 the
  // largest); bound 3e-2.
  rt_test::check_close("int8 conv vs fp32 double", got.data(), ref_f.data(), got.size(), 3e-2);
}

TEST(int8Conv, MatchesDoubleReferences) {
  check_conv({32, 32, 12, 10, 1, 1, true, false}, 50);   // conv_0: a whole map, signed input
  check_conv({16, 48, 6, 8, 0, 0, false, true}, 60);     // a band carrying its halo, u8 input
  check_conv({48, 16, 10, 14, 1, 1, true, true}, 70);    // 3 input channel blocks
  check_conv({8, 8, 7, 9, 1, 1, true, true}, 80);        // 8 channels (tiny_test's head): half a block
}

// The int8 Winograd F(2×2, 3×3) (runtime/ops/winograd_int8.h), the default for the head's 3×3 convs.
TEST(int8Conv, WinogradMatchesDoubleConv) {
  check_conv({32, 32, 12, 10, 1, 1, true, false, true}, 51);   // conv_0: a whole map, signed input
  check_conv({16, 48, 6, 8, 0, 0, false, true, true}, 61);     // a band with its halo, no ReLU
  check_conv({32, 16, 36, 36, 0, 0, true, true, true}, 71);    // 306 tiles: several chunks, the last partial
  check_conv({48, 32, 10, 14, 1, 1, false, true, true}, 81);   // 3 input channel blocks
}

// F(4×4, 3×3) in int8, the default where a map is in whole 4×4 tiles.
TEST(int8Conv, WinogradF4MatchesDoubleConv) {
  check_conv({32, 32, 12, 12, 1, 1, true, false, true, 4}, 52);   // conv_0: a whole map, signed input
  check_conv({16, 48, 10, 8, 0, 0, false, true, true, 4}, 62);    // a band with its halo, no ReLU
  check_conv({32, 16, 50, 36, 0, 0, true, true, true, 4}, 72);    // 108 tiles: several chunks, the last partial
  check_conv({48, 32, 12, 16, 1, 1, false, true, true, 4}, 82);   // 3 input channel blocks
}

// The calibrated tiny models (three gate kinds) against the float64 PyTorch oracle on the inputs of
// tests/runtime/test_engine.cpp (model seed 1234, image seed 99; the fp32 engine matches that oracle
// to 1e-4). Calibration: 8 other random images, every task. Routing is compared as sets: the share
// of (token, MoE layer) pairs whose k experts differ from the oracle's, where the router's fp32
// logits see int8 errors in the blocks before it.
struct ModelCase {
  GateType gate;
  int img_h, img_w;
};

class int8Model : public ::testing::TestWithParam<ModelCase> {};

TEST_P(int8Model, CalibratedModelAgreesWithTheOracle) {
  if (!cpu_has_vnni()) GTEST_SKIP() << "no AVX512-VNNI on this CPU: int8 mode is refused (int8File tests that)";
  const ModelCase mc = GetParam();
  const ModelConfig cfg = rt_test::tiny_config(mc.gate, mc.img_h, mc.img_w, 3);
  const std::string dir = rt_test::scratch_dir("int8-model");
  const std::string model = dir + "/model.safetensors", model8 = dir + "/model_int8.safetensors";
  rt_test::write_random_export(cfg, model, 1234);
  const Calibration cal =
      calibrate_model(model, 8, [&](int i, std::vector<float>& x) { x = rt_test::random_image(cfg, 1000 + i); });
  write_int8_export(model, cal, model8, {"absmax over 8 random images, every task"});
  const std::vector<float> image = rt_test::random_image(cfg, 99);
  const SafeTensorsFile oracle(rt_test::run_oracle(dir, model, image, cfg));

  EngineOptions o;
  o.precision = Precision::int8;
  Engine eng(model8, o);
  // Everything streamed: the same packed bytes through the ring (s8 read from the file, a quarter of
  // the fp32 bytes), so the same bits as resident.
  EngineOptions os = o;
  os.experts = Residency::stream;
  os.layers = Residency::stream;
  Engine streamed(model8, os);
  // The head's 3×3 convs as oneDNN's int8 direct conv with the calibrated input steps (--conv direct).
  EngineOptions od = o;
  od.winograd = false;
  Engine direct(model8, od);
  for (int t = 0; t < cfg.num_tasks(); ++t) {
    const std::string task = cfg.tasks[t].name;
    SCOPED_TRACE(task);
    RunTrace trace;
    std::vector<float> out(static_cast<size_t>(cfg.tasks[t].out_channels) * cfg.img_h * cfg.img_w);
    eng.run(t, image.data(), out.data(), &trace);
    const int k = cfg.moe_top_k;
    int64_t pairs = 0, differ = 0;
    for (size_t j = 0; j < trace.topk_idx.size(); ++j) {
      const TensorView& idx = oracle.get("trace." + task + ".topk_idx" + std::to_string(j));
      const auto* want = static_cast<const int64_t*>(idx.data);
      for (int64_t tok = 0; tok < idx.numel() / k; ++tok, ++pairs) {
        std::vector<int64_t> a(want + tok * k, want + (tok + 1) * k), b(trace.topk_idx[j].begin() + tok * k,
                                                                        trace.topk_idx[j].begin() + (tok + 1) * k);
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        differ += a != b;
      }
    }
    const double share = pairs ? static_cast<double>(differ) / pairs : 0.0;
    std::printf("  %-10s top-k sets differing from fp32: %lld of %lld (%.1f%%)\n", task.c_str(),
                static_cast<long long>(differ), static_cast<long long>(pairs), 100 * share);
    // Random routers give near-ties that any perturbation flips (trained routers are more decided);
    // measured 0-8% here. Bound 15%: a routing bug (e.g. int8 router logits, wrong expert) gives ≥ 50%.
    EXPECT_LE(share, 0.15);
    // Logits: measured 1.1-6.3% of max|out| on these random-weight models with every top-k set equal,
    // 9.4% with one set of 14 flipped (d = 32 and 16 head channels: short dot products, so the
    // rounding averages out less than at the paper's widths); bound 15%. A wrong scale, layer or
    // BatchNorm fold is off by O(1).
    rt_test::check_close(task + " int8 output", out.data(), oracle.get("task." + task).f32(), out.size(), 0.15);
    std::vector<float> out_s(out.size());
    streamed.run(t, image.data(), out_s.data());
    EXPECT_EQ(std::memcmp(out.data(), out_s.data(), out.size() * 4), 0) << "streamed int8 differs from resident";
    std::vector<float> out_d(out.size());
    direct.run(t, image.data(), out_d.data());
    rt_test::check_close(task + " int8 output, direct convs", out_d.data(), oracle.get("task." + task).f32(),
                         out.size(), 0.15);
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Gates, int8Model,
                         ::testing::Values(ModelCase{GateType::multi, 32, 48}, ModelCase{GateType::task_cond, 48, 32},
                                           ModelCase{GateType::shared, 32, 32}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.gate)) + "_" + std::to_string(info.param.img_h) +
                                  "x" + std::to_string(info.param.img_w);
                         });

// Copies an int8 file, letting edit() change or drop (return false) each tensor.
void rewrite(const std::string& from, const std::string& to,
             const std::function<bool(const std::string&, DType&, std::vector<int64_t>&, std::vector<uint8_t>&)>& edit) {
  const SafeTensorsFile f(from);
  SafeTensorsWriter w;
  for (const std::string& n : f.names()) {
    const TensorView& v = f.get(n);
    DType dt = v.dtype;
    std::vector<uint8_t> bytes(static_cast<const uint8_t*>(v.data), static_cast<const uint8_t*>(v.data) + v.nbytes);
    std::vector<int64_t> shape = v.shape;
    if (!edit(n, dt, shape, bytes)) continue;
    w.add(n, dt, shape, bytes.data(), bytes.size());
  }
  for (const auto& [k, val] : f.metadata()) w.set_metadata(k, val);
  w.write(to);
}

// Expects Engine(path, int8) to throw an m3vit error whose message contains every `parts`.
void expect_error(const std::string& path, Precision prec, const std::vector<std::string>& parts) {
  EngineOptions o;
  o.precision = prec;
  try {
    Engine eng(path, o);
    ADD_FAILURE() << path << ": loaded without an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("  error: %s\n", msg.c_str());
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(int8File, BadFilesAreErrorsNamingTheTensor) {
  if (!cpu_has_vnni()) GTEST_SKIP() << "no AVX512-VNNI: see int8File.RefusedWithoutVnni";
  const ModelConfig cfg = rt_test::tiny_config(GateType::multi, 32, 32, 2);
  const std::string dir = rt_test::scratch_dir("int8-file");
  const std::string model = dir + "/m.safetensors", q8 = dir + "/m8.safetensors", bad = dir + "/bad.safetensors";
  rt_test::write_random_export(cfg, model, 7);
  write_int8_export(model, calibrate_model(model, 2, [&](int i, std::vector<float>& x) { x = rt_test::random_image(cfg, i); }),
                    q8, {"test"});
  const std::string w1 = block_key(1, "mlp.experts.htoh4.weight");
  const std::string s1 = weight_scale_key(w1), x1 = input_scale_key(w1);
  // Which file is which precision: both directions refused, each naming the way out.
  expect_error(q8, Precision::fp32, {q8, "int8 file", "--precision int8"});
  expect_error(model, Precision::int8, {model, "m3vit calibrate"});
  // Truncated: the last tensor's bytes are cut off.
  {
    std::filesystem::copy_file(q8, bad, std::filesystem::copy_options::overwrite_existing);
    const SafeTensorsFile f(q8);
    const std::string last = f.names().back();
    std::filesystem::resize_file(bad, f.file_offset(last) + 1);
    expect_error(bad, Precision::int8, {bad, last});
  }
  // A scale missing, a scale of 0, an s8 weight stored as F32, a weight scale of the wrong shape.
  rewrite(q8, bad, [&](const std::string& n, DType&, std::vector<int64_t>&, std::vector<uint8_t>&) { return n != x1; });
  expect_error(bad, Precision::int8, {bad, "missing tensor '" + x1 + "'"});
  rewrite(q8, bad, [&](const std::string& n, DType&, std::vector<int64_t>&, std::vector<uint8_t>& b) {
    if (n == x1) std::memset(b.data() + 4, 0, 4);  // expert 1's input step
    return true;
  });
  expect_error(bad, Precision::int8, {bad, "'" + x1 + "'", "element 1"});
  rewrite(q8, bad, [&](const std::string& n, DType& dt, std::vector<int64_t>& shape, std::vector<uint8_t>&) {
    if (n == w1) {  // the s8 bytes read as a quarter as many F32 [8, 32, 8]
      dt = DType::F32;
      shape.back() /= 4;
    }
    return true;
  });
  expect_error(bad, Precision::int8, {bad, w1});
  rewrite(q8, bad, [&](const std::string& n, DType&, std::vector<int64_t>& shape, std::vector<uint8_t>& b) {
    if (n == s1) {  // [8, 32] -> [8, 31]
      shape.back() -= 1;
      b.resize(b.size() - 8 * 4);
    }
    return true;
  });
  expect_error(bad, Precision::int8, {bad, s1});
  std::filesystem::remove_all(dir);
}

TEST(int8File, PrecisionWordAndVnniCheck) {
  // The word parses both ways; a wrong one names the accepted ones. Without AVX512-VNNI the engine
  // refuses int8 mode before reading the file (naming VNNI); with it (this machine) the file decides.
  EXPECT_EQ(precision_from_string("int8"), Precision::int8);
  EXPECT_STREQ(to_string(Precision::int8), "int8");
  try {
    precision_from_string("int4");
    ADD_FAILURE() << "int4 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("fp32, bf16 or int8"), std::string::npos) << e.what();
  }
  EngineOptions o;
  o.precision = Precision::int8;
  try {
    Engine eng("/nonexistent/model.safetensors", o);
    ADD_FAILURE() << "a missing file loaded";
  } catch (const Error& e) {
    const std::string want = cpu_has_vnni() ? "/nonexistent/model.safetensors" : "AVX512-VNNI";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace m3vit::rt
