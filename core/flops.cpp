// Analytic MAC and parameter counter (core/flops.h). Module structure as in the authors' code:
// PatchEmbed / Attention / Mlp (models/vision_transformer_moe.py:156-310), the FastMoE layer with
// NoisyGate_VMoE routers (models/custom_moe_layer.py:66-314, gate_funs/noisy_gate_vmoe.py), the PUP
// head (models/vit_up_head.py:73-224) and the TAM (models/models.py:9-101). Counts per image, batch 1.
#include "core/flops.h"

#include <cstdio>
#include <numeric>

#include "common/errors.h"

namespace m3vit {

namespace {


Cost visible(double macs) { return {macs, macs}; }    // an nn.Linear / nn.Conv2d: thop sees it
Cost invisible(double macs) { return {macs, 0.0}; }   // functional op or a raw parameter: thop does not

// Linear layer parameters: weight [out, in] (+ bias [out]).
int64_t linear_params(int64_t in, int64_t out, bool bias = true) { return in * out + (bias ? out : 0); }
// Conv parameters: weight [out, in, kh, kw] + bias [out] (every conv here has a bias).
int64_t conv_params(int64_t in, int64_t out, int64_t k) { return in * out * k * k + out; }
int64_t norm_params(int64_t c) { return 2 * c; }  // LayerNorm / BatchNorm weight + bias

// Width of a router's input: the token, plus the task embedding for task_cond (custom_moe_layer.py:127-130).
int64_t router_in(const ModelConfig& c) {
  return c.embed_dim + ((c.gate == GateType::task_cond && c.task_emb_dim > 0) ? c.task_emb_dim : 0);
}

std::vector<CostRow> backbone_rows(const ModelConfig& c) {
  const double N = c.num_tokens(), d = c.embed_dim, hw = c.num_patches();
  const int moe_layers = static_cast<int>(c.moe_blocks.size());
  const int dense_layers = c.depth - moe_layers;
  std::vector<CostRow> rows;
  // Conv2d(in, d, kernel p, stride p): one d-vector per patch from in·p² inputs.
  rows.push_back({"patch_embed", 1, visible(hw * d * c.in_chans * c.patch * c.patch)});
  rows.push_back({"attention.qkv", c.depth, visible(N * d * 3 * d)});
  // Per head: [N, hd]·[hd, N] and [N, N]·[N, hd]; summed over heads each is N²·d (functional matmuls).
  rows.push_back({"attention.q_kT", c.depth, invisible(N * N * d)});
  rows.push_back({"attention.a_v", c.depth, invisible(N * N * d)});
  rows.push_back({"attention.proj", c.depth, visible(N * d * d)});
  if (dense_layers > 0) rows.push_back({"mlp (dense)", dense_layers, visible(2 * N * d * c.mlp_hidden())});
  if (moe_layers > 0) {
    if (c.gate == GateType::task_cond && c.task_emb_dim > 0) {
      // One-hot [T] -> fc1 [D_t] -> fc2 [D_t], once per pass (vision_transformer_moe.py:547-550).
      const double dt = c.task_emb_dim;
      rows.push_back({"task_embedding", 1, visible(c.num_tasks() * dt + dt * dt)});
    }
    // logits = x·W_gate, W_gate [d_gate, E], a raw parameter (noisy_gate_vmoe.py:178-183).
    rows.push_back({"moe.router", moe_layers, invisible(N * router_in(c) * c.moe_experts)});
    // Each token runs its k experts: htoh4 [hid, d] and h4toh [d, hid] (FMoELinear, not nn.Linear).
    rows.push_back({"moe.experts (top-" + std::to_string(c.moe_top_k) + ")", moe_layers,
                    invisible(c.moe_top_k * 2.0 * N * d * c.moe_hidden())});
  }
  return rows;
}

std::vector<CostRow> head_rows(const ModelConfig& c, int out_channels) {
  // Progressive upsampling: conv at h·w, then x2 before each of conv_1, conv_2, conv_3; conv_4 (1x1)
  // runs at 8h x 8w before the last x2 (vit_up_head.py:186-214).
  const double hw = c.num_patches(), d = c.embed_dim, ch = c.head_channels;
  return {
      {"head.conv_0 (3x3)", 1, visible(hw * 9 * d * ch)},
      {"head.conv_1 (3x3)", 1, visible(4 * hw * 9 * ch * ch)},
      {"head.conv_2 (3x3)", 1, visible(16 * hw * 9 * ch * ch)},
      {"head.conv_3 (3x3)", 1, visible(64 * hw * 9 * ch * ch)},
      {"head.conv_4 (1x1)", 1, visible(64 * hw * ch * out_channels)},
  };
}

Cost sum_rows(const std::vector<CostRow>& rows) {
  Cost s;
  for (const auto& r : rows) s += r.total();
  return s;
}

int64_t head_params(const ModelConfig& c, int out_channels) {
  const int64_t d = c.embed_dim, ch = c.head_channels;
  return norm_params(d) + conv_params(d, ch, 3) + 3 * conv_params(ch, ch, 3) + conv_params(ch, out_channels, 1) +
         4 * norm_params(ch);
}

// One TamModule (models.py:9-57) on T tasks' c-channel features.
int64_t tam_params(const ModelConfig& c) {
  const int64_t ch = c.head_channels, T = c.num_tasks();
  int64_t p = 0;
  p += conv_params(T * ch, ch, 3) + norm_params(ch);  // layers0
  p += conv_params(ch, ch, 3) + norm_params(ch);      // layers1
  p += conv_params(T * ch, ch, 3) + norm_params(ch);  // layers2
  p += 2 * (conv_params(ch, ch, 3) + norm_params(ch));  // encoder0, encoder1 (stride 2)
  p += 2 * (conv_params(ch, ch, 3) + norm_params(ch));  // decoder0, decoder1 (ConvTranspose2d, same count)
  for (const auto& t : c.tasks) p += conv_params(T * ch, ch, 3) + norm_params(ch) + conv_params(ch, t.out_channels, 1);
  return p;
}

ParamCount count_params(const ModelConfig& c) {
  ParamCount p;
  const int64_t d = c.embed_dim, E = c.moe_experts, hid = c.moe_hidden();
  const int64_t moe_layers = static_cast<int64_t>(c.moe_blocks.size());
  const int64_t dense_layers = c.depth - moe_layers;
  p.patch_embed = conv_params(c.in_chans, d, c.patch);
  p.tokens = d + static_cast<int64_t>(c.num_tokens()) * d;
  p.attention = c.depth * (norm_params(d) + linear_params(d, 3 * d, c.qkv_bias) + linear_params(d, d) + norm_params(d));
  p.dense_mlp = dense_layers * (linear_params(d, c.mlp_hidden()) + linear_params(c.mlp_hidden(), d));
  const int64_t one_expert = linear_params(d, hid) + linear_params(hid, d);
  p.experts = moe_layers * E * one_expert;
  const int64_t routers_per_layer = c.gate == GateType::multi ? c.num_tasks() : 1;
  p.routers = moe_layers * routers_per_layer * router_in(c) * E;
  if (moe_layers > 0 && c.gate == GateType::task_cond && c.task_emb_dim > 0) {
    const int64_t dt = c.task_emb_dim;
    p.task_embedding = linear_params(c.num_tasks(), dt) + linear_params(dt, dt) + norm_params(dt);
  }
  for (const auto& t : c.tasks) p.heads.push_back(head_params(c, t.out_channels));
  if (c.tam)
    for (bool on : c.tam_levels)
      if (on) p.tam += tam_params(c);
  const int64_t shared = p.patch_embed + p.tokens + p.attention + p.dense_mlp + p.task_embedding +
                         moe_layers * (router_in(c) * E + c.moe_top_k * one_expert);
  for (int t = 0; t < c.num_tasks(); ++t) p.touched_per_token.push_back(shared + p.heads[t]);
  return p;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int64_t ParamCount::heads_total() const { return std::accumulate(heads.begin(), heads.end(), int64_t{0}); }

int FlopsReport::all_task_passes() const {
  if (cfg.moe_blocks.empty() || cfg.gate == GateType::shared) return 1;  // routing does not depend on the task
  return cfg.num_tasks();
}

Cost FlopsReport::all_tasks() const {
  Cost c = static_cast<double>(all_task_passes()) * backbone;
  for (const auto& h : heads) c += h;
  return c;
}

FlopsReport count_flops(const ModelConfig& cfg) {
  cfg.validate();
  FlopsReport r;
  r.cfg = cfg;
  r.backbone_rows = backbone_rows(cfg);
  r.backbone = sum_rows(r.backbone_rows);
  for (const auto& t : cfg.tasks) {
    r.head_rows.push_back(head_rows(cfg, t.out_channels));
    r.heads.push_back(sum_rows(r.head_rows.back()));
  }
  r.params = count_params(cfg);
  return r;
}

std::string format_flops_report(const FlopsReport& r) {
  const ModelConfig& c = r.cfg;
  // GMAC for the paper's models, MMAC for the tiny ones so their numbers keep digits.
  const bool giga = r.single_task(0).macs >= 1e9;
  const double kG = giga ? 1e9 : 1e6;
  const std::string unit = giga ? "GMAC" : "MMAC";
  std::string s;
  auto line = [&](const std::string& l) { s += l + "\n"; };
  char buf[256];

  auto header = [&](const char* title) {
    std::snprintf(buf, sizeof buf, "%-44s %5s %9s %9s %13s", title, "count", "each", "total", "thop-visible");
    line(buf);
  };
  header(("MACs of one backbone pass (" + unit + ", batch 1)").c_str());
  for (const auto& row : r.backbone_rows) {
    std::snprintf(buf, sizeof buf, "  %-42s %5d %9.4f %9.3f %13.3f", row.name.c_str(), row.count, row.each.macs / kG,
                  row.total().macs / kG, row.total().thop_macs / kG);
    line(buf);
  }
  std::snprintf(buf, sizeof buf, "  %-42s %5s %9s %9.3f %13.3f", "backbone pass", "", "", r.backbone.macs / kG,
                r.backbone.thop_macs / kG);
  line(buf);
  line("");
  header(("MACs of one task head (" + unit + ")").c_str());
  for (int t = 0; t < c.num_tasks(); ++t) {
    std::snprintf(buf, sizeof buf, "  %-42s %5s %9s %9.3f %13.3f",
                  (c.tasks[t].name + " (" + std::to_string(c.tasks[t].out_channels) + " ch)").c_str(), "", "",
                  r.heads[t].macs / kG, r.heads[t].thop_macs / kG);
    line(buf);
  }
  if (c.num_tasks() > 0) {
    line("  of which, for " + c.tasks[0].name + ":");
    for (const auto& row : r.head_rows[0]) {
      std::snprintf(buf, sizeof buf, "    %-40s %5d %9.4f %9.3f %13.3f", row.name.c_str(), row.count, row.each.macs / kG,
                    row.total().macs / kG, row.total().thop_macs / kG);
      line(buf);
    }
  }
  line("");

  const FlopsReport dense = count_flops(dense_baseline(c));
  std::snprintf(buf, sizeof buf, "%-52s %6s %5s %9s %13s", ("Inference modes (" + unit + ")").c_str(), "passes", "heads", "MACs",
                "thop-visible");
  line(buf);
  auto mode = [&](const std::string& name, int passes, int heads, const Cost& cost) {
    std::snprintf(buf, sizeof buf, "  %-50s %6d %5d %9.3f %13.3f", name.c_str(), passes, heads, cost.macs / kG,
                  cost.thop_macs / kG);
    line(buf);
  };
  for (int t = 0; t < c.num_tasks(); ++t)
    mode("(a) single task: " + c.tasks[t].name, 1, 1, r.single_task(t));
  mode(std::string("(b) all tasks, authors' forward (") + (c.moe_blocks.empty() ? "dense" : to_string(c.gate)) + ")",
       r.all_task_passes(), c.num_tasks(), r.all_tasks());
  if (!c.moe_blocks.empty()) {
    for (int t = 0; t < c.num_tasks(); ++t)
      mode("(c) dense M-ViT baseline, single task: " + c.tasks[t].name, 1, 1, dense.single_task(t));
    mode("(c) dense M-ViT baseline, all tasks", 1, c.num_tasks(), dense.all_tasks());
  }
  line("");

  const ParamCount& p = r.params;
  auto prow = [&](const std::string& name, int64_t v) {
    std::snprintf(buf, sizeof buf, "  %-50s %12lld %9s", name.c_str(), static_cast<long long>(v), fmt("%.3f M", v / 1e6).c_str());
    line(buf);
  };
  line("Parameters");
  prow("patch_embed", p.patch_embed);
  prow("cls_token + pos_embed", p.tokens);
  prow("attention + norms (all blocks)", p.attention);
  prow("dense MLPs", p.dense_mlp);
  if (!c.moe_blocks.empty()) {
    prow("experts (" + std::to_string(c.moe_blocks.size()) + " layers x " + std::to_string(c.moe_experts) + ")", p.experts);
    prow(std::string("routers (") + to_string(c.gate) + ")", p.routers);
    if (p.task_embedding) prow("task embedding", p.task_embedding);
  }
  prow("backbone", p.backbone());
  for (int t = 0; t < c.num_tasks(); ++t) prow("head " + c.tasks[t].name, p.heads[t]);
  if (p.tam) prow("TAM (training only)", p.tam);
  prow("total", p.total());
  if (c.num_tasks() > 0) prow("touched per token, single task " + c.tasks[0].name, p.touched_per_token[0]);
  if (!c.moe_blocks.empty()) prow("dense M-ViT baseline total", dense.params.total());
  return s;
}

}  // namespace m3vit
