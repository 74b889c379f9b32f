// generate -> cache in the PASCAL_MT / NYUD_MT layouts -> read with the real loaders -> equals the
// in-memory scene up to JPEG (image) and 8-bit PNG (distilled normals) quantisation.
#include <gtest/gtest.h>

#include <cmath>

#include "common/errors.h"
#include "data/nyud.h"
#include "data/pascal_context.h"
#include "data/scene.h"
#include "data/synthetic.h"
#include "tests/data/test_util.h"

using namespace m3vit;

namespace {

void expect_image_close(const ImageF& got, const ImageF& want, const std::string& id) {
  ASSERT_TRUE(got.same_shape(want)) << id << " " << shape_of(got) << " vs " << shape_of(want);
  double sum = 0;
  for (size_t k = 0; k < got.size(); ++k) sum += std::fabs(got.data[k] - want.data[k]);
  EXPECT_LT(sum / got.size(), 4.0) << id << ": mean JPEG error in levels";
}

constexpr int kH = 44, kW = 60;

}  // namespace

TEST(SyntheticCache, PascalLayoutReadsBackThroughPascalLoader) {
  const std::string dir = m3vit_test::scratch_dir("cache-pascal");
  SyntheticCacheOptions o;
  o.dir = dir;
  o.layout = "pascal";
  o.seed = 4;
  o.train = 6;
  o.val = 3;
  o.height = kH;
  o.width = kW;
  cache_synthetic(o);

  for (const std::string split : {"train", "val"}) {
    PascalOptions po;
    po.root = dir;
    po.split = split;
    PascalContextDataset ds(po);
    ASSERT_EQ(ds.size(), split == "train" ? 6u : 3u);
    EXPECT_EQ(ds.tasks(), (std::vector<std::string>{"semseg", "human_parts", "sal", "normals", "edge"}));
    for (size_t i = 0; i < ds.size(); ++i) {
      const Sample got = ds.get(i);
      const Sample want = render_synthetic_scene(4, split, i, kH, kW).sample;
      ASSERT_EQ(got.id, want.id);
      EXPECT_EQ(got.orig_h, kH);
      EXPECT_EQ(got.orig_w, kW);
      expect_image_close(got.image, want.image, got.id);
      for (const std::string t : {"semseg", "human_parts", "sal", "edge"})
        EXPECT_EQ(got.label(t).data, want.label(t).data) << got.id << " " << t;
      const ImageF &gn = got.label("normals"), &wn = want.label("normals");
      ASSERT_TRUE(gn.same_shape(wn));
      for (size_t k = 0; k < gn.size(); ++k) EXPECT_NEAR(gn.data[k], wn.data[k], 1.0 / 255 + 1e-6) << got.id;
    }
  }
}

TEST(SyntheticCache, NyudLayoutReadsBackThroughNyudLoader) {
  const std::string dir = m3vit_test::scratch_dir("cache-nyud");
  SyntheticCacheOptions o;
  o.dir = dir;
  o.layout = "nyud";
  o.seed = 9;
  o.train = 4;
  o.val = 2;
  o.height = kH;
  o.width = kW;
  cache_synthetic(o);
  NyudOptions no;
  no.root = dir;
  no.split = "train";
  NyudDataset ds(no);
  ASSERT_EQ(ds.size(), 4u);
  for (size_t i = 0; i < ds.size(); ++i) {
    const Sample got = ds.get(i);
    const Sample want = render_synthetic_scene(9, "train", i, kH, kW).sample;
    ASSERT_EQ(got.id, want.id);
    expect_image_close(got.image, want.image, got.id);
    for (const std::string t : {"semseg", "normals", "edge", "depth"})
      EXPECT_EQ(got.label(t).data, want.label(t).data) << got.id << " " << t;
  }
}

TEST(SyntheticCache, RejectsUnknownLayout) {
  SyntheticCacheOptions o;
  o.dir = m3vit_test::scratch_dir("cache-bad");
  o.layout = "cityscapes";
  EXPECT_THROW(cache_synthetic(o), ConfigError);
}
