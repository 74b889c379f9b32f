// Analytic MAC and parameter accounting of an M³ViT model, per module, torch-free.
//
// MACs (multiply-accumulates) per image, batch 1, eval mode: the matmuls and convolutions only.
// LayerNorm, GELU, softmax, BatchNorm, ReLU, bilinear upsampling and the residual adds are elementwise
// and not counted (they add < 1% at the paper's sizes). The TAM is training-only and costs no MACs
// at inference; its parameters are reported separately.
//
// Formulas (docs/FLOPS.md, N = 1 + h·w tokens, d = embed_dim, hd = d/heads, E experts, top-k, hid = expert
// hidden, c = head channels, C = task channels):
//   patch embed   h·w·d·(in_chans·p²)
//   attention     qkv 3·N·d²,  Q·Kᵀ N²·d,  A·V N²·d,  proj N·d²
//   dense MLP     2·N·d·(d·mlp_ratio)
//   MoE layer     router N·d_gate·E  +  experts k·2·N·d·hid       (only the k chosen experts run)
//   PUP head      9·c·(h·w·d + 4hw·c + 16hw·c + 64hw·c) + 64hw·c·C
// The authors' FLOPs came from thop (train_fastmoe.py:314-321), which sees nn.Conv2d / nn.Linear
// modules only: the attention matmuls (functional), the routers (a raw parameter) and the experts
// (FastMoE's FMoELinear) are invisible to it. `thop_macs` is that visible part.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace m3vit {

// Cost of one module (or of a group of modules) for one image.
struct Cost {
  double macs = 0;       // every multiply-accumulate
  double thop_macs = 0;  // the part thop's nn.Conv2d / nn.Linear hooks count
  Cost& operator+=(const Cost& o) {
    macs += o.macs;
    thop_macs += o.thop_macs;
    return *this;
  }
  friend Cost operator+(Cost a, const Cost& b) { return a += b; }
  friend Cost operator*(double s, Cost a) {
    a.macs *= s;
    a.thop_macs *= s;
    return a;
  }
};

// One line of the per-module table: `count` identical modules in one backbone pass (or one head).
struct CostRow {
  std::string name;  // "patch_embed", "attention.qkv", "moe.experts", "head.conv_3", ...
  int count = 1;     // how many such modules one pass runs (e.g. 12 blocks)
  Cost each;         // cost of one
  Cost total() const { return static_cast<double>(count) * each; }
};

// Parameter counts (stored tensors, BatchNorm running statistics excluded).
struct ParamCount {
  int64_t patch_embed = 0;     // conv weight + bias
  int64_t tokens = 0;          // cls token + positional embedding
  int64_t attention = 0;       // all blocks: norm1, qkv, proj, norm2
  int64_t dense_mlp = 0;       // all dense blocks: fc1 + fc2
  int64_t experts = 0;         // all MoE layers: E experts each (htoh4 + h4toh, weights and biases)
  int64_t routers = 0;         // all MoE layers: w_gate per task (multi) or one (shared, task_cond)
  int64_t task_embedding = 0;  // task_cond only: the one-hot -> D_t MLP
  std::vector<int64_t> heads;  // per task: LayerNorm, 5 convs, 4 BatchNorms (weight + bias)
  int64_t tam = 0;             // training-only TAM modules of the enabled levels
  int64_t backbone() const { return patch_embed + tokens + attention + dense_mlp + experts + routers + task_embedding; }
  int64_t heads_total() const;
  int64_t total() const { return backbone() + heads_total() + tam; }  // = numel of named_parameters()
  // Per task t: parameters one token meets on a single-task pass with task t: the shared backbone,
  // one router per MoE layer, k of the E experts per MoE layer, and head t (no TAM).
  std::vector<int64_t> touched_per_token;
};

struct FlopsReport {
  ModelConfig cfg;
  std::vector<CostRow> backbone_rows;           // one backbone pass with one task's routing
  std::vector<std::vector<CostRow>> head_rows;  // per task
  Cost backbone;                                // sum of backbone_rows
  std::vector<Cost> heads;                      // per task
  ParamCount params;

  // (a) single-task inference: one backbone pass with task t's routing + head t.
  Cost single_task(int t) const { return backbone + heads.at(t); }
  // (b) the authors' all-task inference (models.py:225-263): one backbone pass per task with that
  // task's routing for multi-gate / task_cond, one shared pass for the shared router; every head.
  int all_task_passes() const;
  Cost all_tasks() const;
};

// Counts a model. Throws ConfigError if cfg does not validate.
FlopsReport count_flops(const ModelConfig& cfg);

// A printable table: per-module MACs of one pass, the three modes, and the parameter counts.
std::string format_flops_report(const FlopsReport& r);

}  // namespace m3vit
