#include "serve/metrics.h"

#include <sstream>

namespace m3vit::serve {

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{path, status}];
}

void Metrics::observe_latency(double seconds) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) {
      ++bucket_counts_[i];
      break;
    }
  ++latency_count_;  // a time above the last bound counts only in +Inf (the total)
  latency_sum_ += seconds;
}

void Metrics::enter_predict() {
  std::lock_guard lock(mutex_);
  ++in_flight_;
}

void Metrics::leave_predict() {
  std::lock_guard lock(mutex_);
  --in_flight_;
}

std::string Metrics::render(const PoolGauges& pool) const {
  std::lock_guard lock(mutex_);
  std::ostringstream o;
  o.precision(9);
  o << "# HELP m3vit_http_requests_total HTTP requests answered, by route and status code.\n"
       "# TYPE m3vit_http_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    o << "m3vit_http_requests_total{path=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << "\n";
  // Prometheus buckets are cumulative: each counts every observation up to its bound.
  o << "# HELP m3vit_predict_latency_seconds Time from a predict request's body received to its answer.\n"
       "# TYPE m3vit_predict_latency_seconds histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += bucket_counts_[i];
    o << "m3vit_predict_latency_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << cumulative << "\n";
  }
  o << "m3vit_predict_latency_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n"
    << "m3vit_predict_latency_seconds_sum " << latency_sum_ << "\n"
    << "m3vit_predict_latency_seconds_count " << latency_count_ << "\n";
  const auto gauge = [&](const char* name, const char* help, int v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n" << name << " " << v << "\n";
  };
  gauge("m3vit_queue_length", "Jobs waiting for a worker.", pool.queue_length);
  gauge("m3vit_queue_capacity", "Jobs that may wait for a worker before requests are refused with 503.",
        pool.queue_capacity);
  gauge("m3vit_workers", "Workers, each with its own engine.", pool.workers);
  gauge("m3vit_workers_busy", "Workers running a job.", pool.workers_busy);
  gauge("m3vit_requests_in_flight", "Predict requests received and not yet answered.", in_flight_);
  return o.str();
}

}  // namespace m3vit::serve
