// Task switching and expert residency: switching task between images carries no state (outputs are
// bit-identical to fixed-task runs), streamed experts give the resident outputs, and the streaming
// buffers stay at a fixed count however many experts the model has.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "runtime/engine.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit {
namespace {

using rt::Engine;
using rt::EngineOptions;

TEST(TaskSwitch, InterleavedTasksEqualFixedTaskRunsBitForBit) {
  const ModelConfig cfg = rt_test::tiny_config(GateType::task_cond, 32, 48, 3);
  const std::string dir = rt_test::scratch_dir("task-switch");
  const std::string model = dir + "/m.safetensors";
  rt_test::write_random_export(cfg, model, 77);
  const std::vector<float> a = rt_test::random_image(cfg, 1), b = rt_test::random_image(cfg, 2);
  Engine eng(model);
  std::vector<std::vector<float>> fixed;  // task t on image a, each task in its own fixed run
  for (int t = 0; t < 3; ++t) {
    eng.run(t, a);  // warm: a previous run of the same task
    fixed.push_back(eng.run(t, a));
  }
  // Interleave tasks and images: t0(b), t1(a), t2(b), t0(a), t2(a), t1(b), t1(a) ...
  const int seq_task[] = {0, 1, 2, 0, 2, 1, 1};
  const bool seq_a[] = {false, true, false, true, true, false, true};
  for (int i = 0; i < 7; ++i) {
    const auto y = eng.run(seq_task[i], seq_a[i] ? a : b);
    if (seq_a[i]) {
      EXPECT_EQ(y, fixed[seq_task[i]]) << "step " << i << " task " << seq_task[i];
    }
  }
  // Different tasks really are different functions here (the test could fail if routing ignored t).
  rt::RunTrace t0, t1;
  std::vector<float> y0(static_cast<size_t>(5) * 32 * 48), y1(static_cast<size_t>(1) * 32 * 48);
  eng.run(0, a.data(), y0.data(), &t0);
  eng.run(1, a.data(), y1.data(), &t1);
  EXPECT_NE(t0.topk_idx[0], t1.topk_idx[0]);
  std::filesystem::remove_all(dir);
}

// Streamed weights are reordered into the same packed layout by the reader thread and run the same
// kernels: the outputs are identical to resident ones, bit for bit. Experts alone streamed, and
// everything streamed (experts, attention and dense MLP layers, head convs). Buffers: a budget of 3.5
// slots gives 3 slots for E = 8 and E = 32; every non-empty queue is read exactly once per image, and
// with --layers stream also every dense layer and the task's 4 head convs.
TEST(WeightStream, StreamEqualsResidentWithFixedBuffers) {
  const std::string dir = rt_test::scratch_dir("stream");
  for (int E : {8, 32}) {
    ModelConfig cfg = rt_test::tiny_config(GateType::multi, 48, 48, 2);
    cfg.moe_experts = E;
    const std::string model = dir + "/m" + std::to_string(E) + ".safetensors";
    rt_test::write_random_export(cfg, model, 3);
    const std::vector<float> img = rt_test::random_image(cfg, 4);
    Engine res(model);
    EXPECT_EQ(res.stream_bytes(), 0u);
    using M = rt::Residency;
    for (const auto& [experts, layers] : {std::pair{M::stream, M::resident}, std::pair{M::stream, M::stream},
                                          std::pair{M::resident, M::stream}}) {
      SCOPED_TRACE("E=" + std::to_string(E) + " experts " + rt::to_string(experts) + " layers " + rt::to_string(layers));
      EngineOptions so;
      so.experts = experts;
      so.layers = layers;
      // Default budget: two slots of the largest load, plus the staging buffer for the largest tensor
      // as read: an expert's [hid, d], or with streamed layers also qkv [3d, d], fc1 [4d, d] and the
      // head convs [c, d, 3, 3] and [c, c, 3, 3].
      const size_t d = cfg.embed_dim, c = cfg.head_channels;
      size_t staging = experts == M::stream ? static_cast<size_t>(cfg.moe_hidden()) * d : 0;
      if (layers == M::stream)
        staging = std::max({staging, 3 * d * d, static_cast<size_t>(cfg.mlp_hidden()) * d, c * d * 9, c * c * 9});
      staging *= 4;
      const size_t slot = (Engine(model, so).stream_bytes() - staging) / 2;
      ASSERT_GT(slot, 0u);
      so.memory_budget = 3 * slot + slot / 2;
      Engine str(model, so);
      for (int t = 0; t < cfg.num_tasks(); ++t) {
        const auto yr = res.run(t, img);
        const auto ys = str.run(t, img);
        EXPECT_EQ(ys, yr) << "stream vs resident, task " << t;
        const rt::RunTimes& rt = str.last_times();
        int dense = 0;
        for (int b = 0; b < cfg.depth; ++b) dense += cfg.is_moe_block(b) ? 2 : 4;
        EXPECT_EQ(rt.stream.loads,
                  (experts == M::stream ? rt.experts_computed : 0) + (layers == M::stream ? dense + 4 : 0));
        EXPECT_GT(rt.experts_computed, 0);
        EXPECT_EQ(res.last_times().stream.loads, 0);
      }
      // Held: 3 buffers whatever E is, and no resident experts when they stream. Resident: all E·layers.
      EXPECT_EQ(str.stream_bytes(), 3 * slot + staging);
      if (experts == M::stream) {
        EXPECT_EQ(str.expert_bytes(), 0u);
      } else {
        EXPECT_EQ(str.expert_bytes(), res.expert_bytes());
      }
      EXPECT_GE(res.expert_bytes(), static_cast<size_t>(E) * 2 * cfg.moe_hidden() * cfg.embed_dim * 4 * 2);
      if (layers == M::stream && experts == M::stream) {
        EXPECT_LT(str.weight_bytes(), res.weight_bytes() / 2);
      }
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace m3vit

namespace m3vit {
namespace {

// bf16 mode against fp32 on the same model: matmul and conv inputs and weights are rounded to 8
// mantissa bits (relative 2^-9 each), accumulation stays fp32. Through ~25 layers the rounding adds
// up to ~1e-2 of the largest output in the worst pixel; bound 3e-2 (docs/RUNTIME.md "Accuracy").
// And it must differ from fp32 (else the bf16 kernels did not run).
TEST(Bf16Mode, WithinItsToleranceOfFp32) {
  if (!rt::cpu_has_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  const ModelConfig cfg = rt_test::tiny_config(GateType::multi, 48, 64, 2);
  const std::string dir = rt_test::scratch_dir("bf16");
  const std::string model = dir + "/m.safetensors";
  rt_test::write_random_export(cfg, model, 8);
  const std::vector<float> img = rt_test::random_image(cfg, 9);
  rt::EngineOptions o16;
  o16.precision = rt::Precision::bf16;
  rt::Engine e32(model), e16(model, o16);
  for (int t = 0; t < cfg.num_tasks(); ++t) {
    const auto a = e32.run(t, img), b = e16.run(t, img);
    const auto r = rt_test::compare("bf16 vs fp32, task " + cfg.tasks[t].name, b.data(), a.data(), a.size());
    EXPECT_LE(r.rel(), 3e-2);
    EXPECT_GE(r.rel(), 1e-5);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace m3vit
