// The task prediction map (common/task_prediction.h) on hand-worked logits.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/errors.h"
#include "common/task_prediction.h"

namespace m3vit {
namespace {

TEST(TaskPrediction, ClassIdsAreTheFirstMaximum) {
  // 3 classes, 1x2 image: pixel 0 -> class 2; pixel 1 ties classes 0 and 1 -> 0 (torch.max's first).
  const float logits[] = {0.f, 5.f, /*class 1*/ 1.f, 5.f, /*class 2*/ 3.f, -1.f};
  EXPECT_EQ(task_prediction("semseg", logits, 3, 1, 2), (std::vector<float>{2.f, 0.f}));
  EXPECT_EQ(task_prediction("human_parts", logits, 3, 1, 2), (std::vector<float>{2.f, 0.f}));
}

TEST(TaskPrediction, NormalsAreUnitVectorsAndZeroStaysZero) {
  const float logits[] = {3.f, 0.f, /*y*/ 0.f, 0.f, /*z*/ 4.f, 0.f};  // (3,0,4)/5; (0,0,0) -> 0 (eps 1e-12)
  const auto n = task_prediction("normals", logits, 3, 1, 2);
  ASSERT_EQ(n.size(), 6u);
  EXPECT_FLOAT_EQ(n[0], 0.6f);
  EXPECT_FLOAT_EQ(n[2], 0.f);
  EXPECT_FLOAT_EQ(n[4], 0.8f);
  EXPECT_EQ(n[1], 0.f);
  EXPECT_EQ(n[5], 0.f);
}

TEST(TaskPrediction, ProbabilitiesAndDepth) {
  const float logits[] = {0.f, 2.f};
  const auto s = task_prediction("sal", logits, 1, 1, 2);
  EXPECT_FLOAT_EQ(s[0], 0.5f);
  EXPECT_NEAR(s[1], 0.880797, 1e-6);  // 1 / (1 + e^-2)
  EXPECT_EQ(task_prediction("edge", logits, 1, 1, 2), s);
  EXPECT_EQ(task_prediction("depth", logits, 1, 2, 1), (std::vector<float>{0.f, 2.f}));
  EXPECT_EQ(prediction_channels("normals"), 3);
  EXPECT_EQ(prediction_channels("depth"), 1);
}

TEST(TaskPrediction, ErrorsNameTheTask) {
  const float two[] = {0.f, 1.f};
  EXPECT_THROW(task_prediction("normals", two, 2, 1, 1), ShapeError);
  EXPECT_THROW(task_prediction("semseg", two, 1, 1, 2), ShapeError);
  EXPECT_THROW(prediction_channels("segm"), ConfigError);
  const float bad[] = {0.f, std::numeric_limits<float>::infinity()};
  try {
    task_prediction("depth", bad, 1, 1, 2);
    ADD_FAILURE() << "no error";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("task depth"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace m3vit
