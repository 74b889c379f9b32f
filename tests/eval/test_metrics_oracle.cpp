// Every metric of eval/ against the numpy/scipy oracle tests/eval/oracle_metrics.py on random arrays.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/edge_maps.h"
#include "data/rng.h"
#include "eval/boundary_matching.h"
#include "eval/depth_meter.h"
#include "eval/edge_meter.h"
#include "eval/normals_meter.h"
#include "eval/saliency_meter.h"
#include "eval/segmentation_meter.h"
#include "io/npy.h"
#include "tests/data/test_util.h"

using namespace m3vit;
using json = nlohmann::json;

namespace {

// Stacks maps into one float32 .npy [N, C, H, W] (C dropped when 1).
void save_stack(const std::string& path, const std::vector<ImageF>& maps) {
  std::vector<float> all;
  for (const auto& m : maps) all.insert(all.end(), m.data.begin(), m.data.end());
  std::vector<int64_t> shape = {static_cast<int64_t>(maps.size())};
  if (maps[0].c > 1) shape.push_back(maps[0].c);
  shape.push_back(maps[0].h);
  shape.push_back(maps[0].w);
  write_npy(path, DType::F32, shape, all.data());
}

json oracle(const std::string& args, const std::string& out) {
  EXPECT_EQ(m3vit_test::run_oracle("tests/eval/oracle_metrics.py", args + " " + out), 0);
  std::ifstream f(out);
  return json::parse(f);
}

// Random blocky label map with values 0..n-1.
ImageF blocks(int h, int w, int n, Rng& rng) {
  ImageF m(1, h, w, static_cast<float>(rng.below(n)));
  for (int r = 0; r < 6; ++r) {
    const int y0 = rng.below(h), x0 = rng.below(w), v = rng.below(n);
    for (int y = y0; y < std::min(h, y0 + 2 + rng.below(h / 2)); ++y)
      for (int x = x0; x < std::min(w, x0 + 2 + rng.below(w / 2)); ++x) m.at(0, y, x) = static_cast<float>(v);
  }
  return m;
}

}  // namespace

TEST(MetricsOracle, SegmentationMeanIoU) {
  const std::string d = m3vit_test::scratch_dir("seg");
  Rng rng(1);
  for (int skip = 0; skip < 2; ++skip) {
    const int n = skip ? 7 : 5;
    std::vector<ImageF> pred, gt;
    for (int i = 0; i < 5; ++i) {
      ImageF g = blocks(20, 30, n, rng), p = g;
      for (size_t k = 0; k < g.size(); ++k) {
        if (rng.chance(0.3)) p.data[k] = static_cast<float>(rng.below(n));
        if (rng.chance(0.1)) g.data[k] = kIgnoreLabel;
      }
      if (i == 3) std::fill(g.data.begin(), g.data.end(), 0.f);          // all background
      if (i == 4) std::fill(g.data.begin(), g.data.end(), kIgnoreLabel);  // all ignored
      pred.push_back(p);
      gt.push_back(g);
    }
    save_stack(d + "/p.npy", pred);
    save_stack(d + "/g.npy", gt);
    const json want = oracle("seg " + std::to_string(n) + " " + std::to_string(skip) + " " + d + "/p.npy " + d + "/g.npy",
                             d + "/o.json");
    SegmentationMeter m(n, skip == 1);
    for (int i = 0; i < 5; ++i) m.update(pred[i], gt[i]);
    const auto r = m.result();
    EXPECT_NEAR(r.miou, want["miou"].get<double>(), 1e-12);
    for (int c = 0; c < n; ++c) EXPECT_NEAR(r.iou[c], want["iou"][c].get<double>(), 1e-12);
    EXPECT_EQ(r.images, skip ? 3 : 5);
  }
}

TEST(MetricsOracle, SaliencyMaxIoUAndMaxF) {
  const std::string d = m3vit_test::scratch_dir("sal");
  Rng rng(2);
  std::vector<ImageF> pred, gt;
  for (int i = 0; i < 6; ++i) {
    ImageF g = blocks(18, 22, 2, rng), p(1, 18, 22);
    for (size_t k = 0; k < g.size(); ++k) {
      const double base = g.data[k] ? rng.uniform(90, 255) : rng.uniform(0, 170);
      p.data[k] = std::floor(static_cast<float>(base));
      if (rng.chance(0.05)) p.data[k] = 51;  // exactly 0.2 * 255: not above the first threshold
    }
    if (i == 5) {  // empty ground truth and a faint prediction: IoU 1 at high thresholds
      std::fill(g.data.begin(), g.data.end(), 0.f);
      for (float& v : p.data) v = std::floor(static_cast<float>(rng.uniform(0, 120)));
    }
    pred.push_back(p);
    gt.push_back(g);
  }
  save_stack(d + "/p.npy", pred);
  save_stack(d + "/g.npy", gt);
  const json want = oracle("sal " + d + "/p.npy " + d + "/g.npy", d + "/o.json");
  SaliencyMeter m;
  for (int i = 0; i < 6; ++i) m.update(pred[i], gt[i]);
  const auto r = m.result();
  EXPECT_NEAR(r.miou, want["miou"].get<double>(), 1e-9);
  EXPECT_NEAR(r.max_f, want["maxf"].get<double>(), 1e-9);
  for (int t = 0; t < 15; ++t) {
    EXPECT_NEAR(r.mean_iou[t], want["mean_iou"][t].get<double>(), 1e-9) << t;
    EXPECT_NEAR(r.f[t], want["f"][t].get<double>(), 1e-9) << t;
  }
}

TEST(MetricsOracle, NormalsAngularErrors) {
  const std::string d = m3vit_test::scratch_dir("normals");
  Rng rng(3);
  std::vector<ImageF> pred, gt;
  for (int i = 0; i < 3; ++i) {
    ImageF g(3, 16, 20), p(3, 16, 20);
    const size_t np = g.plane_size();
    for (size_t k = 0; k < np; ++k) {
      double v[3] = {rng.normal(), rng.normal(), rng.normal() - 1.5};
      const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
      const bool invalid = rng.chance(0.15);
      for (int c = 0; c < 3; ++c) {
        g.data[c * np + k] = invalid ? 0.f : static_cast<float>(v[c] / n);
        const double noisy = v[c] / n + 0.3 * rng.normal();
        p.data[c * np + k] = std::floor(static_cast<float>(std::clamp((noisy + 1) * 127.5, 0.0, 255.0)));
      }
    }
    pred.push_back(p);
    gt.push_back(g);
  }
  save_stack(d + "/p.npy", pred);
  save_stack(d + "/g.npy", gt);
  const json want = oracle("normals " + d + "/p.npy " + d + "/g.npy", d + "/o.json");
  NormalsMeter m;
  for (int i = 0; i < 3; ++i) m.update(pred[i], gt[i]);
  const auto r = m.result();
  EXPECT_EQ(r.pixels, want["n"].get<int64_t>());
  EXPECT_NEAR(r.mean, want["mean"].get<double>(), 1e-4);  // float32 vs float64 arithmetic
  EXPECT_NEAR(r.rmse, want["rmse"].get<double>(), 1e-4);
  EXPECT_NEAR(r.median, want["median"].get<double>(), 2e-4);  // histogram median
  EXPECT_NEAR(r.within_11_25, want["11.25"].get<double>(), 1e-9);
  EXPECT_NEAR(r.within_22_5, want["22.5"].get<double>(), 1e-9);
  EXPECT_NEAR(r.within_30, want["30"].get<double>(), 1e-9);
}

TEST(MetricsOracle, DepthRmseAndLogRmse) {
  const std::string d = m3vit_test::scratch_dir("depth");
  Rng rng(4);
  std::vector<ImageF> pred, gt;
  for (int i = 0; i < 3; ++i) {
    ImageF g(1, 15, 21), p(1, 15, 21);
    for (size_t k = 0; k < g.size(); ++k) {
      g.data[k] = rng.chance(0.2) ? 0.f : static_cast<float>(rng.uniform(0.5, 10));
      p.data[k] = rng.chance(0.05) ? static_cast<float>(-rng.uniform(0, 1)) : g.data[k] + static_cast<float>(rng.normal());
    }
    pred.push_back(p);
    gt.push_back(g);
  }
  save_stack(d + "/p.npy", pred);
  save_stack(d + "/g.npy", gt);
  const json want = oracle("depth " + d + "/p.npy " + d + "/g.npy", d + "/o.json");
  DepthMeter m;
  for (int i = 0; i < 3; ++i) m.update(pred[i], gt[i]);
  EXPECT_NEAR(m.result().rmse, want["rmse"].get<double>(), 1e-6);
  EXPECT_NEAR(m.result().log_rmse, want["log_rmse"].get<double>(), 1e-5);
}

TEST(MetricsOracle, BoundaryMatchingSizeEqualsScipyMaximumMatching) {
  const std::string d = m3vit_test::scratch_dir("match");
  Rng rng(5);
  std::vector<ImageF> pred, gt;
  for (int i = 0; i < 6; ++i) {
    ImageF p(1, 30, 40), g(1, 30, 40);
    const double dp = 0.03 + 0.05 * i, dg = 0.2 - 0.025 * i;
    for (size_t k = 0; k < p.size(); ++k) {
      p.data[k] = rng.chance(dp);
      g.data[k] = rng.chance(dg);
    }
    pred.push_back(p);
    gt.push_back(g);
  }
  save_stack(d + "/p.npy", pred);
  save_stack(d + "/g.npy", gt);
  for (double md : {1.0, 2.5}) {
    const json want = oracle("match " + d + "/p.npy " + d + "/g.npy " + std::to_string(md), d + "/o.json");
    for (int i = 0; i < 6; ++i) {
      std::vector<uint8_t> pb(pred[i].data.begin(), pred[i].data.end()), gb(gt[i].data.begin(), gt[i].data.end());
      EXPECT_EQ(match_boundaries(pb, gb, 30, 40, md).matched, want["matched"][i].get<int64_t>()) << i << " " << md;
    }
  }
}

TEST(MetricsOracle, EdgeOdsOisAp) {
  const std::string d = m3vit_test::scratch_dir("edge");
  Rng rng(6);
  std::vector<ImageF> pred, gt;
  for (int i = 0; i < 3; ++i) {
    const ImageF lab = blocks(24, 30, 4, rng);
    ImageF g(1, 24, 30);
    g.data = label_boundaries(std::vector<double>(lab.data.begin(), lab.data.end()), 24, 30);
    // A soft prediction: strong near true boundaries (shifted by up to a pixel), weak noise elsewhere.
    ImageF p(1, 24, 30, 0.f);
    for (int y = 0; y < 24; ++y)
      for (int x = 0; x < 30; ++x) {
        float v = static_cast<float>(rng.uniform(0, 90));
        if (g.at(0, y, x) > 0) {
          const int yy = std::clamp(y + rng.below(3) - 1, 0, 23), xx = std::clamp(x + rng.below(3) - 1, 0, 29);
          p.at(0, yy, xx) = std::max(p.at(0, yy, xx), std::floor(static_cast<float>(rng.uniform(60, 255))));
        }
        p.at(0, y, x) = std::max(p.at(0, y, x), std::floor(v * static_cast<float>(rng.chance(0.15))));
      }
    pred.push_back(p);
    gt.push_back(g);
  }
  save_stack(d + "/p.npy", pred);
  save_stack(d + "/g.npy", gt);
  const double ratio = 0.05;  // 1.9 px on a 24x30 image
  const json want = oracle("edge " + d + "/p.npy " + d + "/g.npy " + std::to_string(ratio), d + "/o.json");
  EdgeMeterOptions o;
  o.max_dist_ratio = ratio;
  EdgeMeter m(o);
  for (int i = 0; i < 3; ++i) m.update(pred[i], gt[i]);
  const auto r = m.result();
  EXPECT_NEAR(r.ods_f, want["ods_f"].get<double>(), 1e-12);
  EXPECT_NEAR(r.ods_threshold, want["ods_threshold"].get<double>(), 1e-12);
  EXPECT_NEAR(r.ois_f, want["ois_f"].get<double>(), 1e-12);
  EXPECT_NEAR(r.ap, want["ap"].get<double>(), 1e-12);
  for (int t = 0; t < 99; ++t) EXPECT_NEAR(r.f[t], want["f"][t].get<double>(), 1e-12) << t;
  EXPECT_GT(r.ods_f, 0.3);
}
