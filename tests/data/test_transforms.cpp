// The authors' augmentation pipeline (data/transforms.h) on hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>

#include "common/errors.h"
#include "data/scene.h"
#include "data/transforms.h"

using namespace m3vit;

namespace {

Sample constant_sample(int h, int w) {
  Sample s;
  s.id = "t";
  s.orig_h = h;
  s.orig_w = w;
  s.image = ImageF(3, h, w, 100.f);
  s.labels["semseg"] = ImageF(1, h, w, 3.f);
  s.labels["normals"] = ImageF(3, h, w, 0.f);
  s.labels["depth"] = ImageF(1, h, w, 2.f);
  s.labels["human_parts"] = ImageF(1, h, w, 0.f);
  return s;
}

AugmentConfig plain(int h, int w, bool train) {
  AugmentConfig c = augment_config("pascal", train, h, w);
  c.normalize = false;
  return c;
}

}  // namespace

TEST(Transforms, FlipMirrorsEveryMapAndNegatesNormalX) {
  Sample s = constant_sample(3, 4);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      s.image.at(0, y, x) = static_cast<float>(10 * y + x);
      s.label("semseg").at(0, y, x) = static_cast<float>(x);
      const float n[3] = {0.6f, 0.f, 0.8f};
      for (int c = 0; c < 3; ++c) s.label("normals").at(c, y, x) = x == 0 ? n[c] : (c == 2 ? 1.f : 0.f);
    }
  AugmentConfig cfg = plain(3, 4, true);
  cfg.scale_rotate = false;
  AugmentDraw d;
  d.flip = true;
  const Sample t = transform_sample(s, cfg, d);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      EXPECT_FLOAT_EQ(t.image.at(0, y, x), (10 * y + (3 - x)) / 255.f);
      EXPECT_EQ(t.label("semseg").at(0, y, x), 3 - x);
    }
  // The column that was x = 0 is now x = 3, with its x component negated.
  EXPECT_NEAR(t.label("normals").at(0, 1, 3), -0.6f, 1e-6);
  EXPECT_NEAR(t.label("normals").at(2, 1, 3), 0.8f, 1e-6);
}

TEST(Transforms, RotationTurnsInPlaneNormalsWithTheImage) {
  // A +90 degree (counter-clockwise on screen) rotation turns a normal pointing right (+x) into one
  // pointing up (-y, image y down): phi = atan2(1, 0), nx = sin(phi + 90) = 0, ny = cos(phi + 90) = -1.
  Sample s = constant_sample(9, 9);
  for (int k = 0; k < 81; ++k) s.label("normals").data[k] = 1.f;
  AugmentConfig cfg = plain(9, 9, true);
  AugmentDraw d;
  d.rot = 90;
  const Sample t = transform_sample(s, cfg, d);
  const ImageF& n = t.label("normals");
  int valid = 0;
  for (int k = 0; k < 81; ++k) {
    if (n.data[k] == kIgnoreLabel) {
      EXPECT_EQ(n.data[81 + k], kIgnoreLabel);
      continue;
    }
    ++valid;
    EXPECT_NEAR(n.data[k], 0.f, 1e-5);
    EXPECT_NEAR(n.data[81 + k], -1.f, 1e-5);
    EXPECT_NEAR(n.data[162 + k], 0.f, 1e-5);
  }
  EXPECT_GE(valid, 72);  // one row falls outside the source (OpenCV's w/2 centre), ignored
  EXPECT_NE(n.at(0, 4, 4), kIgnoreLabel);
}

TEST(Transforms, DepthIsDividedByTheScaleAndZoomOutBorderIgnored) {
  AugmentConfig cfg = plain(12, 12, true);
  AugmentDraw in, out;
  in.scale = 1.25;
  out.scale = 0.8;
  const Sample zin = transform_sample(constant_sample(12, 12), cfg, in);
  for (float v : zin.label("depth").data) EXPECT_FLOAT_EQ(v, 2.f / 1.25f);
  const Sample zout = transform_sample(constant_sample(12, 12), cfg, out);
  int border = 0;
  for (float v : zout.label("depth").data) {
    if (v == kIgnoreLabel) ++border;
    else EXPECT_FLOAT_EQ(v, 2.f / 0.8f);
  }
  EXPECT_GT(border, 0);
  // The zoom-out border of class maps is a valid background 0, not ignore (quirk Q12, docs/AUTHORS_CODE.md).
  int zeros = 0;
  for (float v : zout.label("semseg").data) zeros += v == 0.f;
  EXPECT_EQ(zeros, border);
}

TEST(Transforms, IgnoreRegions) {
  Sample s = constant_sample(4, 5);
  s.label("normals").at(2, 1, 1) = 1.f;  // one valid normal
  s.label("depth").at(0, 2, 3) = 0.f;    // one missing depth
  const Sample t = transform_sample(s, plain(4, 5, false), AugmentDraw{});
  for (float v : t.label("human_parts").data) EXPECT_EQ(v, kIgnoreLabel);  // no person: all ignored
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) {
      const bool valid = y == 1 && x == 1;
      EXPECT_EQ(t.label("normals").at(0, y, x), valid ? 0.f : kIgnoreLabel);
      EXPECT_NEAR(t.label("normals").at(2, y, x), valid ? 1.f : kIgnoreLabel, 1e-6);
      EXPECT_EQ(t.label("depth").at(0, y, x), (y == 2 && x == 3) ? kIgnoreLabel : 2.f);
    }
  s.label("human_parts").at(0, 0, 0) = 2.f;  // any part: the map is kept
  EXPECT_EQ(transform_sample(s, plain(4, 5, false), AugmentDraw{}).label("human_parts").at(0, 3, 3), 0.f);
}

TEST(Transforms, ImageCastAndImageNetNormalisation) {
  Sample s = constant_sample(2, 2);
  s.image.data.assign(12, 128.7f);  // truncated to 128 by the uint8 cast
  const Sample t = transform_sample(s, augment_config("nyud", false, 2, 2), AugmentDraw{});
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(t.image.at(c, 1, 1), (128.f / 255.f - mean[c]) / std[c]);
  EXPECT_TRUE(t.normalized);
  EXPECT_EQ(to_uint8_value(-1.5f, true), 255.f);  // wraps (quirk Q12)
  EXPECT_EQ(to_uint8_value(-0.5f, true), 0.f);
  EXPECT_EQ(to_uint8_value(256.2f, true), 0.f);
  EXPECT_EQ(to_uint8_value(300.f, true), 44.f);
  EXPECT_EQ(to_uint8_value(127.9f, true), 127.f);
  EXPECT_EQ(to_uint8_value(-3.f, false), 0.f);
  EXPECT_EQ(to_uint8_value(300.f, false), 255.f);
}

TEST(Transforms, DrawsFollowTheAuthorsRecipes) {
  const AugmentConfig pascal = augment_config("pascal", true, 8, 8), nyud = augment_config("nyud", true, 8, 8);
  int flips = 0, scales[3] = {0, 0, 0};
  double rot_sum = 0;
  for (uint64_t k = 0; k < 3000; ++k) {
    const AugmentDraw p = draw_augment(pascal, k);
    EXPECT_TRUE(p.rot >= -20 && p.rot <= 20);
    EXPECT_TRUE(p.scale >= 0.75 && p.scale <= 1.25);
    flips += p.flip;
    rot_sum += p.rot;
    const AugmentDraw n = draw_augment(nyud, k);
    EXPECT_EQ(n.rot, 0);
    const int which = n.scale == 1.0 ? 0 : n.scale == 1.2 ? 1 : n.scale == 1.5 ? 2 : -1;
    ASSERT_GE(which, 0) << n.scale;
    scales[which]++;
  }
  EXPECT_NEAR(flips / 3000.0, 0.5, 0.04);
  EXPECT_NEAR(rot_sum / 3000.0, 0.0, 1.0);
  for (int c : scales) EXPECT_NEAR(c / 3000.0, 1.0 / 3, 0.04);
  const AugmentDraw a = draw_augment(pascal, 42), b = draw_augment(pascal, 42);
  EXPECT_EQ(a.flip, b.flip);
  EXPECT_EQ(a.rot, b.rot);
  EXPECT_EQ(a.scale, b.scale);
  const AugmentDraw v = draw_augment(augment_config("pascal", false, 8, 8), 42);
  EXPECT_FALSE(v.flip);
  EXPECT_EQ(v.rot, 0);
  EXPECT_EQ(v.scale, 1);
}

TEST(Transforms, ValidationResizesLabelsNearest) {
  Sample s = constant_sample(3, 4);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) s.label("semseg").at(0, y, x) = static_cast<float>(4 * y + x);
  const Sample t = transform_sample(s, plain(6, 8, false), AugmentDraw{});
  ASSERT_EQ(t.image.h, 6);
  ASSERT_EQ(t.image.w, 8);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(t.label("semseg").at(0, y, x), 4 * (y / 2) + x / 2);
}

TEST(Transforms, SyntheticSceneThroughTheTrainingPipeline) {
  const Sample raw = render_synthetic_scene(1, "train", 0, 40, 52).sample;
  const Sample t = transform_sample(raw, augment_config("synthetic", true, 32, 32), uint64_t{7});
  EXPECT_EQ(t.image.c, 3);
  EXPECT_EQ(t.image.h, 32);
  for (const auto& [task, m] : t.labels) EXPECT_TRUE(m.h == 32 && m.w == 32) << task;
  // Re-normalised normals: n / (|n| + eps) is unit length unless |n| is tiny, which happens where the
  // cubic kernel's ringing meets the zero normals of the sky (the authors' behaviour too).
  const ImageF& n = t.label("normals");
  int valid = 0, unit = 0;
  for (int k = 0; k < 32 * 32; ++k) {
    const float a = n.data[k], b = n.data[1024 + k], c = n.data[2048 + k];
    if (a == kIgnoreLabel) continue;
    ++valid;
    EXPECT_LE(a * a + b * b + c * c, 1.f + 1e-5f);
    unit += std::fabs(a * a + b * b + c * c - 1.f) < 1e-4f;
  }
  EXPECT_GT(valid, 500);
  EXPECT_GT(unit, valid * 9 / 10);
  EXPECT_EQ(t.orig_h, 40);
}

TEST(Transforms, RejectsMismatchedLabelsAndUnknownKind) {
  Sample s = constant_sample(3, 4);
  s.labels["sal"] = ImageF(1, 2, 4);
  EXPECT_THROW(transform_sample(s, plain(3, 4, false), AugmentDraw{}), ShapeError);
  EXPECT_THROW(augment_config("cityscapes", true, 8, 8), ConfigError);
}
