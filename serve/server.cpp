#include "serve/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/errors.h"
#include "serve/metrics.h"
#include "serve/page.h"
#include "serve/predict.h"
#include "serve/stop_signal.h"
#include "serve/worker_pool.h"

namespace m3vit::serve {

namespace {

using json = nlohmann::json;

// The label /metrics counts a request under: one of our routes, or "other" (so that a scan of
// random paths cannot grow the table without bound).
std::string route_of(const std::string& path) {
  for (const char* r : {"/", "/sample.png", "/healthz", "/metrics", "/v1/model", "/v1/predict"})
    if (path == r) return path;
  return "other";
}

void send(httplib::Response& res, const Answer& a) {
  res.status = a.status;
  if (a.retry_after_s > 0) res.set_header("Retry-After", std::to_string(a.retry_after_s));
  res.set_content(a.body, a.content_type.c_str());
}

// "1"/"true" or "0"/"false" (absent: false); anything else is a 400 naming the parameter.
bool flag(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return false;
  const std::string v = req.get_param_value(name);
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  throw ConfigError(std::string(name) + " must be 1 or 0 (got '" + v + "')");
}

json model_info(const WorkerPool& pool, const ServeOptions& o) {
  const ModelConfig& cfg = pool.config();
  json tasks = json::array();
  for (int t = 0; t < cfg.num_tasks(); ++t)
    tasks.push_back({{"name", cfg.tasks[t].name}, {"channels", pool.engine().out_channels(t)}});
  return {{"model", o.model},
          {"name", cfg.name},
          {"input", {{"channels", cfg.in_chans}, {"height", cfg.img_h}, {"width", cfg.img_w}}},
          {"tasks", tasks},
          {"config", json::parse(config_to_json(cfg))},
          {"runtime",
           {{"precision", rt::to_string(o.engine.precision)},
            {"experts", rt::to_string(o.engine.experts)},
            {"layers", rt::to_string(o.engine.layers)},
            {"threads", o.engine.threads},
            {"workers", pool.workers()},
            {"queue", pool.capacity()},
            {"max_body", o.max_body}}}};
}

void add_routes(httplib::Server& svr, WorkerPool& pool, Metrics& metrics, const ServeOptions& o) {
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(page_html()), "text/html; charset=utf-8");
  });
  svr.Get("/sample.png", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(sample_png()), "image/png");
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  const json info = model_info(pool, o);  // fixed once the engines are open
  svr.Get("/v1/model", [info](const httplib::Request&, httplib::Response& res) {
    res.set_content(info.dump(), "application/json");
  });
  svr.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    const PoolGauges g{pool.queue_length(), pool.capacity(), pool.workers(), pool.busy()};
    res.set_content(metrics.render(g), "text/plain; version=0.0.4");
  });
  // With a content reader httplib leaves the body to the handler. Otherwise it would parse a body sent
  // as application/x-www-form-urlencoded (curl's default for --data-binary) as query parameters,
  // refusing any over 8 KB and letting the body's bytes set `task` or `format`.
  svr.Post("/v1/predict", [&](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
    std::string body;
    // False when the body is over --max-body (httplib has set 413) or the connection broke: the
    // error handler writes the message.
    if (!read([&body](const char* data, size_t n) {
          body.append(data, n);
          return true;
        })) {
      if (res.status < 400) res.status = 400;
      return;
    }
    // Timed from here: the body has arrived; what a slow client takes to send it is not ours.
    const auto t0 = std::chrono::steady_clock::now();
    metrics.enter_predict();
    PredictQuery q;
    q.task = req.get_param_value("task");
    if (req.has_param("format")) q.format = req.get_param_value("format");
    Answer a;
    try {
      q.resize = flag(req, "resize");
      q.picture = flag(req, "picture");
      a = predict(pool, q, body);
    } catch (const Error& e) {
      a = error_answer(400, e.what());
    }
    send(res, a);
    metrics.observe_latency(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    metrics.leave_predict();
  });

  // Answers httplib makes itself (no route: 404; body over the limit: 413) get a JSON message too.
  svr.set_error_handler([max = o.max_body](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler's own error answer
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 404) msg = "no such endpoint: " + req.method + " " + req.path;
    if (res.status == 413) msg = "request body larger than the server's limit of " + std::to_string(max) + " bytes (--max-body)";
    res.set_content(json{{"error", msg}}.dump(), "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(json{{"error", msg}}.dump(), "application/json");
  });
  // Called once per answer, whatever produced it (a route, the error handler, a 413 before routing).
  svr.set_logger([&metrics](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_request(route_of(req.path), res.status);
  });
}

}  // namespace

void run(const ServeOptions& o) {
  if (o.max_body < 1) throw ConfigError("--max-body must be at least 1 byte");
  StopSignal stop;  // first: every thread below inherits the blocked signals
  WorkerPool pool(o.model, o.engine, o.workers, o.queue);
  Metrics metrics;

  httplib::Server svr;
  // A connection holds one of httplib's threads while it is open (keep-alive included). Enough of
  // them that, beyond the requests the workers and the queue hold, others still reach the handler
  // and are told 503 instead of waiting unseen in httplib's own unbounded backlog.
  const size_t threads = static_cast<size_t>(o.workers + o.queue) + 16;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(o.max_body);
  add_routes(svr, pool, metrics, o);

  const int port = o.port == 0 ? svr.bind_to_any_port(o.host) : (svr.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0)
    throw IoError("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                  " (the port is in use, or the host is not an address of this machine)");
  const ModelConfig& cfg = pool.config();
  std::printf("serving  %s (%s, %dx%d) on http://%s:%d/ with %d worker%s, queue %d\n", o.model.c_str(),
              cfg.name.c_str(), cfg.img_w, cfg.img_h, o.host.c_str(), port, o.workers, o.workers > 1 ? "s" : "",
              o.queue);
  std::fflush(stdout);

  std::atomic<bool> over{false};
  stop.watch([&svr, &over](int sig) {
    std::fprintf(stderr, "m3vit serve: %s: finishing the requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    // stop() only acts on a server that is listening: a signal in the instant before listening began waits for it.
    while (!svr.is_running() && !over) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    svr.stop();
  });
  // Returns once stop() closed the listening socket and httplib's threads have answered the requests
  // they had read (each connection ends after its current request).
  svr.listen_after_bind();
  over = true;
  pool.shutdown();
  std::printf("stopped  after answering every request received\n");
}

}  // namespace m3vit::serve
