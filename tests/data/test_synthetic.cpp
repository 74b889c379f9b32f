// Synthetic scenes (data/scene.h, data/synthetic.h): determinism, resolution independence and the
// consistency of the six ground truths with each other and with the camera geometry.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <set>

#include "common/errors.h"
#include "data/edge_maps.h"
#include "data/pascal_context.h"
#include "data/scene.h"
#include "data/synthetic.h"

using namespace m3vit;

namespace {

// Least-squares fit of v = a*u + b*w + c over samples; returns {a, b, c, max residual}.
std::array<double, 4> fit_plane(const std::vector<std::array<double, 3>>& s) {
  double m[3][4] = {};
  for (const auto& p : s) {
    const double r[3] = {p[0], p[1], 1.0};
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) m[i][j] += r[i] * r[j];
      m[i][3] += r[i] * p[2];
    }
  }
  for (int i = 0; i < 3; ++i) {  // Gauss-Jordan with partial pivoting
    int piv = i;
    for (int k = i + 1; k < 3; ++k)
      if (std::fabs(m[k][i]) > std::fabs(m[piv][i])) piv = k;
    for (int j = 0; j < 4; ++j) std::swap(m[i][j], m[piv][j]);
    for (int k = 0; k < 3; ++k)
      if (k != i) {
        const double f = m[k][i] / m[i][i];
        for (int j = 0; j < 4; ++j) m[k][j] -= f * m[i][j];
      }
  }
  const double a = m[0][3] / m[0][0], b = m[1][3] / m[1][1], c = m[2][3] / m[2][2];
  double worst = 0;
  for (const auto& p : s) worst = std::max(worst, std::fabs(a * p[0] + b * p[1] + c - p[2]) / std::fabs(p[2]));
  return {a, b, c, worst};
}

}  // namespace

TEST(Synthetic, DeterministicPerSeedSplitAndIndex) {
  const auto a = render_synthetic_scene(7, "train", 3, 40, 56).sample;
  const auto b = render_synthetic_scene(7, "train", 3, 40, 56).sample;
  EXPECT_EQ(a.image.data, b.image.data);
  for (const auto& t : task_names()) EXPECT_EQ(a.label(t).data, b.label(t).data) << t;
  EXPECT_NE(render_synthetic_scene(8, "train", 3, 40, 56).sample.image.data, a.image.data);
  EXPECT_NE(render_synthetic_scene(7, "val", 3, 40, 56).sample.image.data, a.image.data);
  EXPECT_NE(render_synthetic_scene(7, "train", 4, 40, 56).sample.image.data, a.image.data);
  EXPECT_EQ(a.id, "syn_train_000003");
}

TEST(Synthetic, AnyResolutionSameScene) {
  // The same scene at two resolutions: the class layout agrees where the finer image is subsampled
  // at the coarse pixel centres (3x: centre of coarse pixel i is fine pixel 3i+1).
  const auto lo = render_synthetic_scene(1, "train", 2, 20, 28).sample;
  const auto hi = render_synthetic_scene(1, "train", 2, 60, 84).sample;
  int agree = 0;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 28; ++x) agree += lo.label("semseg").at(0, y, x) == hi.label("semseg").at(0, 3 * y + 1, 3 * x + 1);
  EXPECT_GE(agree, 20 * 28 - 2);  // identical rays; float rounding may flip a grazing pixel
  EXPECT_NO_THROW(render_synthetic_scene(1, "train", 2, 17, 9));
}

TEST(Synthetic, LabelsAreMutuallyConsistent) {
  const int H = 48, W = 64;
  int persons = 0;
  std::set<int> classes_seen;
  for (int i = 0; i < 16; ++i) {
    const SyntheticScene sc = render_synthetic_scene(3, "train", i, H, W);
    const Sample& s = sc.sample;
    const ImageF &sem = s.label("semseg"), &parts = s.label("human_parts"), &sal = s.label("sal"),
                 &nrm = s.label("normals"), &dep = s.label("depth"), &edge = s.label("edge");
    std::set<int> part_ids;
    std::vector<double> lm(H * W);
    for (int k = 0; k < H * W; ++k) {
      const float c = sem.data[k], p = parts.data[k];
      ASSERT_EQ(c, std::floor(c));
      ASSERT_TRUE(c >= 0 && c < kSyntheticClasses);
      ASSERT_TRUE(p >= 0 && p <= 6);
      classes_seen.insert(static_cast<int>(c));
      EXPECT_EQ(sal.data[k], c >= 3 ? 1.f : 0.f);
      EXPECT_EQ(p > 0, c == 6);
      const float nx = nrm.data[k], ny = nrm.data[H * W + k], nz = nrm.data[2 * H * W + k];
      if (c == 0) {
        EXPECT_EQ(dep.data[k], 0.f);
        EXPECT_EQ(nx * nx + ny * ny + nz * nz, 0.f);
      } else {
        EXPECT_GT(dep.data[k], 0.f);
        EXPECT_NEAR(nx * nx + ny * ny + nz * nz, 1.f, 1e-4);
      }
      if (p > 0) part_ids.insert(static_cast<int>(p));
      lm[k] = c + 8 * p;
      EXPECT_EQ(sc.labelmap[k], static_cast<uint16_t>(lm[k]));
      for (int ch = 0; ch < 3; ++ch) {
        const float v = s.image.data[ch * H * W + k];
        ASSERT_TRUE(v >= 0 && v <= 255 && v == std::floor(v));
      }
    }
    EXPECT_EQ(edge.data, label_boundaries(lm, H, W)) << "scene " << i;
    if (part_ids.size() >= 3) ++persons;
  }
  EXPECT_GE(persons, 4);  // about two thirds of the scenes hold a person
  EXPECT_EQ(classes_seen.size(), static_cast<size_t>(kSyntheticClasses));
}

TEST(Synthetic, DepthAndNormalsAgreeWithAPinholeCamera) {
  // On a plane n.P = d seen by a pinhole camera, 1/depth is affine in the pixel coordinates
  // (u', v') = (u + 0.5 - W/2, v + 0.5 - H/2): 1/z = (n_x u' + n_y v') / (f d) + n_z / d. So the floor and
  // the wall give each a constant normal, an exact affine fit, and the focal length f, which must agree
  // between the two planes, lie in the generator's 50-65 degree field of view, and make every normal
  // face the camera.
  const int H = 60, W = 80;
  int checked = 0;
  for (int i = 0; i < 10; ++i) {
    const Sample s = render_synthetic_scene(11, "val", i, H, W).sample;
    const ImageF &sem = s.label("semseg"), &nrm = s.label("normals"), &dep = s.label("depth");
    std::vector<double> focal;
    for (int cls : {1, 2}) {  // floor, wall
      std::vector<std::array<double, 3>> pts;
      double n0[3] = {0, 0, 0};
      bool first = true;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const int k = y * W + x;
          if (sem.data[k] != cls) continue;
          const double n[3] = {nrm.data[k], nrm.data[H * W + k], nrm.data[2 * H * W + k]};
          if (first) std::copy(n, n + 3, n0), first = false;
          for (int j = 0; j < 3; ++j) EXPECT_NEAR(n[j], n0[j], 1e-5);
          pts.push_back({x + 0.5 - W / 2.0, y + 0.5 - H / 2.0, 1.0 / dep.data[k]});
        }
      if (pts.size() < 50) continue;
      const auto [a, b, c, resid] = fit_plane(pts);
      EXPECT_LT(resid, 1e-3) << "scene " << i << " class " << cls;
      const double d = n0[2] / c;  // plane offset
      // f from the larger of the two slopes (the other may be ~0).
      const double f = std::fabs(a) > std::fabs(b) ? n0[0] / (a * d) : n0[1] / (b * d);
      focal.push_back(f);
    }
    if (focal.size() == 2) {
      EXPECT_NEAR(focal[0], focal[1], 1e-2 * focal[0]) << "scene " << i;
      const double hfov = 2 * std::atan(W / 2.0 / focal[0]) * 180 / M_PI;
      EXPECT_TRUE(hfov > 49.9 && hfov < 65.1) << hfov;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const int k = y * W + x;
          if (sem.data[k] == 0) continue;
          const double ray[3] = {(x + 0.5 - W / 2.0) / focal[0], (y + 0.5 - H / 2.0) / focal[0], 1};
          const double dp = nrm.data[k] * ray[0] + nrm.data[H * W + k] * ray[1] + nrm.data[2 * H * W + k] * ray[2];
          EXPECT_LT(dp, 1e-6) << "normal facing away at " << x << "," << y;
        }
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);
}

TEST(Synthetic, PersonPartsAreAnatomical) {
  // Over scenes with a person: the head lies above the torso, the torso above the lower legs.
  int checked = 0;
  for (int i = 0; i < 30 && checked < 5; ++i) {
    const Sample s = render_synthetic_scene(5, "train", i, 96, 96).sample;
    const ImageF& parts = s.label("human_parts");
    double ysum[7] = {}, n[7] = {};
    for (int y = 0; y < 96; ++y)
      for (int x = 0; x < 96; ++x) {
        const int p = static_cast<int>(parts.at(0, y, x));
        ysum[p] += y, n[p] += 1;
      }
    if (n[1] < 3 || n[2] < 3 || n[6] < 3) continue;  // need head, torso and lower legs visible
    EXPECT_LT(ysum[1] / n[1], ysum[2] / n[2]);
    EXPECT_LT(ysum[2] / n[2], ysum[6] / n[6]);
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

TEST(Synthetic, AnnotationStructReproducesThePartMap) {
  for (int i = 0; i < 8; ++i) {
    const SyntheticScene sc = render_synthetic_scene(2, "train", i, 40, 50, true);
    const ImageF& parts = sc.sample.label("human_parts");
    EXPECT_EQ(human_parts_map(sc.anno, 40, 50, "scene").data, parts.data) << "scene " << i;
    // Object masks cover exactly the salient pixels.
    std::vector<int> cover(40 * 50, 0);
    for (const auto& o : sc.anno.objects)
      for (size_t k = 0; k < o.mask.size(); ++k) cover[k] += o.mask[k];
    for (int k = 0; k < 40 * 50; ++k) EXPECT_EQ(cover[k], static_cast<int>(sc.sample.label("sal").data[k]));
  }
}

TEST(Synthetic, DatasetSelectsTasksAndChecksOptions) {
  SyntheticOptions o;
  o.size = 3;
  o.height = 24;
  o.width = 32;
  o.tasks = {"depth", "semseg"};
  SyntheticDataset ds(o);
  EXPECT_EQ(ds.tasks(), (std::vector<std::string>{"semseg", "depth"}));  // canonical order
  const Sample s = ds.get(2);
  EXPECT_EQ(s.labels.size(), 2u);
  EXPECT_EQ(s.image.h, 24);
  EXPECT_THROW(ds.get(3), ConfigError);
  o.tasks = {"depht"};
  EXPECT_THROW(SyntheticDataset{o}, ConfigError);
  o.tasks = {};
  o.height = 4;
  EXPECT_THROW(SyntheticDataset{o}, ConfigError);
}
