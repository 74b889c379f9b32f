// Batched loading with worker threads and a bounded prefetch queue (the role of torch's DataLoader in
// the authors' code, utils/common_config.py:542-570). Batches are contiguous float arrays:
//   image  [B, 3, H, W]            ImageNet-normalised
//   labels [B, C, H, W] per task   C = 3 for normals, else 1 (conventions in data/sample.h)
// Determinism: the sample order of epoch e is a permutation drawn from (seed, e) (or from (seed, 0) for
// every epoch with same_order_every_epoch, the authors' sampler quirk Q14), and sample i of epoch e is
// augmented with the key (seed, e, i). A batch therefore depends only on (seed, epoch, batch index),
// never on thread timing or the number of workers, and seek({epoch, batch}) resumes exactly.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace m3vit {

struct LoaderOptions {
  int batch_size = 8;
  bool shuffle = true;
  bool same_order_every_epoch = false;  // true: the authors' sampler (set_epoch never called, Q14)
  bool drop_last = false;               // the authors keep the last, smaller batch
  uint64_t seed = 0;
  int workers = 2;                      // 0 = build batches in the calling thread
  int prefetch = 4;                     // batches built ahead of the consumer
  bool apply_transform = true;          // false: raw samples (all must have one size)
  AugmentConfig augment;                // train or validation recipe (data/transforms.h)
  // Data parallel (train/distributed.h): this process takes part `rank` of `world_size` contiguous,
  // near-equal parts of every batch of batch_size samples (the global batch), so the processes
  // together see exactly the samples, order and augmentation of a one-process run.
  int rank = 0, world_size = 1;
};

struct Batch {
  int64_t epoch = 0, index = 0;  // position of this batch
  int size = 0, height = 0, width = 0;
  int global_size = 0;           // samples of the whole (global) batch; = size in one process
  std::vector<size_t> indices;   // data set indices of the samples
  std::vector<std::string> ids;
  std::vector<int> orig_h, orig_w;                    // original resolution per sample
  std::vector<float> image;                           // [B, 3, H, W]
  std::map<std::string, std::vector<float>> labels;   // task -> [B, C, H, W]
  std::map<std::string, int> channels;                // task -> C
};

struct LoaderPosition {
  int64_t epoch = 0, batch = 0;
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && batch == o.batch; }
};

class Loader {
 public:
  Loader(const Dataset& dataset, LoaderOptions opts);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // Position of the batch the next call to next() returns.
  LoaderPosition position() const;
  // Continues from `p` (resume); the next batch is exactly the one a fresh run would give there.
  void seek(LoaderPosition p);
  // The next batch; after the last batch of an epoch comes batch 0 of the next. Rethrows, in order,
  // any error a worker met while loading that batch.
  Batch next();

  // Sample order of an epoch (data set indices).
  std::vector<size_t> epoch_order(int64_t epoch) const;
  // Builds one batch synchronously (what the workers run).
  Batch build_batch(int64_t epoch, int64_t index) const;

 private:
  void start_workers();
  void stop_workers();
  void worker_loop();

  const Dataset& ds_;
  LoaderOptions opts_;
  int64_t batches_per_epoch_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
  int64_t consumer_ = 0;  // global sequence number of the next batch to hand out
  int64_t claimed_ = 0;   // next sequence number a worker will build
  struct Result {
    std::unique_ptr<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Result> ready_;
  // Small cache of epoch orders (workers of adjacent epochs).
  mutable std::mutex order_mu_;
  mutable std::map<int64_t, std::vector<size_t>> orders_;
};

}  // namespace m3vit
