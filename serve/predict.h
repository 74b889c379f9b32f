// POST /v1/predict: one request from its query and body to its answer, apart from HTTP itself
// (serve/server.cpp routes). The body is decoded here, on the connection's thread, so the workers
// only run the model; the answer is encoded here too.
//   format=png   the task's picture, the bytes `m3vit run --out` writes
//   format=npy   the raw logits [1, C, H, W] float32, the bytes `m3vit run --save-logits` writes
//   format=json  shape, per-stage times, and for each MoE layer the tokens sent to each expert;
//                with picture=1 also the PNG, base64 (what the page shows, from one run)
// Errors: an unknown task 404; a bad query or body 400 (the message `m3vit run` prints for the same
// input, the file named "request body"); a full queue 503 with Retry-After.
#pragma once

#include <string>

#include "serve/worker_pool.h"

namespace m3vit::serve {

struct PredictQuery {
  std::string task;
  std::string format = "png";  // png | npy | json
  bool resize = false;         // scale an image of another size to the model's size
  bool picture = false;        // json: include the picture
};

struct Answer {
  int status = 200;
  std::string content_type;
  std::string body;
  int retry_after_s = 0;  // > 0: send a Retry-After header (503)
};

// {"error": message} with the status.
Answer error_answer(int status, const std::string& message);

// Runs the request on the pool and waits for its worker. Never throws: every error is an answer.
Answer predict(WorkerPool& pool, const PredictQuery& query, const std::string& body);

}  // namespace m3vit::serve
