// Unit cycle counts and the ping/pong load timeline (hw/cost/cycle_model.h). Loop structures are those
// of Edge-MoE's HLS sources (sharc-lab/Edge-MoE at 984b23b, src/*.cpp), read as
// formulas; nothing of that code is reused.
#include "hw/cost/cycle_model.h"

#include <algorithm>
#include <cmath>

namespace m3vit::hw {

namespace {

double ceil_div(double a, double b) { return std::ceil(a / b); }
double act_bytes(const AccelConfig& a) { return a.act_bits / 8.0; }
// Cycles to stream `bytes` through one port (0 when activations stay on chip).
double stream(const AccelConfig& a, double bytes) {
  return a.activations_in_dram ? bytes / a.stream_bytes_per_cycle() : 0.0;
}
double call_latency(const AccelConfig& a) { return a.activations_in_dram ? a.dram_latency : 0.0; }

}  // namespace

int ModelShape::moe_layers() const { return static_cast<int>(std::count(moe.begin(), moe.end(), true)); }

ModelShape model_shape(const ModelConfig& cfg) {
  ModelShape s;
  s.patches = cfg.num_patches();
  s.tokens = cfg.num_tokens();
  s.patch_in = static_cast<int64_t>(cfg.in_chans) * cfg.patch * cfg.patch;
  s.img_bytes = static_cast<int64_t>(cfg.in_chans) * cfg.img_h * cfg.img_w;
  s.grid_w = cfg.grid_w();
  s.d = cfg.embed_dim;
  s.heads = cfg.num_heads;
  s.head_dim = cfg.head_dim();
  s.hidden = cfg.mlp_hidden();
  s.moe_hidden = cfg.moe_hidden();
  s.experts = cfg.moe_experts;
  s.top_k = cfg.moe_top_k;
  s.depth = cfg.depth;
  for (int i = 0; i < cfg.depth; ++i) s.moe.push_back(cfg.is_moe_block(i));
  return s;
}

UnitCost& UnitCost::operator+=(const UnitCost& o) {
  compute += o.compute;
  load += o.load;
  stall += o.stall;
  dram_bytes += o.dram_bytes;
  macs += o.macs;
  return *this;
}

double linear_weight_bytes(const AccelConfig& a, int64_t in, int64_t out) {
  return (static_cast<double>(in) * out * a.weight_bits + static_cast<double>(out) * a.bias_bits) / 8.0;
}

double expert_bytes(const AccelConfig& a, const ModelShape& s) {
  return linear_weight_bytes(a, s.d, s.moe_hidden) + linear_weight_bytes(a, s.moe_hidden, s.d);
}

double load_cycles(const AccelConfig& a, double bytes) {
  return bytes / a.stream_bytes_per_cycle() + a.dram_latency;
}

UnitCost linear_cost(const AccelConfig& a, int64_t n, int64_t in, int64_t out, bool scatter_accumulate,
                     const std::string& name) {
  UnitCost u{"linear", name};
  double mac_cycles = static_cast<double>(n) * ceil_div(in, a.linear_in_lanes) * ceil_div(out, a.linear_out_lanes);
  // Input, output and (for the scatter-accumulate of an expert's second layer, dst += score·y)
  // the read-back of the output run on separate AXI channels; the slowest sets the pace.
  double ab = act_bytes(a);
  double s_in = stream(a, n * in * ab), s_out = stream(a, n * out * ab);
  u.compute = std::max({mac_cycles, s_in, s_out}) + call_latency(a);
  u.macs = static_cast<double>(n) * in * out;
  u.load = load_cycles(a, linear_weight_bytes(a, in, out));
  u.dram_bytes = linear_weight_bytes(a, in, out);
  if (a.activations_in_dram) u.dram_bytes += n * ab * (in + out * (scatter_accumulate ? 2.0 : 1.0));
  return u;
}

UnitCost patch_embed_cost(const AccelConfig& a, const ModelShape& s) {
  // The 16x16 stride-16 convolution as a linear layer over the patches (conv.cpp streams image rows
  // into the same 256 MACs/cycle); the class token is pos_embed[0] (+ cls) and costs d/lanes.
  UnitCost u = linear_cost(a, s.patches, s.patch_in, s.d, false, "conv");
  u.unit = "patch_embed";
  double ab = act_bytes(a);
  // Image in (8-bit pixels) and positional embedding in, tokens out.
  double s_img = stream(a, s.img_bytes), s_pos = stream(a, s.tokens * s.d * ab);
  u.compute = std::max({u.compute, s_img + call_latency(a), s_pos + call_latency(a)}) + ceil_div(s.d, a.vector_lanes);
  if (a.patch_weights_on_chip) {
    // Loaded once at start-up (load_one_time_weights), not per frame.
    u.load = 0;
    u.dram_bytes -= linear_weight_bytes(a, s.patch_in, s.d);
  }
  if (a.activations_in_dram) u.dram_bytes += s.img_bytes - s.patches * s.patch_in * ab + s.tokens * s.d * ab;
  return u;
}

UnitCost layernorm_cost(const AccelConfig& a, const ModelShape& s, const std::string& name) {
  UnitCost u{"layernorm", name};
  double ab = act_bytes(a);
  double phase = std::max(ceil_div(s.d, a.vector_lanes), stream(a, s.d * ab));
  // Pipelined: one token per phase. Per-token dataflow (Edge-MoE): statistics, then output, then
  // the next token, each paying the fixed latency.
  double per_token = a.ln_pipelined ? phase : 2 * phase + a.ln_token_overhead;
  u.compute = s.tokens * per_token + (a.ln_pipelined ? phase : 0) + call_latency(a);
  if (a.activations_in_dram) u.dram_bytes = 2.0 * s.tokens * s.d * ab;
  u.dram_bytes += 2.0 * s.d * a.bias_bits / 8;  // gamma, beta
  return u;
}

UnitCost add_cost(const AccelConfig& a, const ModelShape& s, const std::string& name) {
  UnitCost u{"add", name};
  double ab = act_bytes(a);
  double per_token = std::max(ceil_div(s.d, a.vector_lanes), stream(a, s.d * ab));
  u.compute = s.tokens * per_token + call_latency(a);
  if (a.activations_in_dram) u.dram_bytes = 3.0 * s.tokens * s.d * ab;
  return u;
}

UnitCost gelu_cost(const AccelConfig& a, int64_t n, int64_t hidden) {
  UnitCost u{"gelu", "gelu"};
  if (a.gelu_fused) return u;  // applied to the linear unit's output stream
  double ab = act_bytes(a);
  u.compute = std::max(ceil_div(static_cast<double>(n) * hidden, a.vector_lanes), stream(a, n * hidden * ab)) +
              call_latency(a);
  if (a.activations_in_dram) u.dram_bytes = 2.0 * n * hidden * ab;
  return u;
}

int64_t staggered_steps(int64_t n, int64_t p) {
  int64_t groups = (n + p - 1 + p - 1) / p;  // ⌈(N + p - 1) / p⌉
  int64_t overflow = (n + p - 1) % p;
  int64_t steps = 0;
  for (int64_t g = 0; g < groups; ++g) steps += (g * p >= n && overflow > 0) ? overflow : n;
  return steps;
}

namespace {
// Key steps of the whole attention (all head passes) and cycles per step.
struct AttnSchedule {
  double steps = 0;       // key steps over all passes
  double per_step = 0;    // cycles per key step
  double feat = 0;        // features of the heads handled in one pass
};
AttnSchedule attn_schedule(const AccelConfig& a, const ModelShape& s) {
  AttnSchedule r;
  int64_t hp = std::min<int64_t>(a.attn_heads_parallel, s.heads);
  double passes = ceil_div(s.heads, hp);
  r.feat = static_cast<double>(hp) * s.head_dim;
  r.steps = passes * static_cast<double>(staggered_steps(s.tokens, a.attn_queries));
  r.per_step = ceil_div(r.feat, a.attn_lanes);
  return r;
}
}  // namespace

UnitCost attention_qk_cost(const AccelConfig& a, const ModelShape& s) {
  UnitCost u{"attention_qk", "qk+softmax"};
  double ab = act_bytes(a);
  AttnSchedule sc = attn_schedule(a, s);
  double steps = sc.steps;
  double mac = steps * sc.per_step;
  // Each step needs one key (re-read for every query group); only one new query enters per step
  // thanks to the staggering, so the query stream is N·d in total.
  double k_stream = stream(a, steps * sc.feat * ab);
  double softmax = steps * a.attn_queries / a.softmax_pairs;
  double n2h = static_cast<double>(s.tokens) * s.tokens * s.heads;
  double score_write = stream(a, n2h * ab);
  u.compute = std::max({mac, k_stream, softmax, score_write}) + call_latency(a);
  u.macs = static_cast<double>(s.tokens) * s.tokens * s.d;
  if (a.activations_in_dram)
    u.dram_bytes = steps * sc.feat * ab + s.tokens * s.d * ab + n2h * ab + 2.0 * s.tokens * s.heads * ab;
  return u;
}

UnitCost attention_av_cost(const AccelConfig& a, const ModelShape& s) {
  UnitCost u{"attention_av", "av"};
  double ab = act_bytes(a);
  AttnSchedule sc = attn_schedule(a, s);
  double steps = sc.steps;
  double mac = steps * sc.per_step;
  double v_stream = stream(a, steps * sc.feat * ab);
  double n2h = static_cast<double>(s.tokens) * s.tokens * s.heads;
  double score_read = stream(a, n2h * ab);
  // exp(score - b) · (1/sum) is recomputed on the fly from the stored raw scores.
  u.compute = std::max({mac, v_stream, score_read}) + call_latency(a);
  u.macs = static_cast<double>(s.tokens) * s.tokens * s.d;
  if (a.activations_in_dram)
    u.dram_bytes = steps * sc.feat * ab + n2h * ab + 2.0 * s.tokens * s.heads * ab + s.tokens * s.d * ab;
  return u;
}

UnitCost gating_cost(const AccelConfig& a, const ModelShape& s) {
  UnitCost u{"gating", "router"};
  double ab = act_bytes(a);
  double logits = std::max(ceil_div(s.d, a.gate_lanes), stream(a, s.d * ab));
  double softmax = static_cast<double>(s.experts) * a.gate_softmax_ii;
  double topk = static_cast<double>(s.experts);
  double per_token = a.gate_pipelined ? std::max({logits, softmax, topk})
                                      : logits + softmax + topk + a.gate_token_overhead;
  // The MoE output is accumulated (dst += score·y), so it starts from zero.
  double zero = std::max(ceil_div(static_cast<double>(s.tokens) * s.d, a.vector_lanes), stream(a, s.tokens * s.d * ab));
  u.compute = s.tokens * per_token + zero + 2 * call_latency(a);
  u.macs = static_cast<double>(s.tokens) * s.d * s.experts;
  u.load = load_cycles(a, static_cast<double>(s.d) * s.experts * a.weight_bits / 8);
  u.dram_bytes = static_cast<double>(s.d) * s.experts * a.weight_bits / 8;
  if (a.activations_in_dram) u.dram_bytes += 2.0 * s.tokens * s.d * ab;
  return u;
}

double Timeline::weighted(double load, double compute) {
  int b = next_;
  next_ ^= 1;
  double load_start = overlap_ ? std::max(load_free_, buf_free_[b]) : std::max(t_, load_free_);
  double load_end = load_start + load;
  load_free_ = load_end;
  double start = std::max(t_, load_end);
  double stall = start - t_;
  t_ = start + compute;
  buf_free_[b] = t_;
  return stall;
}

double Timeline::side_load(double load, double free_at) {
  double load_start = overlap_ ? std::max(load_free_, free_at) : std::max(t_, load_free_);
  double load_end = load_start + load;
  load_free_ = load_end;
  double stall = std::max(0.0, load_end - t_);
  t_ += stall;
  return stall;
}

double Timeline::prefetch(double load) {
  double load_start = std::max(t_, load_free_);
  load_free_ = load_start + load;
  return load_free_;
}

double Timeline::wait_until(double ready) {
  double stall = std::max(0.0, ready - t_);
  t_ += stall;
  return stall;
}

double Timeline::demand_load(double load) {
  double load_start = std::max(t_, load_free_);
  double load_end = load_start + load;
  load_free_ = load_end;
  double stall = load_end - t_;
  t_ = load_end;
  return stall;
}

}  // namespace m3vit::hw
