// The server's counters in the Prometheus text format (version 0.0.4), for GET /metrics:
//   m3vit_http_requests_total{path,code}       every answered request, by route and status code
//   m3vit_predict_latency_seconds              histogram of POST /v1/predict, body received to answer
//   m3vit_queue_length, m3vit_queue_capacity   jobs waiting for a worker, and how many may
//   m3vit_workers, m3vit_workers_busy          engines, and those running a job now
//   m3vit_requests_in_flight                   predict requests between body received and answer
// Thread-safe: httplib's threads record, any thread renders.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace m3vit::serve {

// What the worker pool reports at the moment of a scrape.
struct PoolGauges {
  int queue_length = 0, queue_capacity = 0, workers = 0, workers_busy = 0;
};

class Metrics {
 public:
  // Histogram bucket upper bounds in seconds (plus +Inf): a tiny model answers in milliseconds, the
  // paper's model in seconds on a small CPU.
  static constexpr std::array<double, 12> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  // `path` is a route of the server ("/v1/predict", ...) or "other" for anything else.
  void count_request(const std::string& path, int status);
  void observe_latency(double seconds);
  void enter_predict();
  void leave_predict();
  std::string render(const PoolGauges& pool) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::array<int64_t, kBuckets.size()> bucket_counts_{};  // per bucket, not cumulative
  int64_t latency_count_ = 0;
  double latency_sum_ = 0;
  int in_flight_ = 0;
};

}  // namespace m3vit::serve
