// Laplacian and thinning for edge ground truth (data/edge_maps.h): scikit-image's published thinning
// examples, hand-computed Laplacians, and a scipy.ndimage oracle on random label maps.
#include <gtest/gtest.h>

#include <cmath>

#include "data/edge_maps.h"
#include "data/rng.h"
#include "io/npy.h"
#include "tests/data/test_util.h"

using namespace m3vit;

namespace {

std::vector<uint8_t> grid(const std::vector<std::vector<int>>& rows) {
  std::vector<uint8_t> v;
  for (const auto& r : rows)
    for (int x : r) v.push_back(static_cast<uint8_t>(x != 0));
  return v;
}

}  // namespace

TEST(EdgeMaps, ThinMatchesScikitImageDocstringExample) {
  // skimage.morphology.thin docstring: a 5x3 bar with a stray corner pixel.
  auto img = grid({{0, 1, 0, 0, 0, 0, 0},
                   {0, 0, 1, 1, 1, 0, 0},
                   {0, 0, 1, 1, 1, 0, 0},
                   {0, 0, 1, 1, 1, 0, 0},
                   {0, 0, 1, 1, 1, 0, 0},
                   {0, 0, 1, 1, 1, 0, 0},
                   {0, 0, 0, 0, 0, 0, 0}});
  thin_binary(img, 7, 7);
  EXPECT_EQ(img, grid({{0, 1, 0, 0, 0, 0, 0},
                       {0, 0, 1, 0, 0, 0, 0},
                       {0, 0, 0, 1, 0, 0, 0},
                       {0, 0, 0, 1, 0, 0, 0},
                       {0, 0, 0, 1, 0, 0, 0},
                       {0, 0, 0, 0, 0, 0, 0},
                       {0, 0, 0, 0, 0, 0, 0}}));
}

TEST(EdgeMaps, ThinKeepsTheLoopAroundAHole) {
  // scikit-image's test_noiter: a 5x5 block with a hole thins to a 4-pixel ring.
  auto img = grid({{0, 0, 0, 0, 0, 0, 0},
                   {0, 1, 2, 3, 4, 5, 0},
                   {0, 1, 0, 1, 1, 1, 0},
                   {0, 1, 1, 1, 1, 1, 0},
                   {0, 6, 1, 1, 1, 1, 0},
                   {0, 1, 1, 1, 1, 1, 0},
                   {0, 0, 0, 0, 0, 0, 0}});
  thin_binary(img, 7, 7);
  EXPECT_EQ(img, grid({{0, 0, 0, 0, 0, 0, 0},
                       {0, 0, 1, 0, 0, 0, 0},
                       {0, 1, 0, 1, 0, 0, 0},
                       {0, 0, 1, 0, 0, 0, 0},
                       {0, 0, 0, 0, 0, 0, 0},
                       {0, 0, 0, 0, 0, 0, 0},
                       {0, 0, 0, 0, 0, 0, 0}}));
}

TEST(EdgeMaps, ThinLookupTablesMatchHandCases) {
  // Code bits: 0 E, 1 NE, 2 N, 3 NW, 4 W, 5 SW, 6 S, 7 SE.
  // An isolated pixel and a line end (one neighbour) are never deleted (G2 fails).
  EXPECT_EQ(thin_lut(0)[0], 0);
  EXPECT_EQ(thin_lut(0)[1 << 4], 0);
  // A pixel whose only neighbours are W and S (code 80): G1 and G2 hold; G3 holds (its east side is
  // open) so the first subiteration deletes it, G3' fails ((S or !NW) and W) so the second does not.
  EXPECT_EQ(thin_lut(0)[80], 1);
  EXPECT_EQ(thin_lut(1)[80], 0);
  // Its mirror (E and N, code 5) is kept by the first subiteration and deleted by the second.
  EXPECT_EQ(thin_lut(0)[5], 0);
  EXPECT_EQ(thin_lut(1)[5], 1);
  // An interior pixel (all eight neighbours) is kept.
  EXPECT_EQ(thin_lut(0)[255], 0);
  EXPECT_EQ(thin_lut(1)[255], 0);
}

TEST(EdgeMaps, LaplacianWithReflect101Border) {
  // 2x3 map; border pixels see their mirror across the edge (index -1 -> 1).
  const std::vector<double> m = {1, 2, 4, 8, 16, 32};
  const auto L = laplacian4(m, 2, 3);
  // (0,0): up = m(1,0) = 8, down = 8, left = m(0,1) = 2, right = 2 -> 20 - 4 = 16.
  EXPECT_DOUBLE_EQ(L[0], 8 + 8 + 2 + 2 - 4 * 1);
  // (0,1): up/down 16, left 1, right 4 -> 37 - 8.
  EXPECT_DOUBLE_EQ(L[1], 16 + 16 + 1 + 4 - 4 * 2);
  // (1,2): up/down m(0,2) = 4, left m(1,1) = 16, right mirrored = 16.
  EXPECT_DOUBLE_EQ(L[5], 4 + 4 + 16 + 16 - 4 * 32);
}

TEST(EdgeMaps, StraightBoundaryGivesOnePixelLine) {
  // |Laplacian| > 0 marks columns 3 and 4 (both sides of the boundary); thinning keeps column 3 and,
  // as Guo-Hall thinning does at the open end of a two-pixel-wide bar, drops the top row's pair.
  const int h = 6, w = 8;
  std::vector<double> m(h * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m[y * w + x] = x < 4 ? 3 : 5;
  const auto e = label_boundaries(m, h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) EXPECT_EQ(e[y * w + x], (y >= 1 && x == 3) ? 1.f : 0.f) << x << "," << y;
}

TEST(EdgeMaps, MatchesScipyOracleOnRandomLabelMaps) {
  const std::string dir = m3vit_test::scratch_dir("edges");
  for (int trial = 0; trial < 3; ++trial) {
    const int h = 37 + trial * 5, w = 45 - trial * 3;
    Rng rng(100 + trial);
    std::vector<double> m(h * w, 0);
    for (int r = 0; r < 9; ++r) {  // overlapping rectangles and discs of random classes
      const int cls = rng.below(6), y0 = rng.below(h), x0 = rng.below(w), rh = 3 + rng.below(h / 2), rw = 3 + rng.below(w / 2);
      const bool disc = rng.chance(0.5);
      for (int y = y0; y < std::min(h, y0 + rh); ++y)
        for (int x = x0; x < std::min(w, x0 + rw); ++x) {
          const double dy = (y - y0 - rh / 2.0) / (rh / 2.0), dx = (x - x0 - rw / 2.0) / (rw / 2.0);
          if (!disc || dx * dx + dy * dy <= 1) m[y * w + x] = cls;
        }
    }
    const std::string in = dir + "/labels" + std::to_string(trial) + ".npy", out = dir + "/edges" + std::to_string(trial) + ".npy";
    write_npy(in, DType::F64, {h, w}, m.data());
    ASSERT_EQ(m3vit_test::run_oracle("tests/data/oracle_edges.py", in + " " + out), 0);
    const OwnedTensor want = read_npy(out);
    ASSERT_EQ(want.numel(), h * w);
    const auto got = label_boundaries(m, h, w);
    const float* wp = reinterpret_cast<const float*>(want.bytes.data());
    int diff = 0, count = 0;
    for (int k = 0; k < h * w; ++k) diff += got[k] != wp[k], count += got[k] != 0;
    EXPECT_EQ(diff, 0) << "trial " << trial;
    EXPECT_GT(count, 20);
  }
}

TEST(EdgeMaps, ThinningOfLargeBlobsMatchesScipyOracle) {
  // Thick blobs (a thresholded smooth random field) need many iterations: this exercises the border
  // bookkeeping of thin_binary against the whole-image formulation of the oracle.
  const int h = 50, w = 70;
  Rng rng(7);
  std::vector<double> field(h * w, 0);
  for (int b = 0; b < 12; ++b) {
    const double cy = rng.uniform(0, h), cx = rng.uniform(0, w), r = rng.uniform(4, 16);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) field[y * w + x] += std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (r * r));
  }
  std::vector<double> bin(h * w);
  std::vector<uint8_t> mine(h * w);
  for (int k = 0; k < h * w; ++k) bin[k] = mine[k] = field[k] > 0.5;
  const std::string dir = m3vit_test::scratch_dir("thin");
  write_npy(dir + "/in.npy", DType::F64, {h, w}, bin.data());
  ASSERT_EQ(m3vit_test::run_oracle("tests/data/oracle_edges.py", dir + "/in.npy " + dir + "/out.npy thin"), 0);
  const OwnedTensor want = read_npy(dir + "/out.npy");
  const float* wp = reinterpret_cast<const float*>(want.bytes.data());
  thin_binary(mine, h, w);
  int diff = 0, count = 0;
  for (int k = 0; k < h * w; ++k) diff += mine[k] != wp[k], count += mine[k];
  EXPECT_EQ(diff, 0);
  EXPECT_GT(count, 30);
}
