// The engines behind the server: N workers, each a thread with its own rt::Engine (runs on one engine
// take turns, so parallel runs need one engine each), taking jobs from one bounded queue. A job that
// finds the queue full is refused at once (the server answers 503) rather than waiting: a client
// then knows to come back, and the memory the server holds stays bounded.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine.h"

namespace m3vit::serve {

// One image through one task.
struct Job {
  int task = 0;
  std::vector<float> input;  // [3, img_h, img_w], normalised
};

// What the run gave: the logits and what the engine recorded about the run, or the error it threw.
struct JobResult {
  std::vector<float> logits;     // [C_task, img_h, img_w]
  rt::RunTimes times;
  std::vector<int32_t> routing;  // [moe_layers, tokens, k] (rt::Engine::last_routing)
  double queue_ms = 0;           // time the job waited in the queue for a worker
  std::exception_ptr error;      // set when the engine threw (e.g. NaN in the input)
};

class WorkerPool {
 public:
  // Opens `workers` engines on `model` (each checks the file; the first error throws) and starts
  // their threads. `capacity` is the number of jobs that may wait for a worker.
  WorkerPool(const std::string& model, const rt::EngineOptions& options, int workers, int capacity);
  ~WorkerPool();  // shutdown()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues the job; nullopt when `capacity` jobs are already waiting (or after shutdown).
  std::optional<std::future<JobResult>> try_submit(Job job);
  // Lets the workers finish every queued job, then joins them. Later submissions are refused.
  void shutdown();

  // The model's configuration (the same for every engine), and the engine options in effect.
  const ModelConfig& config() const;
  const rt::Engine& engine() const { return *engines_.front(); }
  int workers() const { return static_cast<int>(engines_.size()); }
  int capacity() const { return capacity_; }
  int queue_length() const;  // jobs waiting
  int busy() const;          // workers running a job

 private:
  struct Pending {
    Job job;
    std::promise<JobResult> promise;
    std::chrono::steady_clock::time_point queued;
  };
  void work(rt::Engine& engine);

  std::vector<std::unique_ptr<rt::Engine>> engines_;
  std::vector<std::thread> threads_;
  const int capacity_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  int busy_ = 0;
  bool stopping_ = false;
};

}  // namespace m3vit::serve
