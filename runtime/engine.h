// m3vit_runtime: a libtorch-free inference engine for one task of an exported M³ViT model.
//
//   m3vit::rt::Engine eng("model.safetensors");            // load once: check, pack, plan
//   std::vector<float> y = eng.run(eng.task_index("semseg"), image);  // [C, H, W], many times
//
// A single-task pass runs the backbone once with that task's routers and then only that task's head
// (AUTHORS_CODE.md Q24): of the MoE weights it touches the task's router and the experts its tokens are routed
// to. The libtorch model's forward_task computes the same function (tests/model/test_runtime_parity).
// Components: runtime/model_file (load + checks), options (what the caller chooses), task_switch
// (per-task routers and heads), token_queue + moe_layer (reordered MoE), one weight store per kind of
// weight, each resident or streamed behind the same interface: expert_store (experts), dense_store
// (attention and dense MLP layers), head_store (the heads' 3×3 convs); weight_stream (the ring the
// streamed ones share), backbone and pup_head (banded head), run_record (times and trace of a run),
// runtime/ops (oneDNN matmul and conv, attention, LayerNorm, resize).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "runtime/options.h"
#include "runtime/run_record.h"

namespace m3vit::rt {

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
  // Several tasks of one image, outs[i] [C_tasks[i], img_h, img_w] for tasks[i], each equal bit for
  // bit to run(tasks[i], ...). The work their routing allows them to share is done once: with one
  // router for all tasks (the shared gate) or no MoE layer, the whole backbone, then one head per
  // task; with a router per task (multi, task_cond), everything before the first MoE block's MLP.
  // Streamed weights a task does not use are never read (the other tasks' heads and routers, the
  // experts its tokens do not pick). last_times() adds up the passes; last_routing() is the last
  // task's.
  void run_tasks(const std::vector<int>& tasks, const float* image, const std::vector<float*>& outs);

  const RunTimes& last_times() const;
  // The last run's routing: the k experts each token was sent to in each MoE layer, descending gate
  // probability, [moe_layers, N, k] with N = 1 + grid tokens (the cls token first). Empty before the
  // first run and for a model without MoE layers.
  const std::vector<int32_t>& last_routing() const;
  // FLOPs of one image of `task` as counted for efficiency: 2 × the multiply-adds of core/flops.h
  // (matmuls and convs; only the k chosen experts per token).
  double counted_flops(int task) const;
  // Bytes held for weights: everything resident plus the stream buffers; the resident experts; the
  // stream buffers (the weight ring's slots and staging; 0 when nothing is streamed).
  size_t weight_bytes() const;
  size_t expert_bytes() const;
  size_t stream_bytes() const;
  // True when the head's 3×3 convs run as Winograd (runtime/ops/conv.h; bf16: our F(4×4) or F(2×2),
  // int8: our F(2×2)).
  bool head_winograd() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace m3vit::rt
