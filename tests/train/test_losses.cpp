// Losses (train/losses.cpp) against hand-computed values and against tests/train/loss_oracle.py, which
// writes the same losses with torch.nn.functional primitives in float64 and their gradients.
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/errors.h"
#include "tests/train/train_test_util.h"
#include "train/losses.h"
#include "model/tensor_io.h"

namespace m3vit {
namespace {

using test::tensors_close;

TEST(Losses, BalancedBceHandValues) {
  // x = [0, 2], y = [1, 0]: ℓ = [ln 2, ln(1 + e²)]; w = 0.95, divided by the element count 2.
  auto x = torch::tensor({0.0f, 2.0f}).view({1, 1, 1, 2});
  auto y = torch::tensor({1.0f, 0.0f}).view({1, 1, 1, 2});
  const double l0 = std::log(2.0), l1 = std::log(1.0 + std::exp(2.0));
  EXPECT_NEAR(balanced_bce_loss(x, y, 0.95).item<double>(), (0.95 * l0 + 0.05 * l1) / 2, 1e-6);
  // Adaptive weight: one negative of two pixels -> w = 0.5.
  EXPECT_NEAR(balanced_bce_loss(x, y, -1).item<double>(), (0.5 * l0 + 0.5 * l1) / 2, 1e-6);
  // Labels are binarised at 0.5: 0.49 is a negative, 0.5 a positive.
  auto y2 = torch::tensor({0.5f, 0.49f}).view({1, 1, 1, 2});
  EXPECT_NEAR(balanced_bce_loss(x, y2, 0.95).item<double>(), (0.95 * l0 + 0.05 * l1) / 2, 1e-6);
  // Large logits stay finite (the stable form): ℓ(−100, 1) = 100.
  auto big = torch::tensor({-100.0f}).view({1, 1, 1, 1});
  auto one = torch::ones({1, 1, 1, 1});
  EXPECT_NEAR(balanced_bce_loss(big, one, 0.95).item<double>(), 95.0, 1e-3);
}

TEST(Losses, NormalsCountsElementsNotPixels) {
  // One pixel, output (3, 0, 4) -> unit (0.6, 0, 0.8); label (1, 0, 255): 2 valid elements.
  auto out = torch::tensor({3.0f, 0.0f, 4.0f}).view({1, 3, 1, 1});
  auto label = torch::tensor({1.0f, 0.0f, 255.0f}).view({1, 3, 1, 1});
  EXPECT_NEAR(normals_loss(out, label).item<double>(), (0.4 + 0.0) / 2, 1e-6);
  // No valid element: 0 / 1e-6 = 0, not NaN.
  auto none = torch::full({1, 3, 1, 1}, 255.0f);
  EXPECT_EQ(normals_loss(out, none).item<double>(), 0.0);
}

TEST(Losses, CrossEntropyHandValueAndIgnore) {
  // Two pixels, two classes, logits (0, ln 3) at both; labels 1 and 255 -> −log(3/4).
  auto x = torch::zeros({1, 2, 1, 2});
  x.index_put_({0, 1}, std::log(3.0f));
  auto y = torch::tensor({1.0f, 255.0f}).view({1, 1, 1, 2});
  EXPECT_NEAR(softmax_ce_loss(x, y).item<double>(), -std::log(0.75), 1e-6);
  // A class id that is neither valid nor 255 is an error naming the range.
  auto bad = torch::tensor({2.0f, 0.0f}).view({1, 1, 1, 2});
  EXPECT_THROW(softmax_ce_loss(x, bad), ShapeError);
  EXPECT_THROW(task_loss("depth", x, y, {}), ShapeError);
  EXPECT_THROW(task_loss("segmentation", x, y, {}), ConfigError);
}

TEST(Losses, MatchesOracleWithGradients) {
  torch::manual_seed(7);
  const int B = 2, H = 6, W = 7;
  std::map<std::string, torch::Tensor> in;
  // semseg: 5 classes, about a quarter of the pixels ignored.
  auto ce_x = torch::randn({B, 5, H, W}) * 2;
  auto ce_y = torch::randint(0, 5, {B, 1, H, W}).to(torch::kFloat);
  ce_y.masked_fill_(torch::rand({B, 1, H, W}) < 0.25, 255.0);
  in["ce.x"] = ce_x, in["ce.y"] = ce_y;
  // edge / sal: logits with extremes to exercise the stable form; soft labels binarised at 0.5.
  auto bce_x = torch::randn({B, 1, H, W}) * 4;
  bce_x.index_put_({0, 0, 0, 0}, 40.0f);
  bce_x.index_put_({1, 0, 0, 0}, -40.0f);
  auto bce_y = torch::rand({B, 1, H, W});
  in["edge.x"] = bce_x, in["edge.y"] = bce_y;
  in["sal.x"] = bce_x * 0.5, in["sal.y"] = (bce_y > 0.7).to(torch::kFloat);
  // normals: unit labels, some whole pixels and some single elements marked 255.
  auto n_y = torch::randn({B, 3, H, W});
  n_y = n_y / n_y.norm(2, {1}, true);
  n_y.masked_fill_((torch::rand({B, 1, H, W}) < 0.2).expand({B, 3, H, W}), 255.0);
  n_y.masked_fill_(torch::rand({B, 3, H, W}) < 0.05, 255.0);
  in["normals.x"] = torch::randn({B, 3, H, W}), in["normals.y"] = n_y;
  // depth: positive targets with holes.
  auto d_y = torch::rand({B, 1, H, W}) * 5 + 0.5;
  d_y.masked_fill_(torch::rand({B, 1, H, W}) < 0.3, 255.0);
  in["depth.x"] = torch::randn({B, 1, H, W}) + 2, in["depth.y"] = d_y;

  const std::string dir = test::scratch_dir("losses");
  save_tensors(dir + "/in.safetensors", in);
  ASSERT_EQ(test::run_oracle("tests/train/loss_oracle.py", dir + "/in.safetensors " + dir + "/out.safetensors"), 0);
  auto want = load_tensors(dir + "/out.safetensors");

  const std::map<std::string, std::string> task_of = {
      {"ce", "semseg"}, {"edge", "edge"}, {"sal", "sal"}, {"normals", "normals"}, {"depth", "depth"}};
  for (const auto& [c, task] : task_of) {
    auto x = in[c + ".x"].clone().requires_grad_(true);
    auto loss = task_loss(task, x, in[c + ".y"], LossOptions{});
    loss.backward();
    EXPECT_TRUE(tensors_close(c + " loss", loss, want.at(c + ".loss"), 1e-5, 1e-7));
    // Gradients are O(1/numel); float32 against float64.
    EXPECT_TRUE(tensors_close(c + " grad", x.grad(), want.at(c + ".grad"), 1e-4, 1e-8));
  }
}

TEST(Losses, MultiTaskWeightsTamAndNanQuirk) {
  torch::manual_seed(3);
  const int B = 2, H = 4, W = 4;
  auto seg_y = torch::randint(0, 3, {B, 1, H, W}).to(torch::kFloat);
  auto parts_void = torch::full({B, 1, H, W}, 255.0f);  // no person anywhere: CE is NaN
  auto dep_y = torch::rand({B, 1, H, W}) + 1;
  std::map<std::string, torch::Tensor> preds = {
      {"semseg", torch::randn({B, 3, H, W})}, {"human_parts", torch::randn({B, 7, H, W}, torch::requires_grad())},
      {"depth", torch::randn({B, 1, H, W})}, {"tam_level0_semseg", torch::randn({B, 3, H, W})},
      {"tam_level0_human_parts", torch::randn({B, 7, H, W})}, {"tam_level0_depth", torch::randn({B, 1, H, W})}};
  std::map<std::string, torch::Tensor> labels = {{"semseg", seg_y}, {"human_parts", parts_void}, {"depth", dep_y}};
  LossOptions opt;
  opt.weights = {{"semseg", 1.0}, {"human_parts", 2.0}, {"depth", 3.0}};
  const std::vector<std::string> tasks = {"semseg", "human_parts", "depth"};

  auto r = multi_task_loss(preds, labels, tasks, opt, /*tam=*/true);
  double want = 0;
  for (const auto& t : tasks) {
    for (const std::string p : {"", "tam_level0_"}) {
      double v = t == "human_parts" ? 0.0 : task_loss(t, preds[p + t], labels[t], opt).item<double>();
      EXPECT_NEAR(r.parts.at(p + t), v, 1e-6) << p + t;
      want += opt.weights[t] * v;
    }
  }
  EXPECT_NEAR(r.total.item<double>(), want, 1e-5);
  // The NaN human_parts loss leaves a finite (zero) gradient.
  r.total.backward();
  EXPECT_TRUE(torch::isfinite(preds["human_parts"].grad()).all().item<bool>());
  EXPECT_EQ(preds["human_parts"].grad().abs().sum().item<double>(), 0.0);

  // Without TAM only human_parts is protected: a NaN depth loss (all holes) stays NaN.
  std::map<std::string, torch::Tensor> plain = {{"semseg", preds["semseg"]}, {"human_parts", preds["human_parts"]},
                                                {"depth", preds["depth"]}};
  labels["depth"] = torch::full({B, 1, H, W}, 255.0f);
  auto r2 = multi_task_loss(plain, labels, tasks, opt, /*tam=*/false);
  EXPECT_EQ(r2.parts.at("human_parts"), 0.0);
  EXPECT_TRUE(std::isnan(r2.parts.at("depth")));
  // One task only (task-conditioned training) uses only that task's term.
  auto r3 = multi_task_loss(plain, labels, {"semseg"}, opt, false);
  EXPECT_NEAR(r3.total.item<double>(), task_loss("semseg", preds["semseg"], seg_y, opt).item<double>(), 1e-6);
  EXPECT_THROW(multi_task_loss(plain, {}, {"semseg"}, opt, false), ConfigError);
}

}  // namespace
}  // namespace m3vit
