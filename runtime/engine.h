// m3vit_runtime: a libtorch-free inference engine for one task of an exported M³ViT model.
//
//   m3vit::rt::Engine eng("model.safetensors");            // load once: check, pack, plan
//   std::vector<float> y = eng.run(eng.task_index("semseg"), image);  // [C, H, W], many times
//
// A single-task pass runs the backbone once with that task's routers and then only that task's head
// (spec §8): of the MoE weights it touches the task's router and the experts its tokens are routed
// to. The libtorch model's forward_task computes the same function (tests/model/test_runtime_parity).
// Components: runtime/model_file (load + checks), task_switch (per-task routers and heads),
// token_queue + moe_layer (reordered MoE), weight_stream (the ring of stream mode), expert_stream
// (resident / streamed experts), layer_stream (streamed dense layers and head convs), pup_head (banded head), runtime/ops (oneDNN matmul and conv, attention, LayerNorm, resize).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/expert_stream.h"
#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

struct EngineOptions {
  Precision precision = Precision::fp32;
  ExpertMode experts = ExpertMode::resident;
  // The attention and dense MLP layers and the heads' 3×3 convs: resident (packed at load) or
  // streamed from the file through the same buffers as the experts (runtime/layer_stream.h).
  ExpertMode layers = ExpertMode::resident;
  // Stream modes: bytes for the weight buffers (0 = two buffers of the largest streamed load).
  size_t memory_budget = 0;
  int threads = 0;           // OpenMP threads for every op; 0 = all hardware threads
  // fp32 head convs as Winograd (runtime/ops/conv.h): 2.7× faster, but the transformed weights take
  // 4× the memory of the heads' 3×3 weights (+160 MB for the five PASCAL heads). false: direct convs.
  bool winograd = true;
};

// Optional record of one run's intermediates (allocates; for tests and debugging only).
struct RunTrace {
  std::vector<std::vector<float>> block_out;    // per block: [N, d]
  std::vector<std::vector<int32_t>> topk_idx;   // per MoE layer: [N, k], descending probability
  std::vector<std::vector<float>> topk_w;       // per MoE layer: [N, k]
  std::vector<std::vector<int32_t>> queue_len;  // per MoE layer: [E] tokens per expert
  std::vector<std::vector<float>> moe_in;       // per MoE layer: [N, d] LN2 output, the router input
};

// Wall-clock split of the last run, in milliseconds.
struct RunTimes {
  double embed = 0, attention = 0, mlp = 0, moe = 0, head = 0, total = 0;
  int experts_computed = 0;  // non-empty expert queues over all MoE layers
  WeightStreamStats stream;  // stream modes: loads, bytes read, time waited for a load
};

class Engine {
 public:
  explicit Engine(const std::string& model_path, const EngineOptions& opt = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelConfig& config() const;
  const EngineOptions& options() const;
  int task_index(const std::string& name) const;  // throws ConfigError naming the known tasks
  int out_channels(int task) const;

  // image: [3, img_h, img_w] fp32, already normalised (ImageNet mean/std, as the model was trained).
  // out: [C_task, img_h, img_w]. Throws ConfigError for a task index out of range.
  void run(int task, const float* image, float* out, RunTrace* trace = nullptr);
  std::vector<float> run(int task, const std::vector<float>& image);

  const RunTimes& last_times() const;
  // FLOPs of one image of `task` as counted for efficiency: 2 × the multiply-adds of model/flops.h
  // (matmuls and convs; only the k chosen experts per token).
  double counted_flops(int task) const;
  // Bytes held for weights: everything resident plus the stream buffers; the resident experts; the
  // stream buffers (the weight ring's slots and staging; 0 when nothing is streamed).
  size_t weight_bytes() const;
  size_t expert_bytes() const;
  size_t stream_bytes() const;
  // True when the head's 3×3 convs run as Winograd (fp32; runtime/ops/conv.h).
  bool head_winograd() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace m3vit::rt
