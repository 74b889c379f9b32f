#include "serve/worker_pool.h"

#include "common/errors.h"

namespace m3vit::serve {

WorkerPool::WorkerPool(const std::string& model, const rt::EngineOptions& options, int workers, int capacity)
    : capacity_(capacity) {
  if (workers < 1) throw ConfigError("--workers must be >= 1");
  if (capacity < 0) throw ConfigError("--queue must be >= 0");
  // All engines are open before any thread starts: a bad model fails the start, not a request.
  for (int i = 0; i < workers; ++i) engines_.push_back(std::make_unique<rt::Engine>(model, options));
  for (auto& e : engines_) threads_.emplace_back([this, eng = e.get()] { work(*eng); });
}

WorkerPool::~WorkerPool() { shutdown(); }

std::optional<std::future<JobResult>> WorkerPool::try_submit(Job job) {
  std::unique_lock lock(mutex_);
  // An idle worker takes a job at once; the capacity bounds the jobs left waiting beyond those. (A job
  // handed to an idle worker sits in queue_ until that worker wakes, so it counts against the idle.)
  const int idle = static_cast<int>(engines_.size()) - busy_;
  if (stopping_ || static_cast<int>(queue_.size()) >= capacity_ + idle) return std::nullopt;
  queue_.push_back({std::move(job), {}, std::chrono::steady_clock::now()});
  std::future<JobResult> f = queue_.back().promise.get_future();
  lock.unlock();
  wake_.notify_one();
  return f;
}

void WorkerPool::work(rt::Engine& engine) {
  for (;;) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, and nothing left to do
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();

    JobResult r;
    r.queue_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p.queued).count();
    try {
      r.logits.resize(static_cast<size_t>(engine.out_channels(p.job.task)) * engine.config().img_h *
                      engine.config().img_w);
      engine.run(p.job.task, p.job.input.data(), r.logits.data());
      r.times = engine.last_times();
      r.routing = engine.last_routing();
    } catch (...) {
      r.error = std::current_exception();
    }
    // Not busy before the answer leaves: a client that sees its answer sees this worker idle.
    lock.lock();
    --busy_;
    lock.unlock();
    p.promise.set_value(std::move(r));
  }
}

void WorkerPool::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

const ModelConfig& WorkerPool::config() const { return engines_.front()->config(); }

int WorkerPool::queue_length() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(queue_.size());
}

int WorkerPool::busy() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

}  // namespace m3vit::serve
