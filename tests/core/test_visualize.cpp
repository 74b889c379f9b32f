// Task pictures (common/visualize.cpp) against hand-computed pixels: the VOC palette's bit pattern,
// (n/|n| + 1)·255/2 truncated for normals, sigmoid + heat ramp for sal/edge, min-max for depth.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/errors.h"
#include "common/visualize.h"

using namespace m3vit;
using RGB = std::array<uint8_t, 3>;

namespace {
RGB px(const Image8& img, int y, int x) {
  const size_t i = (static_cast<size_t>(y) * img.width + x) * 3;
  return {img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]};
}
}  // namespace

TEST(Visualize, VocPalette) {
  EXPECT_EQ(palette_color(0), (RGB{0, 0, 0}));
  EXPECT_EQ(palette_color(1), (RGB{128, 0, 0}));
  EXPECT_EQ(palette_color(2), (RGB{0, 128, 0}));
  EXPECT_EQ(palette_color(3), (RGB{128, 128, 0}));
  EXPECT_EQ(palette_color(4), (RGB{0, 0, 128}));
  EXPECT_EQ(palette_color(8), (RGB{64, 0, 0}));      // bit 3 goes to r's second bit
  EXPECT_EQ(palette_color(15), (RGB{192, 128, 128}));  // VOC person
  EXPECT_EQ(palette_color(20), (RGB{0, 64, 128}));    // VOC tv/monitor
}

TEST(Visualize, HeatRamp) {
  EXPECT_EQ(heat_color(0.0f), (RGB{0, 0, 4}));
  EXPECT_EQ(heat_color(0.5f), (RGB{188, 55, 84}));
  EXPECT_EQ(heat_color(1.0f), (RGB{252, 255, 164}));
  EXPECT_EQ(heat_color(2.0f), (RGB{252, 255, 164}));  // clamped
  EXPECT_EQ(heat_color(-1.0f), (RGB{0, 0, 4}));
  // Half way between stops 0 and 1: (43.5, 8, 57) rounded to nearest.
  EXPECT_EQ(heat_color(0.125f), (RGB{44, 8, 57}));
}

TEST(Visualize, SemsegIsArgmaxThenPalette) {
  // [C=3, H=1, W=3]: pixel 0 -> class 2, pixel 1 -> class 1, pixel 2 ties 0 and 2 -> first (0).
  const std::vector<float> logits = {0.1f, 0.0f, 5.0f,   // c0
                                     0.2f, 3.0f, 1.0f,   // c1
                                     0.9f, 1.0f, 5.0f};  // c2
  const Image8 img = visualize_task("semseg", logits.data(), 3, 1, 3);
  ASSERT_EQ(img.channels, 3);
  ASSERT_EQ(img.width, 3);
  EXPECT_EQ(px(img, 0, 0), palette_color(2));
  EXPECT_EQ(px(img, 0, 1), palette_color(1));
  EXPECT_EQ(px(img, 0, 2), palette_color(0));
}

TEST(Visualize, NormalsAreNormalisedAndTruncated) {
  // Pixels: (0,0,2) -> (127, 127, 255); (3,4,0) -> (204, 229, 127); (0,0,0) -> (127, 127, 127).
  const std::vector<float> logits = {0, 3, 0, 0, 4, 0, 2, 0, 0};
  const Image8 img = visualize_task("normals", logits.data(), 3, 1, 3);
  EXPECT_EQ(px(img, 0, 0), (RGB{127, 127, 255}));
  EXPECT_EQ(px(img, 0, 1), (RGB{204, 229, 127}));
  EXPECT_EQ(px(img, 0, 2), (RGB{127, 127, 127}));
}

TEST(Visualize, SaliencyEdgeUseSigmoidDepthUsesMinMax) {
  const std::vector<float> sal = {0.0f, -40.0f, 40.0f};  // sigmoid 0.5, ~0, ~1
  const Image8 s = visualize_task("edge", sal.data(), 1, 3, 1);  // H=3, W=1
  EXPECT_EQ(px(s, 0, 0), heat_color(0.5f));
  EXPECT_EQ(px(s, 1, 0), heat_color(0.0f));
  EXPECT_EQ(px(s, 2, 0), heat_color(1.0f));
  const std::vector<float> depth = {1, 2, 3, 5};  // -> 0, 0.25, 0.5, 1
  const Image8 d = visualize_task("depth", depth.data(), 1, 2, 2);
  EXPECT_EQ(px(d, 0, 0), heat_color(0.0f));
  EXPECT_EQ(px(d, 0, 1), heat_color(0.25f));
  EXPECT_EQ(px(d, 1, 0), heat_color(0.5f));
  EXPECT_EQ(px(d, 1, 1), heat_color(1.0f));
  const std::vector<float> flat = {2, 2};
  EXPECT_EQ(px(visualize_task("depth", flat.data(), 1, 1, 2), 0, 1), heat_color(0.0f));
}

TEST(Visualize, BadInputNamesTheTask) {
  const std::vector<float> two(8, 0.0f);
  try {
    visualize_task("normals", two.data(), 2, 2, 2);
    ADD_FAILURE();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("normals"), std::string::npos);
  }
  EXPECT_THROW(visualize_task("depth", two.data(), 2, 2, 2), ShapeError);
  EXPECT_THROW(visualize_task("semseg", two.data(), 1, 2, 4), ShapeError);
  EXPECT_THROW(visualize_task("sky", two.data(), 1, 2, 4), ConfigError);
  std::vector<float> nan = {0, NAN, 0, 0};
  try {
    visualize_task("sal", nan.data(), 1, 2, 2);
    ADD_FAILURE();
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("pixel (0, 1)"), std::string::npos) << e.what();
  }
}
