#include "serve/predict.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "serve/codec.h"

namespace m3vit::serve {

namespace {

using json = nlohmann::json;

// The JSON answer: what the run was, how long each stage took, and where the tokens went.
json describe_run(const ModelConfig& cfg, const std::string& task, int channels, const JobResult& r) {
  json j;
  j["model"] = cfg.name;
  j["task"] = task;
  j["shape"] = {1, channels, cfg.img_h, cfg.img_w};
  const rt::RunTimes& t = r.times;
  j["timing_ms"] = {{"queue", r.queue_ms}, {"embed", t.embed}, {"attention", t.attention}, {"mlp", t.mlp},
                    {"moe", t.moe},        {"head", t.head},   {"total", t.total}};
  // routing is [moe_layers, tokens, k]: count, per layer, the tokens each expert received (a token
  // counts once for each of its k experts, so a layer's counts add up to tokens * k).
  const int layers = static_cast<int>(cfg.moe_blocks.size());
  const int k = cfg.moe_top_k, experts = cfg.moe_experts;
  const int tokens = layers > 0 && k > 0 ? static_cast<int>(r.routing.size() / (static_cast<size_t>(layers) * k)) : 0;
  j["experts"] = layers > 0 ? experts : 0;
  j["top_k"] = layers > 0 ? k : 0;
  j["tokens"] = tokens;
  json moe = json::array();
  std::vector<int> blocks;
  for (int b = 0; b < cfg.depth; ++b)
    if (cfg.is_moe_block(b)) blocks.push_back(b);  // routing's layers in block order
  for (int l = 0; l < layers && tokens > 0; ++l) {
    std::vector<int> counts(static_cast<size_t>(experts), 0);
    const int32_t* ids = r.routing.data() + static_cast<size_t>(l) * tokens * k;
    for (int i = 0; i < tokens * k; ++i)
      if (ids[i] >= 0 && ids[i] < experts) ++counts[static_cast<size_t>(ids[i])];
    moe.push_back({{"block", blocks[static_cast<size_t>(l)]}, {"tokens_per_expert", counts}});
  }
  j["moe_layers"] = moe;
  return j;
}

Answer encode(const ModelConfig& cfg, const PredictQuery& q, int channels, const JobResult& r) {
  for (float v : r.logits)  // as `m3vit run` checks before it writes anything
    if (!std::isfinite(v)) throw NumericError("task " + q.task + ": the logits contain NaN or Inf");
  Answer a;
  if (q.format == "npy") {
    a.content_type = "application/octet-stream";
    a.body = logits_npy(r.logits.data(), channels, cfg.img_h, cfg.img_w);
  } else if (q.format == "png") {
    a.content_type = "image/png";
    a.body = picture_png(q.task, r.logits.data(), channels, cfg.img_h, cfg.img_w);
  } else {
    json j = describe_run(cfg, q.task, channels, r);
    if (q.picture) j["picture_png_base64"] = base64(picture_png(q.task, r.logits.data(), channels, cfg.img_h, cfg.img_w));
    a.content_type = "application/json";
    a.body = j.dump();
  }
  return a;
}

}  // namespace

Answer error_answer(int status, const std::string& message) {
  Answer a;
  a.status = status;
  a.content_type = "application/json";
  a.body = json{{"error", message}}.dump();
  return a;
}

Answer predict(WorkerPool& pool, const PredictQuery& q, const std::string& body) {
  const ModelConfig& cfg = pool.config();
  try {
    if (q.format != "png" && q.format != "npy" && q.format != "json")
      return error_answer(400, "format must be png, npy or json (got '" + q.format + "')");
    if (q.task.empty()) return error_answer(400, "give the task to run: /v1/predict?task=NAME");
    int task = 0;
    try {
      task = pool.engine().task_index(q.task);
    } catch (const ConfigError& e) {
      return error_answer(404, e.what());  // the CLI's message, naming the known tasks
    }
    std::optional<std::future<JobResult>> pending = pool.try_submit({task, decode_input(body, cfg, q.resize)});
    if (!pending) {
      Answer a = error_answer(503, "the server is busy: " + std::to_string(pool.capacity()) +
                                       " requests are waiting already; retry later");
      a.retry_after_s = 1;
      return a;
    }
    const JobResult r = pending->get();
    if (r.error) std::rethrow_exception(r.error);
    return encode(cfg, q, pool.engine().out_channels(task), r);
  } catch (const Error& e) {
    return error_answer(400, e.what());  // the input's fault: unreadable, wrong size, NaN, ...
  } catch (const std::exception& e) {
    return error_answer(500, e.what());  // ours (e.g. out of memory): the server goes on
  }
}

}  // namespace m3vit::serve
