// AttentionPlan (runtime/ops/attention.h) against softmax(q·kᵀ/√hd)·v computed in double here, in fp32
// and bf16, through the AVX-512 kernels and the portable loops (use_simd = false). The shapes cross
// every tail the kernels have: N not a multiple of 16 (key panels), 32 (bf16 probability pairs), 48
// (query blocks), 12 or 6 (row groups and register tiles) or 384 (key blocks); hd 16, 32, 64 (the
// three SIMD widths) and 24 (portable only); one head and several.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "runtime/ops/attention.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

using rt_test::check_close;
using rt_test::compare;

struct Shape {
  int n, heads, hd;
  std::string name() const {
    return "N=" + std::to_string(n) + " H=" + std::to_string(heads) + " hd=" + std::to_string(hd);
  }
  size_t qkv_size() const { return static_cast<size_t>(n) * 3 * heads * hd; }
};

// 1025 = the paper model's tokens (3 key blocks of 352, last query block of 17 rows); 197 = ViT-B/16
// at 224 (a 5-key last panel); 37 = the trained tiny model; 1 = a lone query.
const Shape kShapes[] = {{1, 1, 16},  {17, 2, 16},  {37, 3, 32},  {65, 2, 24},   {70, 3, 64},
                         {197, 2, 64}, {300, 2, 32}, {513, 2, 16}, {1025, 2, 64}};

std::vector<float> random_qkv(const Shape& s, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(s.qkv_size());
  for (auto& x : v) x = u(rng);
  return v;
}

// softmax(q·kᵀ/√hd)·v per head, in double, from the fused qkv layout [N, 3, heads, hd].
std::vector<float> attention_ref(const std::vector<float>& qkv, const Shape& sh) {
  const int N = sh.n, d = sh.heads * sh.hd, hd = sh.hd;
  std::vector<float> out(static_cast<size_t>(N) * d);
  std::vector<double> s(N);
  for (int h = 0; h < sh.heads; ++h)
    for (int i = 0; i < N; ++i) {
      double mx = -1e300;
      for (int j = 0; j < N; ++j) {
        double a = 0;
        for (int c = 0; c < hd; ++c)
          a += static_cast<double>(qkv[(static_cast<size_t>(i) * 3) * d + h * hd + c]) *
               qkv[(static_cast<size_t>(j) * 3 + 1) * d + h * hd + c];
        s[j] = a / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int j = 0; j < N; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int c = 0; c < hd; ++c) {
        double o = 0;
        for (int j = 0; j < N; ++j) o += s[j] * qkv[(static_cast<size_t>(j) * 3 + 2) * d + h * hd + c];
        out[static_cast<size_t>(i) * d + h * hd + c] = static_cast<float>(o / sum);
      }
    }
  return out;
}

std::vector<float> run_plan(const std::vector<float>& qkv, const Shape& sh, Precision prec, bool simd) {
  AttentionPlan plan(sh.n, sh.heads, sh.hd, prec);
  plan.use_simd = simd;
  std::vector<float> out(static_cast<size_t>(sh.n) * sh.heads * sh.hd, NAN);
  std::vector<float> work(plan.work_floats(), NAN);  // the workspace may hold anything, NaN included
  plan.run(qkv.data(), out.data(), work.data());
  return out;
}

std::string label(const Shape& sh, Precision prec, bool simd) {
  return sh.name() + (prec == Precision::bf16 ? " bf16" : prec == Precision::int8 ? " int8" : " fp32") +
         (simd ? " simd" : " portable");
}

// fp32: scores up to ~3 (inputs in ±1.5), fp32 dot products of hd terms and sums over N keys in
// blocks with rescaling, and a 2^x good to 1.5e-7: the error stays near 1e-6 of max|out| (measured
// 1e-7 to 2e-6); bound 1e-5 of max|out|.
TEST(AttentionPlan, Fp32MatchesDoubleReference) {
  for (const Shape& sh : kShapes) {
    const auto qkv = random_qkv(sh, 40 + sh.n, 1.5f);
    const auto want = attention_ref(qkv, sh);
    for (bool simd : {true, false}) {
      const auto got = run_plan(qkv, sh, Precision::fp32, simd);
      check_close(label(sh, Precision::fp32, simd), got.data(), want.data(), got.size(), 1e-5);
    }
  }
}

// bf16: q, k (with the scale) and v are rounded to bf16 (8 significant bits: relative error up to
// 2^-9 = 2e-3 each) and so are the probabilities before P·v; sums stay fp32. An output is a weighted
// mean of rounded values with rounded weights, so its error is a few 2^-9 of max|out| (measured
// 2-4e-3); bound 1e-2 of max|out|. The reference stays the exact double result of the fp32 inputs.
TEST(AttentionPlan, Bf16MatchesDoubleReference) {
  for (const Shape& sh : kShapes) {
    const auto qkv = random_qkv(sh, 40 + sh.n, 1.5f);
    const auto want = attention_ref(qkv, sh);
    for (bool simd : {true, false}) {
      const auto got = run_plan(qkv, sh, Precision::bf16, simd);
      check_close(label(sh, Precision::bf16, simd), got.data(), want.data(), got.size(), 1e-2);
    }
  }
}

// bf16 must really round: its result differs from the fp32 one by about the bf16 step (2e-3), far
// above fp32's 1e-6. A bf16 plan that quietly ran fp32 would fail here.
TEST(AttentionPlan, Bf16RoundsItsInputs) {
  const Shape sh{197, 2, 64};
  const auto qkv = random_qkv(sh, 7, 1.5f);
  for (bool simd : {true, false}) {
    const auto f32 = run_plan(qkv, sh, Precision::fp32, simd);
    const auto b16 = run_plan(qkv, sh, Precision::bf16, simd);
    EXPECT_GT(compare(label(sh, Precision::bf16, simd) + " vs fp32", b16.data(), f32.data(), f32.size()).rel(), 1e-4);
  }
  EXPECT_EQ(AttentionPlan(sh.n, sh.heads, sh.hd, Precision::bf16).precision(), Precision::bf16);
  EXPECT_EQ(AttentionPlan(sh.n, sh.heads, sh.hd).precision(), Precision::fp32);
}

// int8 (the VNNI kernels; int8 mode's attention core): q quantised per query row to u8 (q̂ + 128),
// k per key and v per channel to s8, the probabilities to u8 (round(255·P)); sums in s32, the scores,
// running max and sum, and O in fp32. Each input carries up to half a step of max|row| / 127, about
// 4× bf16's rounding, and P a step of 1/255: measured 7.7e-3 to 1.5e-2 of max|out| (exact at N = 1,
// where every v̂ is ±127); bound 3e-2. A lost
// compensation (the +128 of q̂) or a wrong step is off by O(1). On a CPU without AVX512-VNNI the plan
// runs as bf16 (its precision() says so) and the bound holds all the more.
TEST(AttentionPlan, Int8MatchesDoubleReference) {
  for (const Shape& sh : kShapes) {
    const auto qkv = random_qkv(sh, 40 + sh.n, 1.5f);
    const auto want = attention_ref(qkv, sh);
    const auto got = run_plan(qkv, sh, Precision::int8, true);
    check_close(label(sh, Precision::int8, true), got.data(), want.data(), got.size(), 3e-2);
  }
  const Precision p = AttentionPlan(37, 3, 32, Precision::int8).precision();
  EXPECT_EQ(p, cpu_has_vnni() && cpu_has_bf16() ? Precision::int8 : cpu_has_bf16() ? Precision::bf16 : Precision::fp32);
  // hd 24 has no SIMD kernels: int8 falls back to the portable fp32 loops.
  EXPECT_EQ(AttentionPlan(65, 2, 24, Precision::int8).precision(), Precision::fp32);
}

// int8 must really quantise: its result differs from bf16's by more than bf16 differs from fp32.
TEST(AttentionPlan, Int8QuantisesItsInputs) {
  if (AttentionPlan(300, 2, 32, Precision::int8).precision() != Precision::int8) return;  // checked above
  const Shape sh{300, 2, 32};
  const auto qkv = random_qkv(sh, 6, 1.5f);
  const auto f32 = run_plan(qkv, sh, Precision::fp32, true);
  const auto b16 = run_plan(qkv, sh, Precision::bf16, true);
  const auto i8 = run_plan(qkv, sh, Precision::int8, true);
  EXPECT_GT(compare("int8 vs fp32", i8.data(), f32.data(), f32.size()).rel(),
            compare("bf16 vs fp32", b16.data(), f32.data(), f32.size()).rel());
}

// A peaked softmax whose maximum moves: the keys grow with their position (k_j ×(1 + 4j/N)) and q is
// large (±6), so scores q·k/√hd reach ~40 and every new key block raises the running max, rescaling O
// and l by factors down to ~2^-30. fp32: a score of 40 carries an fp32 rounding error ~40·6e-8·√hd,
// which the peaked exponential turns into a relative error of a few 1e-6 (measured 5.4e-6, the
// portable loop the same): bound 2e-5 of max|out|. bf16: 8-bit q and k move scores of 40 by ~0.1, and
// P, peaked on a few keys, by ~10%: measured 2.9e-2 of max|out|, bound 0.1, which still catches a
// lost or doubled rescale (an error of order max|out|).
TEST(AttentionPlan, PeakedScoresAcrossKeyBlocks) {
  const Shape sh{1025, 1, 64};
  auto qkv = random_qkv(sh, 11, 1.f);
  const int d = sh.heads * sh.hd;
  for (int j = 0; j < sh.n; ++j)
    for (int c = 0; c < d; ++c) {
      qkv[static_cast<size_t>(j) * 3 * d + c] *= 6.f;                                  // q
      qkv[(static_cast<size_t>(j) * 3 + 1) * d + c] *= 1.f + 4.f * j / sh.n;            // k
    }
  const auto want = attention_ref(qkv, sh);
  for (bool simd : {true, false}) {
    const auto f32 = run_plan(qkv, sh, Precision::fp32, simd);
    check_close("peaked " + label(sh, Precision::fp32, simd), f32.data(), want.data(), f32.size(), 2e-5);
    const auto b16 = run_plan(qkv, sh, Precision::bf16, simd);
    check_close("peaked " + label(sh, Precision::bf16, simd), b16.data(), want.data(), b16.size(), 0.1);
  }
  // int8: 7-bit q and k move scores of 40 by ~0.3 (per-row steps of max|row|/127), P by ~25% on the
  // few keys it peaks on: measured 8.2e-2 of max|out| (bf16 2.9e-2); bound 0.2, below a lost rescale.
  const auto i8 = run_plan(qkv, sh, Precision::int8, true);
  check_close("peaked " + label(sh, Precision::int8, true), i8.data(), want.data(), i8.size(), 0.2);
}

// Rows never depend on which thread ran them or on the order of the work items: the same bits for
// 1 and 2 threads.
TEST(AttentionPlan, SameBitsForAnyThreadCount) {
  const Shape sh{300, 3, 32};
  const auto qkv = random_qkv(sh, 5, 1.5f);
  const int saved = omp_get_max_threads();
  for (Precision prec : {Precision::fp32, Precision::bf16, Precision::int8}) {
    omp_set_num_threads(2);
    AttentionPlan plan(sh.n, sh.heads, sh.hd, prec);
    std::vector<float> work(plan.work_floats());
    std::vector<float> a(static_cast<size_t>(sh.n) * sh.heads * sh.hd), b(a.size());
    plan.run(qkv.data(), a.data(), work.data());
    omp_set_num_threads(1);
    plan.run(qkv.data(), b.data(), work.data());
    EXPECT_EQ(a, b) << (prec == Precision::bf16 ? "bf16" : prec == Precision::int8 ? "int8" : "fp32");
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace m3vit::rt
