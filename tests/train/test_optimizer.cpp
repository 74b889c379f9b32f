// Optimizer (train/optimizer.cpp) against libtorch's own torch::optim implementations (an independent
// code path of the same torch.optim rules), the expert scales, the state round trip, and the
// learning-rate schedules against hand-computed values.
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/errors.h"
#include "tests/train/train_test_util.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace m3vit {
namespace {

// Two parameters; the second plays an expert. Gradients are fixed functions of the step.
struct Pair {
  torch::Tensor a, b;
};

Pair make_pair_params() {
  torch::manual_seed(11);
  return {torch::randn({4, 3}).requires_grad_(true), torch::randn({5}).requires_grad_(true)};
}

void set_grads(const Pair& p, int step, double b_scale = 1.0) {
  torch::manual_seed(100 + step);
  p.a.mutable_grad() = torch::randn({4, 3});
  p.b.mutable_grad() = torch::randn({5}) * b_scale;
}

std::vector<NamedParameter> named(const Pair& p, bool b_expert) {
  return {{"a", p.a, false}, {"b", p.b, b_expert}};
}

TEST(Optimizer, SgdMatchesTorchWithPerGroupLr) {
  const double lr = 0.05;
  Pair ours = make_pair_params(), ref = make_pair_params();
  OptimizerConfig cfg;
  cfg.type = "sgd", cfg.momentum = 0.9, cfg.weight_decay = 1e-2, cfg.expert_lr_scale = 2.0;
  Optimizer opt(named(ours, true), cfg);
  // Reference: libtorch SGD, experts in a second group with twice the learning rate.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{ref.a},
                      std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(lr).momentum(0.9).weight_decay(1e-2)));
  groups.emplace_back(std::vector<torch::Tensor>{ref.b},
                      std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(2 * lr).momentum(0.9).weight_decay(1e-2)));
  torch::optim::SGD sgd(std::move(groups), torch::optim::SGDOptions(lr));
  for (int s = 0; s < 5; ++s) {
    set_grads(ours, s), set_grads(ref, s);
    opt.step(lr);
    sgd.step();
  }
  EXPECT_TRUE(test::tensors_close("a", ours.a, ref.a, 0, 1e-7));
  EXPECT_TRUE(test::tensors_close("b", ours.b, ref.b, 0, 1e-7));
}

TEST(Optimizer, ExpertGradScaleIsNotLrScale) {
  // grad ×2 with decay unscaled == torch SGD fed with 2·grad for the expert (the 2-GPU FastMoE run).
  const double lr = 0.05;
  Pair ours = make_pair_params(), ref = make_pair_params();
  OptimizerConfig cfg;
  cfg.type = "sgd", cfg.momentum = 0.9, cfg.weight_decay = 1e-2, cfg.expert_grad_scale = 2.0;
  Optimizer opt(named(ours, true), cfg);
  torch::optim::SGD sgd({ref.a, ref.b}, torch::optim::SGDOptions(lr).momentum(0.9).weight_decay(1e-2));
  for (int s = 0; s < 4; ++s) {
    set_grads(ours, s), set_grads(ref, s, 2.0);
    opt.step(lr);
    sgd.step();
  }
  EXPECT_TRUE(test::tensors_close("a", ours.a, ref.a, 0, 1e-7));
  EXPECT_TRUE(test::tensors_close("b", ours.b, ref.b, 0, 1e-7));
}

TEST(Optimizer, AdamAndAdamWMatchTorch) {
  for (const std::string type : {"adam", "adamw"}) {
    const double lr = 1e-2, wd = 0.05;
    Pair ours = make_pair_params(), ref = make_pair_params();
    OptimizerConfig cfg;
    cfg.type = type, cfg.weight_decay = wd;
    Optimizer opt(named(ours, false), cfg);
    std::unique_ptr<torch::optim::Optimizer> torch_opt;
    if (type == "adam")
      torch_opt = std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{ref.a, ref.b},
                                                       torch::optim::AdamOptions(lr).weight_decay(wd));
    else
      torch_opt = std::make_unique<torch::optim::AdamW>(std::vector<torch::Tensor>{ref.a, ref.b},
                                                        torch::optim::AdamWOptions(lr).weight_decay(wd));
    for (int s = 0; s < 6; ++s) {
      set_grads(ours, s), set_grads(ref, s);
      opt.step(lr);
      torch_opt->step();
    }
    EXPECT_TRUE(test::tensors_close(type + " a", ours.a, ref.a, 0, 1e-6));
    EXPECT_TRUE(test::tensors_close(type + " b", ours.b, ref.b, 0, 1e-6));
  }
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  for (const std::string type : {"sgd", "adamw"}) {
    OptimizerConfig cfg;
    cfg.type = type;
    Pair run = make_pair_params();
    Optimizer a(named(run, true), cfg);
    for (int s = 0; s < 3; ++s) set_grads(run, s), a.step(0.01);
    auto state = a.state_dict();
    // A fresh optimizer on a copy of the weights, given the saved state, continues bit for bit.
    Pair copy{run.a.detach().clone().requires_grad_(true), run.b.detach().clone().requires_grad_(true)};
    Optimizer b(named(copy, true), cfg);
    b.load_state_dict(state);
    for (int s = 3; s < 6; ++s) {
      set_grads(run, s), a.step(0.01);
      set_grads(copy, s), b.step(0.01);
    }
    EXPECT_TRUE(torch::equal(run.a, copy.a)) << type;
    EXPECT_TRUE(torch::equal(run.b, copy.b)) << type;
    // Bad state is named.
    auto bad = state;
    bad.begin()->second = torch::zeros({7});
    EXPECT_THROW(b.load_state_dict(bad), FormatError);
    EXPECT_THROW(b.load_state_dict({{"momentum_buffer/nope", torch::zeros({5})}}), FormatError);
  }
  EXPECT_THROW(Optimizer({}, OptimizerConfig{"lamb"}), ConfigError);
}

TEST(Optimizer, SkipsParametersWithoutGradient) {
  Pair p = make_pair_params();
  auto before = p.b.detach().clone();
  Optimizer opt(named(p, false), OptimizerConfig{});
  p.a.mutable_grad() = torch::ones({4, 3});
  opt.step(0.1);
  EXPECT_TRUE(torch::equal(p.b, before));
  EXPECT_EQ(opt.state_dict().count("momentum_buffer/b"), 0u);
  EXPECT_EQ(opt.state_dict().count("momentum_buffer/a"), 1u);
}

TEST(Schedule, PolyPerEpochAsTheAuthors) {
  ScheduleConfig s;  // poly 0.9 per epoch
  EXPECT_DOUBLE_EQ(scheduled_lr(s, 0.002, 0, 100, 0, 0), 0.002);
  // epoch 50 of 100: 0.002 · 0.5^0.9 = 0.0010717735
  EXPECT_NEAR(scheduled_lr(s, 0.002, 50, 100, 12345, 0), 0.0010717735, 1e-10);
  // constant within an epoch, whatever the step
  EXPECT_EQ(scheduled_lr(s, 0.002, 99, 100, 1, 0), scheduled_lr(s, 0.002, 99, 100, 999, 0));
  EXPECT_NEAR(scheduled_lr(s, 0.002, 99, 100, 0, 0), 0.002 * std::pow(0.01, 0.9), 1e-12);
}

TEST(Schedule, PerStepWarmupCosineConstant) {
  ScheduleConfig s;
  s.per_step = true;
  EXPECT_NEAR(scheduled_lr(s, 1.0, 0, 1, 25, 100), std::pow(0.75, 0.9), 1e-12);
  s.warmup_steps = 10;
  EXPECT_NEAR(scheduled_lr(s, 1.0, 0, 1, 4, 100), 0.5 * std::pow(0.96, 0.9), 1e-12);
  s.warmup_steps = 0;
  s.kind = "cosine";
  EXPECT_NEAR(scheduled_lr(s, 1.0, 0, 1, 50, 100), 0.5, 1e-12);
  s.kind = "constant";
  EXPECT_EQ(scheduled_lr(s, 0.3, 5, 10, 50, 100), 0.3);
  s.kind = "step";
  EXPECT_THROW(scheduled_lr(s, 0.3, 5, 10, 50, 100), ConfigError);
}

}  // namespace
}  // namespace m3vit
