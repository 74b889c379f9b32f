// Worker-thread batch loader with a bounded, in-order prefetch queue (data/loader.h).
#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/errors.h"
#include "data/rng.h"

namespace m3vit {

Loader::Loader(const Dataset& dataset, LoaderOptions opts) : ds_(dataset), opts_(std::move(opts)) {
  if (opts_.batch_size < 1) throw ConfigError("batch size must be >= 1");
  if (opts_.workers < 0) throw ConfigError("loader workers must be >= 0");
  if (opts_.prefetch < 1) opts_.prefetch = 1;
  if (opts_.world_size < 1 || opts_.rank < 0 || opts_.rank >= opts_.world_size)
    throw ConfigError("loader: rank " + std::to_string(opts_.rank) + " outside a world of " +
                      std::to_string(opts_.world_size));
  const int64_t n = static_cast<int64_t>(ds_.size());
  if (n == 0) throw ConfigError("data set is empty");
  batches_per_epoch_ = opts_.drop_last ? n / opts_.batch_size : (n + opts_.batch_size - 1) / opts_.batch_size;
  if (batches_per_epoch_ == 0)
    throw ConfigError("data set of " + std::to_string(n) + " samples gives no full batch of " +
                      std::to_string(opts_.batch_size) + " (drop_last)");
  start_workers();
}

Loader::~Loader() { stop_workers(); }

std::vector<size_t> Loader::epoch_order(int64_t epoch) const {
  const int64_t key_epoch = opts_.same_order_every_epoch ? 0 : epoch;
  {
    std::lock_guard<std::mutex> lock(order_mu_);
    auto it = orders_.find(key_epoch);
    if (it != orders_.end()) return it->second;
  }
  std::vector<size_t> order(ds_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (opts_.shuffle) {  // Fisher-Yates from the (seed, epoch) stream
    Rng rng(hash_key({opts_.seed, 0x0badc0deULL, static_cast<uint64_t>(key_epoch)}));
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.next_u64() % i]);
  }
  std::lock_guard<std::mutex> lock(order_mu_);
  if (orders_.size() > 4) orders_.erase(orders_.begin());
  orders_[key_epoch] = order;
  return order;
}

Batch Loader::build_batch(int64_t epoch, int64_t index) const {
  if (index < 0 || index >= batches_per_epoch_)
    throw ConfigError("batch index " + std::to_string(index) + " outside 0.." + std::to_string(batches_per_epoch_ - 1));
  const std::vector<size_t> order = epoch_order(epoch);
  const size_t global_first = static_cast<size_t>(index) * opts_.batch_size;
  const size_t global_last = std::min(order.size(), global_first + opts_.batch_size);
  const size_t n = global_last - global_first, W = static_cast<size_t>(opts_.world_size);
  if (n < W)
    throw ConfigError("batch " + std::to_string(index + 1) + " of epoch " + std::to_string(epoch + 1) + " holds " +
                      std::to_string(n) + " sample(s), fewer than the " + std::to_string(W) +
                      " processes: choose a batch size or process count that leaves every process a sample");
  // This process's part: [n·r/W, n·(r+1)/W) of the global batch.
  const size_t first = global_first + n * opts_.rank / W;
  const size_t last = global_first + n * (opts_.rank + 1) / W;
  Batch b;
  b.epoch = epoch;
  b.index = index;
  b.size = static_cast<int>(last - first);
  b.global_size = static_cast<int>(n);
  std::vector<Sample> samples;
  samples.reserve(b.size);
  for (size_t j = first; j < last; ++j) {
    const size_t idx = order[j];
    Sample s = ds_.get(idx);
    if (opts_.apply_transform)
      s = transform_sample(std::move(s), opts_.augment,
                           hash_key({opts_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(idx)}));
    b.indices.push_back(idx);
    b.ids.push_back(s.id);
    b.orig_h.push_back(s.orig_h);
    b.orig_w.push_back(s.orig_w);
    samples.push_back(std::move(s));
  }
  // Stack into contiguous [B, C, H, W] arrays.
  const Sample& s0 = samples.front();
  b.height = s0.image.h;
  b.width = s0.image.w;
  for (const Sample& s : samples) {
    if (s.image.h != b.height || s.image.w != b.width)
      throw ShapeError("batch of sample '" + s.id + "': image " + shape_of(s.image) + " differs from '" + s0.id +
                       "' " + shape_of(s0.image) + " (enable the transform to resize)");
    if (s.labels.size() != s0.labels.size())
      throw ShapeError("batch: sample '" + s.id + "' has other tasks than '" + s0.id + "'");
  }
  const size_t plane = static_cast<size_t>(b.height) * b.width;
  b.image.resize(static_cast<size_t>(b.size) * 3 * plane);
  for (int i = 0; i < b.size; ++i)
    std::memcpy(b.image.data() + static_cast<size_t>(i) * 3 * plane, samples[i].image.data.data(), 3 * plane * sizeof(float));
  for (const auto& [task, m0] : s0.labels) {
    const int C = m0.c;
    b.channels[task] = C;
    auto& dst = b.labels[task];
    dst.resize(static_cast<size_t>(b.size) * C * plane);
    for (int i = 0; i < b.size; ++i) {
      const ImageF& m = samples[i].label(task);
      if (!m.same_shape(m0))
        throw ShapeError("batch: " + task + " of sample '" + samples[i].id + "' is " + shape_of(m) + ", expected " +
                         shape_of(m0));
      std::memcpy(dst.data() + static_cast<size_t>(i) * C * plane, m.data.data(), C * plane * sizeof(float));
    }
  }
  return b;
}

void Loader::start_workers() {
  stop_ = false;
  claimed_ = consumer_;
  for (int i = 0; i < opts_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  ready_.clear();
}

void Loader::worker_loop() {
  while (true) {
    int64_t seq;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return stop_ || claimed_ < consumer_ + opts_.prefetch; });
      if (stop_) return;
      seq = claimed_++;
    }
    Result r;
    try {
      r.batch = std::make_unique<Batch>(build_batch(seq / batches_per_epoch_, seq % batches_per_epoch_));
    } catch (...) {
      r.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      ready_[seq] = std::move(r);
    }
    cv_ready_.notify_all();
  }
}

LoaderPosition Loader::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {consumer_ / batches_per_epoch_, consumer_ % batches_per_epoch_};
}

void Loader::seek(LoaderPosition p) {
  if (p.epoch < 0 || p.batch < 0 || p.batch >= batches_per_epoch_)
    throw ConfigError("loader position (epoch " + std::to_string(p.epoch) + ", batch " + std::to_string(p.batch) +
                      ") is outside the " + std::to_string(batches_per_epoch_) + " batches of an epoch");
  stop_workers();
  consumer_ = p.epoch * batches_per_epoch_ + p.batch;
  start_workers();
}

Batch Loader::next() {
  if (opts_.workers == 0) {
    const int64_t seq = consumer_++;
    return build_batch(seq / batches_per_epoch_, seq % batches_per_epoch_);
  }
  Result r;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_ready_.wait(lock, [&] { return ready_.count(consumer_) != 0; });
    auto it = ready_.find(consumer_);
    r = std::move(it->second);
    ready_.erase(it);
    ++consumer_;
  }
  cv_work_.notify_all();
  if (r.error) std::rethrow_exception(r.error);
  return std::move(*r.batch);
}

}  // namespace m3vit
