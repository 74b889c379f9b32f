#include "common/pch/torch_pch.h"

// Runtime parity: the libtorch-free engine (runtime/engine.h) against the libtorch model's
// forward_task, task by task. Each case builds a tiny MultiTaskModel from a seed, perturbs biases,
// norm scales and BatchNorm running statistics (so the runtime's BN folding is exercised), writes it
// with export_model, loads that file into rt::Engine (resident experts with Winograd head convs,
// streamed experts with direct ones) and compares:
//   - the output of every task, within 1e-4 of max|output| (the parity bound of the runtime; both
//     sides are fp32, what is measured is ~1e-6 from differently ordered sums);
//   - per MoE layer the top-k expert indices, which must be IDENTICAL, and their weights;
//   - every block output.
// Cases: the three gate types, square and non-square inputs, and routers set to zero so every
// probability ties (the runtime must pick the tied experts in torch.topk's order).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/checkpoint.h"
#include "model/multitask_model.h"
#include "runtime/engine.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit {
namespace {

constexpr double kTolOut = 1e-4;  // relative to max|output|: the fp32 parity bound
constexpr double kTolW = 1e-5;    // kept router probabilities, in [0, 1]

void perturb(MultiTaskModel& m) {
  torch::NoGradGuard ng;
  auto ends_with = [](const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  for (auto& p : m->named_parameters()) {
    const std::string& k = p.key();
    torch::Tensor t = p.value();
    if (ends_with(k, "cls_token") || ends_with(k, "pos_embed")) t.normal_(0.0, 0.5);
    else if (ends_with(k, "bias")) t.uniform_(-0.1, 0.1);
    else if (t.dim() == 1) t.uniform_(0.8, 1.2);  // LayerNorm / BatchNorm scale
  }
  for (auto& b : m->named_buffers()) {
    if (ends_with(b.key(), "running_mean")) b.value().uniform_(-0.2, 0.2);
    if (ends_with(b.key(), "running_var")) b.value().uniform_(0.5, 1.5);
  }
}

double rel_err(const float* got, const torch::Tensor& want_t, const std::string& what) {
  const torch::Tensor want = want_t.contiguous().to(torch::kFloat32);
  const float* w = want.data_ptr<float>();
  double err = 0, ref = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(got[i] - w[i])));
    ref = std::max(ref, static_cast<double>(std::fabs(w[i])));
    if (!std::isfinite(got[i])) err = INFINITY;
  }
  std::printf("  %-36s max|err| %.3e  max|ref| %.3e  rel %.3e\n", what.c_str(), err, ref, err / std::max(ref, 1e-30));
  return err / std::max(ref, 1e-30);
}

struct Case {
  GateType gate;
  int h, w;
  bool zero_routers;
};

class RuntimeParity : public ::testing::TestWithParam<Case> {};

TEST_P(RuntimeParity, EveryTaskEqualsForwardTask) {
  const Case pc = GetParam();
  const ModelConfig cfg = rt_test::tiny_config(pc.gate, pc.h, pc.w, 3);  // semseg, depth, normals
  torch::manual_seed(20221014);
  MultiTaskModel model(cfg);
  perturb(model);
  if (pc.zero_routers) {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("w_gate") != std::string::npos) p.value().zero_();
  }
  model->eval();
  const std::string dir = rt_test::scratch_dir(std::string("rtparity-") + to_string(pc.gate));
  const std::string path = dir + "/model.safetensors";
  export_model(*model, path);
  const torch::Tensor images = torch::randn({1, 3, cfg.img_h, cfg.img_w});
  const std::vector<float> image(images.data_ptr<float>(), images.data_ptr<float>() + images.numel());

  torch::NoGradGuard ng;
  for (rt::Residency mode : {rt::Residency::resident, rt::Residency::stream}) {
    rt::EngineOptions opt;
    opt.experts = mode;
    opt.winograd = mode == rt::Residency::resident;  // both conv algorithms of the head
    rt::Engine eng(path, opt);
    for (int t = 0; t < cfg.num_tasks(); ++t) {
      const std::string task = cfg.tasks[t].name;
      SCOPED_TRACE(std::string(rt::to_string(mode)) + " " + task);
      ForwardTrace tr;
      const torch::Tensor want = model->forward_task(images, t, &tr);  // [1, C, H, W]
      std::vector<float> got(static_cast<size_t>(want.numel()));
      rt::RunTrace rtr;
      eng.run(t, image.data(), got.data(), &rtr);
      for (int b = 0; b < cfg.depth; ++b)
        EXPECT_LE(rel_err(rtr.block_out[b].data(), tr.block_out[b], task + " block " + std::to_string(b)), kTolOut);
      for (size_t j = 0; j < tr.topk_idx.size(); ++j) {
        const torch::Tensor idx = tr.topk_idx[j].contiguous().to(torch::kLong);
        int differ = 0;
        for (int64_t i = 0; i < idx.numel(); ++i) differ += rtr.topk_idx[j][i] != idx.data_ptr<int64_t>()[i];
        EXPECT_EQ(differ, 0) << "top-k experts differ in MoE layer " << j;
        EXPECT_LE(rel_err(rtr.topk_w[j].data(), tr.topk_w[j], task + " topk_w " + std::to_string(j)), kTolW);
      }
      EXPECT_LE(rel_err(got.data(), want, task + " output"), kTolOut);
    }
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Gates, RuntimeParity,
                         ::testing::Values(Case{GateType::multi, 32, 48, false}, Case{GateType::task_cond, 48, 32, false},
                                           Case{GateType::shared, 32, 32, false}, Case{GateType::multi, 32, 32, true}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.gate)) + "_" + std::to_string(info.param.h) + "x" +
                                  std::to_string(info.param.w) + (info.param.zero_routers ? "_tied" : "");
                         });

}  // namespace
}  // namespace m3vit
