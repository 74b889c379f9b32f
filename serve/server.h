// `m3vit serve`: the model behind HTTP (docs/SERVE.md). httplib's thread pool accepts connections and
// decodes bodies; a WorkerPool (serve/worker_pool.h) of N engines runs them from a bounded queue.
//   GET  /              the page (serve/page.html)          GET /sample.png   the bundled sample
//   POST /v1/predict    serve/predict.h                      GET /v1/model     config, tasks, input size
//   GET  /healthz       "ok"                                 GET /metrics      serve/metrics.h
#pragma once

#include <cstddef>
#include <string>

#include "runtime/options.h"

namespace m3vit::serve {

struct ServeOptions {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;           // 0: any free port (the one chosen is printed)
  rt::EngineOptions engine;  // every worker's engine
  int workers = 1;           // engines, each running one request at a time
  int queue = 8;             // requests that may wait for a worker; more are answered 503
  size_t max_body = 16u << 20;  // bytes; a larger request body is answered 413
};

// Opens the engines, listens, and prints "serving <model> on http://HOST:PORT/ ..." on stdout. Serves
// until SIGTERM or SIGINT, then stops accepting, answers every request already received, and returns.
// Throws (before serving) for a bad model or option or an address it cannot listen on.
void run(const ServeOptions& options);

}  // namespace m3vit::serve
