// The batch loader (data/loader.h): batches depend only on (seed, epoch, batch), whatever the number of
// workers; resume by seek() is exact; every epoch is a permutation; errors surface in order.
#include <gtest/gtest.h>

#include <set>

#include "common/errors.h"
#include "data/loader.h"
#include "data/synthetic.h"

using namespace m3vit;

namespace {

SyntheticDataset small_dataset() {
  SyntheticOptions o;
  o.size = 10;
  o.height = 24;
  o.width = 32;
  return SyntheticDataset(o);
}

LoaderOptions train_options(int workers) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 3;
  o.workers = workers;
  o.prefetch = 3;
  o.augment = augment_config("synthetic", true, 16, 16);
  return o;
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.labels, b.labels);
}

// Fails on one index, to check error propagation.
class FailingDataset : public Dataset {
 public:
  std::string kind() const override { return "synthetic"; }
  const std::vector<std::string>& tasks() const override { return inner_.tasks(); }
  size_t size() const override { return inner_.size(); }
  std::string sample_id(size_t i) const override { return inner_.sample_id(i); }
  Sample get(size_t i) const override {
    if (i == 5) throw FormatError("sample 5 is broken");
    return inner_.get(i);
  }

 private:
  SyntheticDataset inner_ = small_dataset();
};

}  // namespace

TEST(Loader, BatchesIndependentOfWorkerCount) {
  const SyntheticDataset ds = small_dataset();
  Loader l0(ds, train_options(0)), l1(ds, train_options(1)), l2(ds, train_options(2));
  ASSERT_EQ(l0.batches_per_epoch(), 3);  // 4 + 4 + 2, the last batch kept
  for (int i = 0; i < 6; ++i) {
    const Batch a = l0.next(), b = l1.next(), c = l2.next();
    expect_same(a, b);
    expect_same(a, c);
    EXPECT_EQ(a.epoch, i / 3);
    EXPECT_EQ(a.index, i % 3);
    EXPECT_EQ(a.size, i % 3 == 2 ? 2 : 4);
    EXPECT_EQ(a.image.size(), static_cast<size_t>(a.size) * 3 * 16 * 16);
    EXPECT_EQ(a.channels.at("normals"), 3);
    EXPECT_EQ(a.labels.at("normals").size(), static_cast<size_t>(a.size) * 3 * 16 * 16);
    EXPECT_EQ(a.labels.at("depth").size(), static_cast<size_t>(a.size) * 16 * 16);
    EXPECT_EQ(a.orig_h[0], 24);
  }
}

TEST(Loader, SeekResumesExactly) {
  const SyntheticDataset ds = small_dataset();
  Loader full(ds, train_options(2));
  std::vector<Batch> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(full.next());
  Loader resumed(ds, train_options(2));
  resumed.seek({1, 1});
  EXPECT_EQ(resumed.position(), (LoaderPosition{1, 1}));
  for (int i = 4; i < 7; ++i) expect_same(resumed.next(), seq[i]);
  EXPECT_EQ(resumed.position(), (LoaderPosition{2, 1}));
  EXPECT_THROW(resumed.seek({0, 3}), ConfigError);
}

TEST(Loader, EpochsArePermutationsAndAugmentationVaries) {
  const SyntheticDataset ds = small_dataset();
  LoaderOptions o = train_options(0);
  Loader l(ds, o);
  const auto e0 = l.epoch_order(0), e1 = l.epoch_order(1);
  EXPECT_EQ(std::set<size_t>(e0.begin(), e0.end()).size(), 10u);
  EXPECT_EQ(std::set<size_t>(e1.begin(), e1.end()).size(), 10u);
  EXPECT_NE(e0, e1);
  o.same_order_every_epoch = true;  // the authors' sampler
  Loader q(ds, o);
  EXPECT_EQ(q.epoch_order(0), q.epoch_order(5));
  // Same order, but each epoch draws new augmentations.
  const Batch a = q.build_batch(0, 0), b = q.build_batch(1, 0);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_NE(a.image, b.image);
  o.shuffle = false;
  Loader s(ds, o);
  EXPECT_EQ(s.epoch_order(3), (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Loader, DropLastAndRawBatches) {
  const SyntheticDataset ds = small_dataset();
  LoaderOptions o = train_options(0);
  o.drop_last = true;
  EXPECT_EQ(Loader(ds, o).batches_per_epoch(), 2);
  o.apply_transform = false;  // raw samples of one size stack as they are
  Loader raw(ds, o);
  const Batch b = raw.next();
  EXPECT_EQ(b.height, 24);
  EXPECT_EQ(b.width, 32);
  const Sample s0 = ds.get(b.indices[0]);
  EXPECT_TRUE(std::equal(s0.image.data.begin(), s0.image.data.end(), b.image.begin()));
  o.batch_size = 11;
  EXPECT_THROW(Loader(ds, o), ConfigError);
}

TEST(Loader, WorkerErrorsSurfaceInOrder) {
  FailingDataset ds;
  LoaderOptions o = train_options(2);
  o.shuffle = false;  // index 5 is in batch 1
  Loader l(ds, o);
  EXPECT_NO_THROW(l.next());
  try {
    l.next();
    ADD_FAILURE() << "batch 1 should fail";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("sample 5"), std::string::npos);
  }
  EXPECT_NO_THROW(l.next());  // batch 2 is fine
}

// Data parallel (train/distributed.h): the processes' parts of a global batch are contiguous, disjoint,
// near-equal and together the one-process batch, images and augmentation included; a global batch
// that would leave a process empty is an error naming the batch.
TEST(Loader, RankPartsMakeTheGlobalBatch) {
  SyntheticDataset ds = small_dataset();  // 10 samples, batches of 4: 4, 4, 2
  LoaderOptions one = train_options(0);
  Loader whole(ds, one);
  for (int world : {2, 3}) {
    for (int64_t index = 0; index < 2; ++index) {
      const Batch g = whole.build_batch(1, index);
      std::vector<size_t> joined;
      std::vector<float> images;
      std::vector<int> sizes;
      for (int r = 0; r < world; ++r) {
        LoaderOptions o = one;
        o.rank = r;
        o.world_size = world;
        Loader part(ds, o);
        const Batch b = part.build_batch(1, index);
        EXPECT_EQ(b.global_size, g.size);
        sizes.push_back(b.size);
        joined.insert(joined.end(), b.indices.begin(), b.indices.end());
        images.insert(images.end(), b.image.begin(), b.image.end());
      }
      EXPECT_EQ(joined, g.indices) << "world " << world;
      EXPECT_EQ(images, g.image) << "world " << world;
      // 4 over 2: 2 + 2; 4 over 3: 1 + 1 + 2 (floor(n·r/W) boundaries).
      EXPECT_EQ(sizes, world == 2 ? std::vector<int>({2, 2}) : std::vector<int>({1, 1, 2}));
    }
    // The last global batch holds 2 samples: 3 processes cannot share it.
    LoaderOptions o = one;
    o.world_size = world;
    o.rank = world - 1;
    Loader part(ds, o);
    if (world == 3) {
      try {
        part.build_batch(0, 2);
        FAIL() << "a batch of 2 over 3 processes was accepted";
      } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("batch 3 of epoch 1 holds 2 sample(s), fewer than the 3 processes"),
                  std::string::npos)
            << e.what();
      }
    } else {
      EXPECT_EQ(part.build_batch(0, 2).size, 1);
    }
  }
  LoaderOptions bad = one;
  bad.world_size = 2;
  bad.rank = 2;
  EXPECT_THROW(Loader(ds, bad), ConfigError);
}
