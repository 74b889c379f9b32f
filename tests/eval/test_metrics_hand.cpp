// Metrics of eval/ on tiny hand-computed cases: every expected number below is worked out in the
// comment next to it.
#include <gtest/gtest.h>

#include <cmath>

#include "common/errors.h"
#include "eval/boundary_matching.h"
#include "eval/delta_m.h"
#include "eval/depth_meter.h"
#include "eval/edge_meter.h"
#include "eval/normals_meter.h"
#include "eval/prediction.h"
#include "eval/saliency_meter.h"
#include "eval/segmentation_meter.h"
#include "tests/data/test_util.h"

using namespace m3vit;

namespace {
ImageF row(std::vector<float> v) {
  ImageF m(1, 1, static_cast<int>(v.size()));
  m.data = std::move(v);
  return m;
}
}  // namespace

TEST(MetricsHand, SegmentationCounts) {
  // gt   0 0 1 1 255 2     pred 0 1 1 1 0 0
  // class 0: TP 1, FP 1 (gt 2 -> 0), FN 1 (gt 0 -> 1): IoU 1/3
  // class 1: TP 2, FP 1, FN 0: IoU 2/3;  class 2: TP 0, FN 1: 0;  class 3 never seen: 0
  SegmentationMeter m(4);
  m.update(row({0, 1, 1, 1, 0, 0}), row({0, 0, 1, 1, 255, 2}));
  const auto r = m.result();
  EXPECT_DOUBLE_EQ(r.iou[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.iou[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.iou[2], 0.0);
  EXPECT_DOUBLE_EQ(r.iou[3], 0.0);
  EXPECT_DOUBLE_EQ(r.miou, (1.0 / 3 + 2.0 / 3) / 4);
  // Dataset-level, not a mean of per-image IoUs: a second image adds to the same counts.
  m.update(row({2, 2}), row({2, 2}));  // class 2: TP 2, FN 1 -> 2/3
  EXPECT_DOUBLE_EQ(m.result().iou[2], 2.0 / 3);
  EXPECT_THROW(m.update(row({0, 1}), row({0, 1, 2})), ShapeError);
}

TEST(MetricsHand, SaliencyThresholds) {
  // pred 0.1, 0.5, 0.95 (x255 = 25.5 -> stored 25, 127, 242); gt 0 1 1.
  // tau = 0.2 .. 0.45: mask 0 1 1 -> IoU 1, P 1, R 1.  tau >= 0.5 (127/255 = 0.498 < 0.5): mask 0 0 1 ->
  // IoU 1/2, P 1, R 1/2, F 2/3.  Thresholds 0.2 + 0.05 i: i = 0..5 give 1, i = 6..14 give 1/2.
  SaliencyMeter m;
  m.update(row({25, 127, 242}), row({0, 1, 1}));
  const auto r = m.result();
  for (int i = 0; i < 15; ++i) EXPECT_NEAR(r.mean_iou[i], i <= 5 ? 1.0 : 0.5, 1e-12) << i;
  EXPECT_NEAR(r.miou, 1.0, 1e-12);
  EXPECT_NEAR(r.max_f, 1.0, 1e-9);
  EXPECT_NEAR(r.f[10], 2.0 / 3, 1e-9);
  // 51/255 = 0.2 is not > 0.2: nothing predicted, gt empty -> IoU 1 at tau 0.2.
  SaliencyMeter z;
  z.update(row({51}), row({0}));
  EXPECT_EQ(z.result().mean_iou[0], 1.0);
}

TEST(MetricsHand, NormalsAngles) {
  // gt +z everywhere but one invalid pixel; preds (stored as (n+1)*127.5): +z exactly (0 deg), +x (90 deg),
  // -z (180 deg), and anything at the invalid pixel.
  ImageF gt(3, 1, 4, 0.f), pred(3, 1, 4);
  for (int x = 0; x < 3; ++x) gt.at(2, 0, x) = 1.f;
  const float enc[4][3] = {{127.5f, 127.5f, 255}, {255, 127.5f, 127.5f}, {127.5f, 127.5f, 0}, {0, 0, 0}};
  for (int x = 0; x < 4; ++x)
    for (int c = 0; c < 3; ++c) pred.at(c, 0, x) = enc[x][c];
  NormalsMeter m;
  m.update(pred, gt);
  const auto r = m.result();
  EXPECT_EQ(r.pixels, 3);
  EXPECT_NEAR(r.mean, 90.0, 1e-4);
  EXPECT_NEAR(r.median, 90.0, 1e-4);
  EXPECT_NEAR(r.rmse, std::sqrt((0 + 90.0 * 90 + 180.0 * 180) / 3), 1e-3);
  EXPECT_NEAR(r.within_11_25, 100.0 / 3, 1e-9);
  EXPECT_NEAR(r.within_30, 100.0 / 3, 1e-9);
}

TEST(MetricsHand, DepthErrors) {
  // gt 1 2 0 4, pred 2 2 5 -1: valid 3 pixels; squared errors 1, 0, 25 (the last pred -> 1e-9):
  // the 0-gt pixel is skipped. rmse = sqrt((1 + 0 + (4 - 1e-9)^2) / 3).
  DepthMeter m;
  m.update(row({2, 2, 5, -1}), row({1, 2, 0, 4}));
  const auto r = m.result();
  EXPECT_EQ(r.pixels, 3);
  EXPECT_NEAR(r.rmse, std::sqrt((1.0 + 0 + 16.0) / 3), 1e-9);
  const double l = std::log(4.0) - std::log(1e-9);
  EXPECT_NEAR(r.log_rmse, std::sqrt((std::pow(std::log(1.0) - std::log(2.0), 2) + l * l) / 3), 1e-9);
  EXPECT_THROW(m.update(row({NAN}), row({1})), NumericError);
}

TEST(MetricsHand, MaximumMatchingBeatsGreedy) {
  // gt pixels at x = 1 and x = 3 (row 0); predicted pixels at x = 2 and x = 0; tolerance 1.
  // Greedy nearest-first from x = 2 may take gt 1, leaving pred 0 without a partner; the maximum
  // matching pairs 0-1 and 2-3.
  std::vector<uint8_t> pred = {1, 0, 1, 0, 0}, gt = {0, 1, 0, 1, 0};
  const BoundaryMatch m = match_boundaries(pred, gt, 1, 5, 1.0);
  EXPECT_EQ(m.matched, 2);
  EXPECT_EQ(m.predicted, 2);
  EXPECT_EQ(m.ground_truth, 2);
  // Out of reach: distance sqrt(2) > 1.
  std::vector<uint8_t> p2 = {1, 0, 0, 0}, g2 = {0, 0, 0, 1};
  EXPECT_EQ(match_boundaries(p2, g2, 2, 2, 1.0).matched, 0);
  EXPECT_EQ(match_boundaries(p2, g2, 2, 2, 1.5).matched, 1);
}

TEST(MetricsHand, EdgePerfectAndShiftedPredictions) {
  // A vertical one-pixel boundary at x = 5 in a 10x10 image (diagonal 14.14; ratio 0.1 -> 1.41 px).
  ImageF gt(1, 10, 10, 0.f), exact(1, 10, 10, 0.f), shifted(1, 10, 10, 0.f);
  for (int y = 0; y < 10; ++y) gt.at(0, y, 5) = 1, exact.at(0, y, 5) = 200, shifted.at(0, y, 6) = 200;
  EdgeMeterOptions o;
  o.max_dist_ratio = 0.1;
  EdgeMeter m(o);
  m.update(exact, gt);
  auto r = m.result();
  // 200/255 = 0.784: thresholds 0.01..0.78 detect the line exactly (P = R = F = 1), 0.79.. nothing (F 0).
  EXPECT_DOUBLE_EQ(r.ods_f, 1.0);
  EXPECT_DOUBLE_EQ(r.ois_f, 1.0);
  EXPECT_DOUBLE_EQ(r.f[77], 1.0);
  EXPECT_DOUBLE_EQ(r.f[78], 0.0);
  // AP: recall takes the values 1 (P 1) and 0 (P 0, no prediction); interpolating between them gives
  // P(r) = r at r = 0, 0.01, .., 1: sum = 50.5, AP = 0.505.
  EXPECT_NEAR(r.ap, 0.505, 1e-12);
  EdgeMeter s(o);
  s.update(shifted, gt);  // one pixel off, within 1.41 px
  EXPECT_DOUBLE_EQ(s.result().ods_f, 1.0);
  o.max_dist_ratio = 0.05;  // 0.71 px: the shifted line no longer matches
  EdgeMeter far(o);
  far.update(shifted, gt);
  EXPECT_DOUBLE_EQ(far.result().ods_f, 0.0);
  EXPECT_DOUBLE_EQ(edge_tolerance_for("nyud"), 0.011);
  EXPECT_DOUBLE_EQ(edge_tolerance_for("pascal"), 0.0075);
}

TEST(MetricsHand, DeltaM) {
  // PASCAL references: semseg 0.662, human_parts 0.599, sal 0.663, normals 13.9 (edge left out).
  // Scores: semseg 0.700 (+0.038/0.662), parts 0.599 (0), sal 0.600 (-0.063/0.663), normals 14.5
  // (-(0.6/13.9)); Δm = mean of the four.
  const auto refs = default_delta_m_references("pascal");
  EXPECT_EQ(refs.size(), 4u);
  const std::map<std::string, double> scores = {
      {"semseg", 0.700}, {"human_parts", 0.599}, {"sal", 0.600}, {"normals", 14.5}, {"edge", 0.1}};
  const double want = (0.038 / 0.662 + 0 - 0.063 / 0.663 - 0.6 / 13.9) / 4;
  EXPECT_NEAR(delta_m(scores, refs), want, 1e-12);
  // Edge counts only when asked for.
  const auto with_edge = default_delta_m_references("pascal", true);
  EXPECT_NEAR(delta_m(scores, with_edge), (want * 4 + (0.1 - 0.688) / 0.688) / 5, 1e-12);
  // NYUD: depth RMSE lower is better.
  EXPECT_NEAR(delta_m({{"semseg", 0.439}, {"depth", 0.5}, {"normals", 19.763}}, default_delta_m_references("nyud")),
              (0.085 / 0.585) / 3, 1e-12);
  EXPECT_THROW(delta_m({{"semseg", 0.5}}, refs), ConfigError);  // missing scores
  const auto parsed = parse_delta_m_references("semseg=0.5, depth=0.6");
  EXPECT_DOUBLE_EQ(parsed.at("depth"), 0.6);
  EXPECT_THROW(parse_delta_m_references("semseg=abc"), ConfigError);
  EXPECT_THROW(parse_delta_m_references("segm=0.5"), ConfigError);
  EXPECT_THROW(parse_delta_m_references("semseg=-1"), ConfigError);
  EXPECT_THROW(default_delta_m_references("synthetic"), ConfigError);
  EXPECT_EQ(delta_m_sign("depth"), -1);
  EXPECT_STREQ(delta_m_metric("sal"), "mIoU");
}

TEST(MetricsHand, StoredPredictions) {
  // semseg: argmax over 3 channels of a 1x2 output, then nearest 2x upsampling to 2x4.
  ImageF logits(3, 1, 2);
  logits.data = {0.1f, 5.f, /*c1*/ 2.f, 1.f, /*c2*/ 0.3f, 0.2f};
  const ImageF ids = stored_prediction("semseg", logits, 2, 4);
  EXPECT_EQ(ids.data, (std::vector<float>{1, 1, 0, 0, 1, 1, 0, 0}));
  // sal: 255 sigmoid(0) = 127.5 -> 127; sigmoid(2) = 0.8808 -> 224.6 -> 224.
  const ImageF sal = stored_prediction("sal", row({0.f, 2.f}), 1, 2);
  EXPECT_EQ(sal.data, (std::vector<float>{127, 224}));
  // normals: (3, 0, 4) -> (0.6, 0, 0.8) -> (1.6, 1, 1.8) * 127.5 = 204, 127.5, 229.5 -> 204, 127, 229.
  ImageF n(3, 1, 1);
  n.data = {3, 0, 4};
  EXPECT_EQ(stored_prediction("normals", n, 1, 1).data, (std::vector<float>{204, 127, 229}));
  // depth: bilinear 1x2 -> 1x4 of (1, 3): 1, 1.5, 2.5, 3.
  EXPECT_EQ(stored_prediction("depth", row({1, 3}), 1, 4).data, (std::vector<float>{1, 1.5f, 2.5f, 3}));
  EXPECT_THROW(stored_prediction("normals", row({1, 2}), 1, 2), ShapeError);
  EXPECT_TRUE(all_ignored(row({255, 255})));
  EXPECT_FALSE(all_ignored(row({255, 0})));
}

TEST(MetricsHand, StoredPredictionFilesRoundTrip) {
  const std::string d = m3vit_test::scratch_dir("stored");
  const ImageF sal = row({0, 127, 255});
  save_stored_prediction(d + "/s.png", "sal", sal);
  EXPECT_EQ(load_stored_prediction(d + "/s.png", "sal").data, sal.data);
  const ImageF depth = row({0.5f, 1.25f, 7.f});
  save_stored_prediction(d + "/d.mat", "depth", depth);
  EXPECT_EQ(load_stored_prediction(d + "/d.mat", "depth").data, depth.data);
  ImageF n(3, 1, 2);
  n.data = {0, 255, 10, 20, 128, 129};
  save_stored_prediction(d + "/n.png", "normals", n);
  EXPECT_EQ(load_stored_prediction(d + "/n.png", "normals").data, n.data);
}
