// Engine::run_tasks (several tasks of one image, the shared work done once) against Engine::run per
// task, which tests/runtime/test_engine.cpp checks against the PyTorch oracle: the outputs must be
// the same bits. And the sharing must happen: with every weight streamed, the bytes read for all
// tasks together are fewer than the sum over separate runs by at least the shared layers' bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/errors.h"
#include "runtime/engine.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit {
namespace {

using rt::Engine;
using rt::EngineOptions;
using rt::Residency;

struct Case {
  GateType gate;
  bool dense;  // no MoE layer (the M-ViT baseline): the whole backbone is shared
};

class RunTasks : public ::testing::TestWithParam<Case> {};

TEST_P(RunTasks, SameBitsAsOneTaskAtATimeAndLessRead) {
  const Case c = GetParam();
  ModelConfig cfg = rt_test::tiny_config(c.gate, 32, 48, 4);
  if (c.dense) cfg.moe_blocks.clear();
  const std::string dir = rt_test::scratch_dir("run-tasks");
  const std::string model = dir + "/m.safetensors";
  rt_test::write_random_export(cfg, model, 77);
  const std::vector<float> image = rt_test::random_image(cfg, 5);
  const std::vector<int> tasks = {2, 0, 3};  // any order, not all tasks
  for (Residency r : {Residency::resident, Residency::stream}) {
    EngineOptions opt;
    opt.experts = c.dense ? Residency::resident : r;
    opt.layers = r;
    Engine eng(model, opt);
    std::vector<std::vector<float>> one(tasks.size());
    int64_t separate_bytes = 0;
    for (size_t i = 0; i < tasks.size(); ++i) {
      one[i] = eng.run(tasks[i], image);
      separate_bytes += eng.last_times().stream.bytes_read;
    }
    std::vector<std::vector<float>> many(tasks.size());
    std::vector<float*> outs;
    for (size_t i = 0; i < tasks.size(); ++i) {
      many[i].resize(one[i].size());
      outs.push_back(many[i].data());
    }
    eng.run_tasks(tasks, image.data(), outs);
    for (size_t i = 0; i < tasks.size(); ++i)
      EXPECT_EQ(many[i], one[i]) << "task " << tasks[i] << ", residency " << rt::to_string(r);
    if (r == Residency::stream) {
      // Shared per extra task: with one routing, every dense layer (qkv, proj, fc1, fc2 of every
      // block); with a router per task, block 0 and the first MoE block's attention.
      const int64_t d = cfg.embed_dim, h = static_cast<int64_t>(cfg.mlp_ratio * d);
      const int64_t attention = (d * 3 * d + 3 * d + d * d + d) * 4, mlp = (d * h + h + h * d + d) * 4;
      const bool one_routing = c.dense || c.gate == GateType::shared;
      const int64_t shared = one_routing ? cfg.depth * attention + (cfg.depth - static_cast<int64_t>(cfg.moe_blocks.size())) * mlp
                                         : 2 * attention + mlp;
      const int64_t together = eng.last_times().stream.bytes_read;
      EXPECT_LE(together, separate_bytes - 2 * shared) << "the shared layers were read again";
      EXPECT_GT(together, 0);
    }
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Gates, RunTasks,
                         ::testing::Values(Case{GateType::multi, false}, Case{GateType::task_cond, false},
                                           Case{GateType::shared, false}, Case{GateType::multi, true}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.gate)) + (info.param.dense ? "_dense" : "");
                         });

TEST(RunTasksErrors, OneOutputPerTask) {
  const ModelConfig cfg = rt_test::tiny_config(GateType::multi);
  const std::string dir = rt_test::scratch_dir("run-tasks-err");
  rt_test::write_random_export(cfg, dir + "/m.safetensors", 1);
  Engine eng(dir + "/m.safetensors");
  const std::vector<float> image = rt_test::random_image(cfg, 1);
  std::vector<float> out(5 * 32 * 48);
  EXPECT_THROW(eng.run_tasks({0, 1}, image.data(), {out.data()}), ConfigError);
  EXPECT_THROW(eng.run_tasks({}, image.data(), {}), ConfigError);
  EXPECT_THROW(eng.run_tasks({7}, image.data(), {out.data()}), ConfigError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace m3vit
