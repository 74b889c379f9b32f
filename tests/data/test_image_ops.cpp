// OpenCV-compatible resize / warpAffine / flip (data/image_ops.h) on hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>

#include "data/image_ops.h"
#include "data/rng.h"

using namespace m3vit;

namespace {

ImageF from_rows(const std::vector<std::vector<float>>& rows) {
  ImageF im(1, static_cast<int>(rows.size()), static_cast<int>(rows[0].size()));
  for (int y = 0; y < im.h; ++y)
    for (int x = 0; x < im.w; ++x) im.at(0, y, x) = rows[y][x];
  return im;
}

ImageF random_image(int c, int h, int w, uint64_t seed) {
  ImageF im(c, h, w);
  Rng rng(seed);
  for (float& v : im.data) v = static_cast<float>(rng.uniform(0, 255));
  return im;
}

// Keys' cubic convolution kernel with a = -0.75, written from its definition.
double keys(double d) {
  const double a = -0.75, x = std::fabs(d);
  if (x <= 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

}  // namespace

TEST(ImageOps, ResizeLinearHalfPixelCentresAndReplicatedBorder) {
  // 2x2 -> 4x4: source x = (dx + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped at the borders.
  const ImageF src = from_rows({{0, 10}, {20, 30}});
  const ImageF d = resize(src, 4, 4, Interp::linear);
  const float row0[4] = {0, 2.5f, 7.5f, 10}, row3[4] = {20, 22.5f, 27.5f, 30};
  for (int x = 0; x < 4; ++x) {
    EXPECT_FLOAT_EQ(d.at(0, 0, x), row0[x]);
    EXPECT_FLOAT_EQ(d.at(0, 3, x), row3[x]);
    EXPECT_FLOAT_EQ(d.at(0, 1, x), 0.75f * row0[x] + 0.25f * row3[x]);
    EXPECT_FLOAT_EQ(d.at(0, 2, x), 0.25f * row0[x] + 0.75f * row3[x]);
  }
}

TEST(ImageOps, ResizeNearestUsesFloorOfScaledIndex) {
  const ImageF src = from_rows({{1, 2, 3, 4, 5, 6}});
  const ImageF d = resize(src, 1, 4, Interp::nearest);  // floor(dx * 6/4) = 0, 1, 3, 4
  EXPECT_EQ(d.at(0, 0, 0), 1);
  EXPECT_EQ(d.at(0, 0, 1), 2);
  EXPECT_EQ(d.at(0, 0, 2), 4);
  EXPECT_EQ(d.at(0, 0, 3), 5);
  const ImageF u = resize(from_rows({{7, 9}}), 1, 5, Interp::nearest);  // floor(dx * 0.4) = 0,0,0,1,1
  const float want[5] = {7, 7, 7, 9, 9};
  for (int x = 0; x < 5; ++x) EXPECT_EQ(u.at(0, 0, x), want[x]);
}

TEST(ImageOps, ResizeCubicMatchesKeysKernel) {
  const ImageF src = from_rows({{0, 0, 10, 0}});
  const ImageF d = resize(src, 1, 8, Interp::cubic);
  for (int dx = 0; dx < 8; ++dx) {
    const double fx = (dx + 0.5) * 0.5 - 0.5;
    const int s = static_cast<int>(std::floor(fx));
    double want = 0;
    for (int j = -1; j <= 2; ++j) {
      const int idx = std::clamp(s + j, 0, 3);
      want += keys(fx - (s + j)) * src.at(0, 0, idx);
    }
    EXPECT_NEAR(d.at(0, 0, dx), want, 1e-5) << "dx " << dx;
  }
  // dx = 3: fx = 1.25, the tap at x = 2 has weight W(0.75) = 0.26171875.
  EXPECT_NEAR(d.at(0, 0, 3), 2.6171875, 1e-6);
}

TEST(ImageOps, ResizeSameSizeIsIdentity) {
  const ImageF src = random_image(3, 5, 7, 1);
  for (Interp i : {Interp::nearest, Interp::linear, Interp::cubic}) EXPECT_EQ(resize(src, 5, 7, i).data, src.data);
}

TEST(ImageOps, WarpIdentityAndIntegerTranslation) {
  const ImageF src = random_image(2, 6, 9, 2);
  Affine2x3 id;
  for (Interp i : {Interp::nearest, Interp::linear, Interp::cubic}) {
    const ImageF d = warp_affine(src, id, 6, 9, i);
    for (size_t k = 0; k < src.size(); ++k) EXPECT_FLOAT_EQ(d.data[k], src.data[k]) << to_string(i);
  }
  Affine2x3 t;
  t.m[2] = 2;  // dst(x, y) = src(x - 2, y - 1)
  t.m[5] = 1;
  for (Interp i : {Interp::nearest, Interp::linear, Interp::cubic}) {
    const ImageF d = warp_affine(src, t, 6, 9, i);
    for (int c = 0; c < 2; ++c)
      for (int y = 0; y < 6; ++y)
        for (int x = 0; x < 9; ++x) {
          const float want = (x >= 2 && y >= 1) ? src.at(c, y - 1, x - 2) : 0.f;
          EXPECT_NEAR(d.at(c, y, x), want, 1e-4) << to_string(i) << " " << x << "," << y;
        }
  }
}

TEST(ImageOps, WarpRotation90AboutOpenCvCentre) {
  // getRotationMatrix2D((2, 2), 90, 1) on a 4x4 image: dst(x, y) = src(col 4 - y, row x); row 0 falls
  // outside the source (OpenCV's centre w/2 is half a pixel off the pixel-centre middle 1.5).
  ImageF src(1, 4, 4);
  for (int k = 0; k < 16; ++k) src.data[k] = static_cast<float>(k + 1);
  const ImageF d = warp_affine(src, rotation_matrix_2d(2, 2, 90, 1), 4, 4, Interp::nearest);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(d.at(0, y, x), y == 0 ? 0.f : src.at(0, x, 4 - y)) << x << "," << y;
}

TEST(ImageOps, RotationMatrixTurnsCounterClockwiseOnScreen) {
  const Affine2x3 M = rotation_matrix_2d(5, 3, 30, 1.2);
  auto apply = [&](double x, double y, double& ox, double& oy) {
    ox = M.m[0] * x + M.m[1] * y + M.m[2];
    oy = M.m[3] * x + M.m[4] * y + M.m[5];
  };
  double ox, oy;
  apply(5, 3, ox, oy);  // the centre is fixed
  EXPECT_NEAR(ox, 5, 1e-12);
  EXPECT_NEAR(oy, 3, 1e-12);
  apply(6, 3, ox, oy);  // one pixel right of the centre goes up-right (y points down)
  EXPECT_NEAR(ox, 5 + 1.2 * std::cos(M_PI / 6), 1e-12);
  EXPECT_NEAR(oy, 3 - 1.2 * std::sin(M_PI / 6), 1e-12);
}

TEST(ImageOps, WarpHalfPixelShiftBilinearWithZeroBorder) {
  const ImageF src = from_rows({{2, 4, 8, 16}, {1, 3, 5, 7}});
  Affine2x3 t;
  t.m[2] = -0.5;  // sample at x + 0.5: the mean of two neighbours; the last one reads the 0 border
  const ImageF d = warp_affine(src, t, 2, 4, Interp::linear);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x) {
      const float right = x + 1 < 4 ? src.at(0, y, x + 1) : 0.f;
      EXPECT_FLOAT_EQ(d.at(0, y, x), 0.5f * (src.at(0, y, x) + right));
    }
}

TEST(ImageOps, WarpQuantisesCoordinatesToOneThirtySecond) {
  // A shift of 0.01 px is below OpenCV's 1/32 resolution: bilinear returns the input unchanged.
  const ImageF src = random_image(1, 3, 5, 3);
  Affine2x3 t;
  t.m[2] = -0.01;
  const ImageF d = warp_affine(src, t, 3, 5, Interp::linear);
  for (size_t k = 0; k < src.size(); ++k) EXPECT_FLOAT_EQ(d.data[k], src.data[k]);
}

TEST(ImageOps, FlipHorizontal) {
  ImageF im = from_rows({{1, 2, 3}, {4, 5, 6}});
  flip_horizontal(im);
  EXPECT_EQ(im.data, (std::vector<float>{3, 2, 1, 6, 5, 4}));
}

TEST(ImageOps, RejectsEmptyInputAndBadSize) {
  EXPECT_THROW(resize(ImageF(), 4, 4, Interp::linear), std::exception);
  EXPECT_THROW(resize(from_rows({{1}}), 0, 4, Interp::linear), std::exception);
  EXPECT_THROW(warp_affine(from_rows({{1}}), Affine2x3{}, -1, 4, Interp::cubic), std::exception);
}
