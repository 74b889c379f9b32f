// The fixed-point encoder (hw/fx/fx_encoder.h). The kernels are the units of FxKernels, over
// fixed-size on-chip arrays that the FxKernels object owns (one object per FxEncoder, so encoders
// in different threads share nothing) and DRAM pointers; the host part (weight conversion, buffer
// allocation, the call sequence and the overflow bookkeeping) is at the end of the file. Shapes in
// the comments use N tokens, d features, H heads, hd = d/H, E experts, k = top-k, mh expert hidden.
#include "hw/fx/fx_encoder.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"
#include "hw/fx/fx_gelu_table.h"

namespace m3vit::hw {

FxDims fx_dims(const ModelConfig& c) {
  c.validate();
  FxDims d;
  d.tokens = c.num_tokens();
  d.grid_h = c.grid_h();
  d.grid_w = c.grid_w();
  d.patch = c.patch;
  d.in_chans = c.in_chans;
  d.img_h = c.img_h;
  d.img_w = c.img_w;
  d.dim = c.embed_dim;
  d.heads = c.num_heads;
  d.head_dim = c.head_dim();
  d.hidden = c.mlp_hidden();
  d.moe_hidden = c.moe_hidden();
  d.experts = c.moe_experts;
  d.top_k = c.moe_top_k;
  d.depth = c.depth;
  auto check = [&](const char* what, int v, int max) {
    if (v > max)
      throw ConfigError("config '" + c.name + "': " + what + " " + std::to_string(v) +
                        " exceeds the fixed-point encoder's static maximum " + std::to_string(max));
  };
  check("tokens", d.tokens, kFxMaxTokens);
  check("embed_dim", d.dim, kFxMaxDim);
  check("dense MLP hidden", d.hidden, kFxMaxHidden);
  check("expert hidden", d.moe_hidden, kFxMaxHidden);
  check("num_heads", d.heads, kFxMaxHeads);
  check("moe_experts", d.experts, kFxMaxExperts);
  check("moe_top_k", d.top_k, kFxMaxTopK);
  check("patch inputs (in_chans x patch x patch)", d.patch_in(), kFxMaxPatchIn);
  if (c.in_chans != 3) throw ConfigError("config '" + c.name + "': the fixed-point encoder takes RGB images");
  return d;
}

const char* fx_unit_name(int u) {
  static const char* names[] = {"patch_embed", "layernorm", "linear", "attention", "gelu", "router", "experts", "add"};
  return u >= 0 && u < fx_unit_count ? names[u] : "?";
}

const char* to_string(FxFormat f) {
  switch (f) {
    case FxFormat::a32w16: return "a32w16";
    case FxFormat::a32w8: return "a32w8";
    case FxFormat::a16w16: return "a16w16";
    case FxFormat::a16w8: return "a16w8";
  }
  return "?";
}

FxFormat fx_format_from_string(const std::string& s) {
  for (FxFormat f : {FxFormat::a32w16, FxFormat::a32w8, FxFormat::a16w16, FxFormat::a16w8})
    if (s == to_string(f)) return f;
  throw ConfigError("fixed-point format '" + s + "': expected a32w16, a32w8, a16w16 or a16w8");
}

const char* to_string(FxArith a) { return a == FxArith::edge_moe ? "edge_moe" : "ours"; }

FxArith fx_arith_from_string(const std::string& s) {
  if (s == "ours") return FxArith::ours;
  if (s == "edge_moe") return FxArith::edge_moe;
  throw ConfigError("fixed-point arithmetic '" + s + "': expected ours or edge_moe");
}

uint64_t total_overflows(const FxOverflows& overflows) {
  uint64_t s = 0;
  for (const auto& b : overflows)
    for (uint64_t v : b) s += v;
  return s;
}

// ------------------------------------------------------------------------------------------------
// The GELU unit's ROM: delta(a) at the table points, in the table's format. Filled when the unit is
// built (a ROM's contents are fixed at synthesis), so there is no "loaded yet" state to share.
// ------------------------------------------------------------------------------------------------
template <Ovf O>
struct FxGeluRom {
  using fm_t = typename FxTypes<O>::fm_t;
  using frac_t = typename FxTypes<O>::frac_t;
  frac_t rom[kGeluTableSize];

  FxGeluRom() {
    for (int i = 0; i < kGeluTableSize; ++i) rom[i] = frac_t(kGeluDeltaTable[i]);
  }

  // GELU by table interpolation: ReLU(x) - delta(|x|).
  fm_t gelu(fm_t x) const {
    const bool neg = x.raw() < 0;
    fm_t relu = neg ? fm_t() : x;
    fm_t a = neg ? fm_t(-x) : x;
    constexpr int step_bits = 5;                      // table step 1/32
    constexpr int sub = fm_t::fwidth - step_bits;     // fraction bits inside a step
    const int64_t r = static_cast<int64_t>(a.raw());
    const int64_t idx = r >> sub;
    if (idx >= kGeluTableSize - 1) return relu;       // |x| >= 5.5
    frac_t t = frac_t::from_raw((r & ((int64_t{1} << sub) - 1)) << (frac_t::fwidth - sub));
    frac_t lo = rom[idx], hi = rom[idx + 1];
    frac_t delta = frac_t(lo + t * (hi - lo));
    return fm_t(relu - delta);
  }
};

// ------------------------------------------------------------------------------------------------
// Kernels. One object holds the on-chip memories of one accelerator (about 3 MB at the static
// maxima, so FxEncoder keeps it on the heap) and the units. Units that touch those memories are
// member functions; the others are static, as they need only their arguments. Nothing is carried
// from one image to the next: every buffer is written before it is read within a call.
// ------------------------------------------------------------------------------------------------
template <Ovf O, FxFormat Fm>
struct FxKernels {
  using T = FxTypes<O, Fm>;
  using fm_t = typename T::fm_t;    // unit internals
  using act_t = typename T::act_t;  // stored activations
  using acc_t = typename T::acc_t;  // multiply-accumulate registers
  using wt_t = typename T::wt_t;
  using frac_t = typename T::frac_t;
  using pixel_t = typename T::pixel_t;

  FxArith arith = FxArith::ours;
  bool edge() const { return arith == FxArith::edge_moe; }

  // On-chip memories (BRAM/URAM in hardware).
  wt_t weights_ping[kFxMaxDim * kFxMaxHidden];  // largest layer: [hid][d] or [d][hid]
  wt_t weights_pong[kFxMaxDim * kFxMaxHidden];
  acc_t bias_ping[kFxMaxHidden];  // biases widened to the accumulator (exact for <16,7> and <16,5>)
  acc_t bias_pong[kFxMaxHidden];
  wt_t gate_w[kFxMaxExperts * kFxMaxDim];  // router [E][d]
  fm_t gate_b[kFxMaxExperts];
  int32_t queue_token[kFxMaxExperts][kFxMaxTokens] = {};  // per-expert token queues
  fm_t queue_score[kFxMaxExperts][kFxMaxTokens];          // and their gate weights
  int32_t queue_len[kFxMaxExperts] = {};
  FxGeluRom<O> gelu_rom;

  // exp(-a) for a >= 0 given exactly (any fixed type); 0 once below the fm_t resolution.
  template <class X>
  static fm_t exp_neg(const X& a) {
    double v = a.to_double();
    return v >= 32 ? fm_t() : fm_t(std::exp(-v));  // hls::exp, truncated to fm_t
  }

  // acc + Σ a[i]·b[i] with the partial sums of Edge-MoE's blocked loops: each block of `block`
  // terms is summed from zero in its own register, then added to acc (router src/moe.cpp:179-191,
  // patch rows src/conv.cpp:86-93, LayerNorm statistics src/layernorm.cpp:85-99).
  template <class Acc, class A, class B>
  static Acc blocked_dot(Acc acc, const A* a, const B* b, int n, int block) {
    for (int j = 0; j < n; j += block) acc = Acc(acc + fx_dot(Acc(), a + j, b + j, std::min(block, n - j)));
    return acc;
  }

  // The linear unit's multiply-accumulate: exact products (ours) or each product assigned to the
  // accumulator type first (Edge-MoE, src/linear.cpp:492-494).
  acc_t mac(acc_t acc, const act_t* x, const wt_t* w, int n) const {
    return edge() ? fx_dot<true>(acc, x, w, n) : fx_dot(acc, x, w, n);
  }

  // --- weight loads (DRAM -> ping/pong); re-tiling into LIN_IN x LIN_OUT blocks is a no-op here ---
  template <class B>
  static void load_linear(wt_t* dst_w, acc_t* dst_b, const wt_t* w, const B* b, int dout, int din) {
    for (int i = 0; i < dout * din; ++i) dst_w[i] = w[i];
    for (int o = 0; o < dout; ++o) dst_b[o] = acc_t(b[o]);
  }

  // --- GELU, fused into the linear unit's output ---
  fm_t gelu(fm_t x) const { return gelu_rom.gelu(x); }

  // --- patch embedding: x[1 + patch] = b + W · pixels(patch) + pos; x[0] = pos[0] (cls folded) ---
  void patch_embed(const pixel_t* img /*[C][H][W]*/, const typename T::wt_patch_t* w /*[d][C·p·p]*/,
                   const typename T::wt_bias_t* b, const act_t* pos /*[N][d]*/, act_t* x /*[N][d]*/,
                   const FxDims& D) const {
    pixel_t patch[kFxMaxPatchIn];  // one patch, channel-major [C][p][p]
    const int P = D.patch, pin = D.patch_in(), d = D.dim;
    for (int py = 0; py < D.grid_h; ++py)
      for (int px = 0; px < D.grid_w; ++px) {
        for (int c = 0; c < D.in_chans; ++c)
          for (int yy = 0; yy < P; ++yy)
            for (int xx = 0; xx < P; ++xx)
              patch[(c * P + yy) * P + xx] = img[(static_cast<size_t>(c) * D.img_h + py * P + yy) * D.img_w + px * P + xx];
        const int tok = 1 + py * D.grid_w + px;
        for (int o = 0; o < d; ++o) {
          const auto* wo = w + static_cast<size_t>(o) * pin;
          acc_t acc = edge() ? blocked_dot(acc_t(b[o]), patch, wo, pin, P) : fx_dot(acc_t(b[o]), patch, wo, pin);
          x[static_cast<size_t>(tok) * d + o] = act_t(acc + pos[static_cast<size_t>(tok) * d + o]);
        }
      }
    for (int o = 0; o < d; ++o) x[o] = pos[o];
  }

  // --- LayerNorm statistics of one row: the mean and 1/sqrt(var + eps), in one pass (mean and mean
  // of squares with 1/d pre-scaling) ---
  void ln_stats(const fm_t* row, int d, double eps, fm_t& mean, fm_t& rstd) const {
    const fm_t inv_d = fm_t(1.0 / d), eps_f = fm_t(eps);
    fm_t msq = fm_t();
    mean = fm_t();
    const int block = edge() ? kFxFeatureBlock : d;  // ours: one running sum
    for (int j0 = 0; j0 < d; j0 += block) {
      fm_t part_mean = fm_t(), part_msq = fm_t();
      for (int j = j0; j < std::min(d, j0 + block); ++j) {
        fm_t term = fm_t(row[j] * inv_d);
        part_mean += term;
        part_msq += row[j] * term;
      }
      mean += part_mean;
      msq += part_msq;
    }
    if (!edge()) {
      fm_t var = fm_t(msq - mean * mean + eps_f);
      if (var.raw() <= 0) var = eps_f;  // E[x²] - E[x]² can truncate below zero
      rstd = fm_t(1.0 / std::sqrt(var.to_double()));  // hls::sqrt + reciprocal, truncated once
    } else {
      const fm_t sq_mean = fm_t(mean * mean);        // src/layernorm.cpp:116
      const fm_t var = fm_t(msq - sq_mean + eps_f);  // :117, no guard
      const fm_t sd = fx_sqrt<fm_t>(var);            // :118 hls::sqrt, truncated (0 if var <= 0)
      rstd = fm_t(fx_quotient(fm_t(1.0), sd));       // :118 the quotient, truncated again
    }
  }

  // --- LayerNorm, one pass per token ---
  void layernorm(const act_t* x, act_t* out, const typename T::wt_norm_t* g, const typename T::wt_bias_t* b,
                 const FxDims& D, double eps) const {
    const int d = D.dim;
    fm_t row[kFxMaxDim];
    for (int t = 0; t < D.tokens; ++t) {
      for (int j = 0; j < d; ++j) row[j] = x[static_cast<size_t>(t) * d + j];
      fm_t mean, rstd;
      ln_stats(row, d, eps, mean, rstd);
      for (int j = 0; j < d; ++j) {
        fm_t v = fm_t(row[j] - mean);
        v = fm_t(v * rstd);
        v = fm_t(v * g[j]);
        out[static_cast<size_t>(t) * d + j] = act_t(v + b[j]);
      }
    }
  }

  // --- linear unit: out[t] = b + W · in[t] (optionally GELU), weights from an on-chip buffer ---
  void linear(const act_t* in, act_t* out, const wt_t* w /*[dout][din]*/, const acc_t* bias, int n, int din,
              int dout, bool use_gelu) const {
    for (int t = 0; t < n; ++t) {
      const act_t* xt = in + static_cast<size_t>(t) * din;
      for (int o = 0; o < dout; ++o) {
        acc_t acc = mac(bias[o], xt, w + static_cast<size_t>(o) * din, din);
        out[static_cast<size_t>(t) * dout + o] = use_gelu ? act_t(gelu(fm_t(acc))) : act_t(acc);
      }
    }
  }

  static void add(act_t* x, const act_t* y, const FxDims& D) {
    const size_t n = static_cast<size_t>(D.tokens) * D.dim;
    for (size_t i = 0; i < n; ++i) x[i] = act_t(x[i] + y[i]);
  }

  // Staggered schedule (Edge-MoE Fig. 5): in group g and key step kk, lane i holds query g·p + i
  // once kk >= i, and before that still the previous group's query (g-1)·p + i, which thereby
  // finishes its wrapped row. So query q = g·p + i sees keys i, i+1, ..., N-1, 0, ..., i-1.
  // Returns the query of lane i at (g, kk), or -1 when the lane holds nothing valid.
  static int lane_query(int g, int kk, int i, int N) {
    int q = kk >= i ? g * kFxAttnQueries + i : (g - 1) * kFxAttnQueries + i;
    return (q < 0 || q >= N) ? -1 : q;
  }
  static int groups(int N) { return (N + kFxAttnQueries - 1 + kFxAttnQueries - 1) / kFxAttnQueries; }
  // Keys stepped through in group g (the last group only finishes the wrapped rows).
  static int group_steps(int g, int N) {
    int overflow = (N + kFxAttnQueries - 1) % kFxAttnQueries;
    return (g * kFxAttnQueries >= N && overflow > 0) ? overflow : N;
  }

  // One scaled score q·k / sqrt(hd): ours scales the whole dot product once; Edge-MoE scales each
  // 8-feature partial sum and adds the scaled parts (src/attention.cpp:99-105).
  fm_t score(const act_t* q, const act_t* k, int hd, fm_t scale) const {
    if (!edge()) return fm_t(fx_dot(acc_t(), q, k, hd) * scale);
    acc_t total = acc_t();
    for (int j = 0; j < hd; j += kFxFeatureBlock) {
      acc_t part = fx_dot(acc_t(), q + j, k + j, std::min(kFxFeatureBlock, hd - j));
      part = acc_t(part * scale);
      total = acc_t(total + part);
    }
    return fm_t(total);
  }

  // --- Q·Kᵀ with single-pass softmax statistics: scores[h][q][k] raw, info[q][h] = (1/sum, max) ---
  void attention_qk(const act_t* q, const act_t* k, act_t* scores /*[H][N][N]*/, fm_t* info /*[N][H][2]*/,
                    const FxDims& D) const {
    const int N = D.tokens, d = D.dim, hd = D.head_dim;
    const fm_t scale = fm_t(1.0 / std::sqrt(static_cast<double>(hd)));
    for (int h = 0; h < D.heads; ++h) {
      act_t lane_q[kFxAttnQueries][kFxMaxDim];  // the p staggered query rows (this head's slice)
      fm_t lane_sum[kFxAttnQueries], lane_max[kFxAttnQueries];
      for (int g = 0; g < groups(N); ++g)
        for (int kk = 0; kk < group_steps(g, N); ++kk) {
          const act_t* key = k + static_cast<size_t>(kk) * d + h * hd;  // one new key row per step
          for (int i = 0; i < kFxAttnQueries; ++i) {
            if (kk == i && g * kFxAttnQueries + i < N)  // one new query enters per step
              for (int j = 0; j < hd; ++j) lane_q[i][j] = q[static_cast<size_t>(g * kFxAttnQueries + i) * d + h * hd + j];
            const int qi = lane_query(g, kk, i, N);
            if (qi < 0) continue;
            // The score as stored (the softmax statistics see the same value the A·V unit reads).
            const act_t stored = act_t(score(lane_q[i], key, hd, scale));
            const fm_t s = stored;
            scores[(static_cast<size_t>(h) * N + qi) * N + kk] = stored;
            if (kk == i) {  // first key of this query's row
              lane_sum[i] = fm_t(1.0);
              lane_max[i] = s;
            } else {
              auto diff = lane_max[i] - s;  // exact
              if (diff.raw() < 0) {         // new maximum: rescale the running sum
                lane_sum[i] = fm_t(lane_sum[i] * exp_neg(-diff));
                lane_sum[i] = fm_t(lane_sum[i] + fm_t(1.0));
                lane_max[i] = s;
              } else {
                lane_sum[i] = fm_t(lane_sum[i] + exp_neg(diff));
              }
            }
            if (kk == (i == 0 ? N - 1 : i - 1)) {  // last key of the row
              info[(static_cast<size_t>(qi) * D.heads + h) * 2] = fx_recip<fm_t>(lane_sum[i]);
              info[(static_cast<size_t>(qi) * D.heads + h) * 2 + 1] = lane_max[i];
            }
          }
        }
    }
  }

  // --- A·V: out[q] = Σ_k exp(s - max)·(1/sum) · v[k], same staggered order ---
  static void attention_av(const act_t* v, const act_t* scores, const fm_t* info, act_t* out, const FxDims& D) {
    const int N = D.tokens, d = D.dim, hd = D.head_dim;
    for (int h = 0; h < D.heads; ++h) {
      acc_t lane_acc[kFxAttnQueries][kFxMaxDim];
      for (int g = 0; g < groups(N); ++g)
        for (int kk = 0; kk < group_steps(g, N); ++kk) {
          const act_t* vrow = v + static_cast<size_t>(kk) * d + h * hd;
          for (int i = 0; i < kFxAttnQueries; ++i) {
            const int qi = lane_query(g, kk, i, N);
            if (qi < 0) continue;
            const fm_t recip = info[(static_cast<size_t>(qi) * D.heads + h) * 2];
            const fm_t mx = info[(static_cast<size_t>(qi) * D.heads + h) * 2 + 1];
            const fm_t s = scores[(static_cast<size_t>(h) * N + qi) * N + kk];
            fm_t p = fm_t(exp_neg(mx - s) * recip);
            for (int j = 0; j < hd; ++j) {
              acc_t prod = acc_t(vrow[j] * p);
              lane_acc[i][j] = (kk == i) ? prod : acc_t(lane_acc[i][j] + prod);
            }
            if (kk == (i == 0 ? N - 1 : i - 1))
              for (int j = 0; j < hd; ++j) out[static_cast<size_t>(qi) * d + h * hd + j] = act_t(lane_acc[i][j]);
          }
        }
    }
  }

  // --- router: logits, single-pass softmax over E, top-k insertion, per-expert queues ---
  void gating(const act_t* x, const FxDims& D, int32_t* topk_idx /*[N][k]*/, fm_t* topk_w /*[N][k]*/) {
    const int E = D.experts, K = D.top_k, d = D.dim;
    for (int e = 0; e < E; ++e) queue_len[e] = 0;
    for (int t = 0; t < D.tokens; ++t) {
      fm_t logits[kFxMaxExperts];
      fm_t sum = fm_t(), mx = fm_t();
      int32_t best[kFxMaxTopK];
      fm_t best_l[kFxMaxTopK];
      int have = 0;
      for (int e = 0; e < E; ++e) {
        const act_t* xt = x + static_cast<size_t>(t) * d;
        const wt_t* we = gate_w + static_cast<size_t>(e) * d;
        logits[e] = fm_t(edge() ? blocked_dot(acc_t(gate_b[e]), xt, we, d, kFxFeatureBlock)
                                : fx_dot(acc_t(gate_b[e]), xt, we, d));
        // single-pass softmax statistics
        if (e == 0) {
          sum = fm_t(1.0);
          mx = logits[e];
        } else {
          auto diff = mx - logits[e];
          if (diff.raw() < 0) {
            sum = fm_t(fm_t(sum * exp_neg(-diff)) + fm_t(1.0));
            mx = logits[e];
          } else {
            sum = fm_t(sum + exp_neg(diff));
          }
        }
        // top-k insertion: a strictly larger logit moves ahead (ties keep the lower expert id)
        int pos = have;
        while (pos > 0 && logits[e] > best_l[pos - 1]) --pos;
        if (pos < K) {
          for (int j = std::min(have, K - 1); j > pos; --j) {
            best[j] = best[j - 1];
            best_l[j] = best_l[j - 1];
          }
          best[pos] = e;
          best_l[pos] = logits[e];
          have = std::min(have + 1, K);
        }
      }
      // kept weights: exp(l - max) / sum over all E (not renormalised over the top-k, noisy_gate_vmoe.py:258-268)
      for (int j = 0; j < K; ++j) {
        fm_t p = fx_div<fm_t>(exp_neg(mx - best_l[j]), sum);
        topk_idx[static_cast<size_t>(t) * K + j] = best[j];
        topk_w[static_cast<size_t>(t) * K + j] = p;
        const int e = best[j];
        queue_token[e][queue_len[e]] = t;
        queue_score[e][queue_len[e]] = p;
        ++queue_len[e];
      }
    }
  }

  // --- experts, reordered: expert by expert over its queue (fc1 from ping, fc2 from pong) ---
  template <class WB>
  void experts(const act_t* x /*[N][d] LN2 output*/, act_t* out /*[N][d]*/, act_t* hidden /*[N][mh]*/,
               const wt_t* w1, const WB* b1, const wt_t* w2, const WB* b2, const FxDims& D) {
    const int d = D.dim, mh = D.moe_hidden;
    const size_t n = static_cast<size_t>(D.tokens) * d;
    for (size_t i = 0; i < n; ++i) out[i] = act_t();  // accumulated into below
    for (int e = 0; e < D.experts; ++e) {
      const int len = queue_len[e];
      if (len == 0) continue;  // never loaded
      load_linear(weights_ping, bias_ping, w1 + static_cast<size_t>(e) * mh * d, b1 + static_cast<size_t>(e) * mh, mh, d);
      for (int j = 0; j < len; ++j) {  // gather tokens, fc1 + GELU
        const act_t* xt = x + static_cast<size_t>(queue_token[e][j]) * d;
        for (int o = 0; o < mh; ++o)
          hidden[static_cast<size_t>(j) * mh + o] = act_t(gelu(fm_t(mac(bias_ping[o], xt, weights_ping + static_cast<size_t>(o) * d, d))));
      }
      load_linear(weights_pong, bias_pong, w2 + static_cast<size_t>(e) * d * mh, b2 + static_cast<size_t>(e) * d, d, mh);
      for (int j = 0; j < len; ++j) {  // fc2, scale by the gate weight, scatter-accumulate
        act_t* dst = out + static_cast<size_t>(queue_token[e][j]) * d;
        const fm_t score = queue_score[e][j];
        for (int o = 0; o < d; ++o) {
          acc_t y = mac(bias_pong[o], hidden + static_cast<size_t>(j) * mh, weights_pong + static_cast<size_t>(o) * mh, mh);
          dst[o] = act_t(acc_t(y * score) + dst[o]);
        }
      }
    }
  }
};

namespace {

// Quantises a float tensor into a fixed-point vector and records overflows by name.
template <class X, class Src>
std::vector<X> quantise(const Src& src, const std::string& name, std::vector<std::pair<std::string, uint64_t>>& log,
                        uint64_t& total, bool round = false) {
  uint64_t before = fx_overflow_count();
  std::vector<X> out(src.size());
  for (size_t i = 0; i < src.size(); ++i)
    out[i] = round ? X::rounded(static_cast<double>(src[i])) : X(static_cast<double>(src[i]));  // AP_RND or AP_TRN
  uint64_t n = fx_overflow_count() - before;
  if (n) log.emplace_back(name, n);
  total += n;
  return out;
}

}  // namespace

template <Ovf O, FxFormat Fm>
FxWeights<O, Fm> convert_weights(const EncoderWeights& w, int task, bool round_weights) {
  using T = FxTypes<O, Fm>;
  FxWeights<O, Fm> r;
  r.cfg = w.cfg;
  r.dims = fx_dims(w.cfg);
  r.task = task;
  const ModelConfig& c = w.cfg;
  if (task < 0 || task >= c.num_tasks()) throw ConfigError("task index " + std::to_string(task) + " out of range");
  const int d = c.embed_dim, N = c.num_tokens(), P = c.patch, pin = r.dims.patch_in(), E = c.moe_experts;
  auto& log = r.overflow_by_tensor;
  uint64_t& tot = r.conversion_overflows;
  // Patch embedding with the input normalisation folded in: the model sees (p/255 - m_c)/s_c, the
  // kernel gets u = p/256 (ap_ufixed<8,0>), so w' = w·(256/255)/s_c and b' = b - Σ w·m_c/s_c.
  std::vector<double> pw(static_cast<size_t>(d) * pin), pb(d);
  for (int o = 0; o < d; ++o) {
    double bias = w.patch_b[o];
    for (int ch = 0; ch < 3; ++ch)
      for (int i = 0; i < P * P; ++i) {
        size_t at = static_cast<size_t>(o) * pin + ch * P * P + i;
        pw[at] = w.patch_w[at] * (256.0 / 255.0) / kImageNetStd[ch];
        bias -= w.patch_w[at] * kImageNetMean[ch] / kImageNetStd[ch];
      }
    pb[o] = bias;
  }
  r.patch_w = quantise<typename T::wt_patch_t>(pw, "patch_embed.weight", log, tot, round_weights);
  r.patch_b = quantise<typename T::wt_bias_t>(pb, "patch_embed.bias", log, tot, round_weights);
  std::vector<double> pos(w.pos.begin(), w.pos.end());
  for (int i = 0; i < d; ++i) pos[i] += w.cls[i];
  r.pos = quantise<typename T::act_t>(pos, "pos_embed+cls", log, tot, round_weights);
  for (int b = 0; b < c.depth; ++b) {
    const EncoderBlockWeights& B = w.blocks[b];
    typename FxWeights<O, Fm>::Block F;
    std::string p = "blocks." + std::to_string(b) + ".";
    F.moe = c.is_moe_block(b);
    F.ln1_g = quantise<typename T::wt_norm_t>(B.ln1_g, p + "norm1.weight", log, tot, round_weights);
    F.ln1_b = quantise<typename T::wt_bias_t>(B.ln1_b, p + "norm1.bias", log, tot, round_weights);
    F.ln2_g = quantise<typename T::wt_norm_t>(B.ln2_g, p + "norm2.weight", log, tot, round_weights);
    F.ln2_b = quantise<typename T::wt_bias_t>(B.ln2_b, p + "norm2.bias", log, tot, round_weights);
    const size_t dd = static_cast<size_t>(d) * d;
    auto slice = [&](const std::vector<float>& v, size_t off, size_t n) {
      return std::vector<float>(v.begin() + off, v.begin() + off + n);
    };
    F.q_w = quantise<typename T::wt_t>(slice(B.qkv_w, 0, dd), p + "attn.q.weight", log, tot, round_weights);
    F.k_w = quantise<typename T::wt_t>(slice(B.qkv_w, dd, dd), p + "attn.k.weight", log, tot, round_weights);
    F.v_w = quantise<typename T::wt_t>(slice(B.qkv_w, 2 * dd, dd), p + "attn.v.weight", log, tot, round_weights);
    F.q_b = quantise<typename T::wt_attn_bias_t>(slice(B.qkv_b, 0, d), p + "attn.q.bias", log, tot, round_weights);
    F.k_b = quantise<typename T::wt_attn_bias_t>(slice(B.qkv_b, d, d), p + "attn.k.bias", log, tot, round_weights);
    F.v_b = quantise<typename T::wt_attn_bias_t>(slice(B.qkv_b, 2 * d, d), p + "attn.v.bias", log, tot, round_weights);
    F.proj_w = quantise<typename T::wt_t>(B.proj_w, p + "attn.proj.weight", log, tot, round_weights);
    F.proj_b = quantise<typename T::wt_attn_bias_t>(B.proj_b, p + "attn.proj.bias", log, tot, round_weights);
    if (!F.moe) {
      F.fc1_w = quantise<typename T::wt_t>(B.fc1_w, p + "mlp.fc1.weight", log, tot, round_weights);
      F.fc1_b = quantise<typename T::wt_bias_t>(B.fc1_b, p + "mlp.fc1.bias", log, tot, round_weights);
      F.fc2_w = quantise<typename T::wt_t>(B.fc2_w, p + "mlp.fc2.weight", log, tot, round_weights);
      F.fc2_b = quantise<typename T::wt_bias_t>(B.fc2_b, p + "mlp.fc2.bias", log, tot, round_weights);
    } else {
      F.w1 = quantise<typename T::wt_t>(B.w1, p + "mlp.experts.htoh4.weight", log, tot, round_weights);
      F.b1 = quantise<typename T::wt_bias_t>(B.b1, p + "mlp.experts.htoh4.bias", log, tot, round_weights);
      F.w2 = quantise<typename T::wt_t>(B.w2, p + "mlp.experts.h4toh.weight", log, tot, round_weights);
      F.b2 = quantise<typename T::wt_bias_t>(B.b2, p + "mlp.experts.h4toh.bias", log, tot, round_weights);
      const std::vector<float>& G = router_matrix(w, b, task);  // [d_gate, E], token rows first
      std::vector<float> gt(static_cast<size_t>(E) * d);
      for (int e = 0; e < E; ++e)
        for (int i = 0; i < d; ++i) gt[static_cast<size_t>(e) * d + i] = G[static_cast<size_t>(i) * E + e];
      F.gate_w = quantise<typename T::wt_t>(gt, p + "mlp.gate.w_gate", log, tot, round_weights);
      F.gate_b = quantise<typename T::fm_t>(router_task_bias(w, b, task), p + "mlp.gate.task_bias", log, tot, round_weights);
    }
    r.blocks.push_back(std::move(F));
  }
  (void)N;
  return r;
}

template <Ovf O, FxFormat Fm>
FxEncoder<O, Fm>::FxEncoder(FxArith arith) : k_(std::make_unique<FxKernels<O, Fm>>()) {
  k_->arith = arith;
}
template <Ovf O, FxFormat Fm>
FxEncoder<O, Fm>::~FxEncoder() = default;
template <Ovf O, FxFormat Fm>
FxEncoder<O, Fm>::FxEncoder(FxEncoder&&) noexcept = default;
template <Ovf O, FxFormat Fm>
FxEncoder<O, Fm>& FxEncoder<O, Fm>::operator=(FxEncoder&&) noexcept = default;

template <Ovf O, FxFormat Fm>
std::vector<float> FxEncoder<O, Fm>::run(const FxWeights<O, Fm>& W, const uint8_t* image, FxRunInfo* info) {
  using K = FxKernels<O, Fm>;
  using fm_t = typename K::fm_t;
  using act_t = typename K::act_t;
  K& chip = *k_;
  const FxDims& D = W.dims;
  const int N = D.tokens, d = D.dim, H = D.heads, Kk = D.top_k;
  const size_t nd = static_cast<size_t>(N) * d;
  // DRAM buffers (the host allocates them; the kernels only see pointers).
  std::vector<typename K::pixel_t> img(static_cast<size_t>(D.in_chans) * D.img_h * D.img_w);
  for (size_t i = 0; i < img.size(); ++i) img[i] = K::pixel_t::from_raw(image[i]);  // p/256
  std::vector<act_t> x(nd), xn(nd), q(nd), k(nd), v(nd), att(nd), y(nd);
  std::vector<act_t> hidden(static_cast<size_t>(N) * std::max(D.hidden, D.moe_hidden));
  std::vector<act_t> scores(static_cast<size_t>(H) * N * N);
  std::vector<fm_t> sm_info(static_cast<size_t>(N) * H * 2);
  std::vector<int32_t> topk_idx(static_cast<size_t>(N) * Kk);
  std::vector<fm_t> topk_w(topk_idx.size());

  FxRunInfo local;
  FxRunInfo& R = info ? *info : local;
  R.overflows.assign(1 + D.depth, {});
  R.topk_idx.clear();
  R.topk_w.clear();
  auto count = [&](int layer, FxUnit u, uint64_t before) { R.overflows[layer][u] += fx_overflow_count() - before; };

  uint64_t c0 = fx_overflow_count();
  chip.patch_embed(img.data(), W.patch_w.data(), W.patch_b.data(), W.pos.data(), x.data(), D);
  count(0, fx_patch_embed, c0);
  for (int b = 0; b < D.depth; ++b) {
    const auto& B = W.blocks[b];
    const int L = b + 1;
    c0 = fx_overflow_count();
    chip.layernorm(x.data(), xn.data(), B.ln1_g.data(), B.ln1_b.data(), D, W.cfg.ln_eps);
    count(L, fx_layernorm, c0);
    c0 = fx_overflow_count();
    K::load_linear(chip.weights_ping, chip.bias_ping, B.q_w.data(), B.q_b.data(), d, d);
    chip.linear(xn.data(), q.data(), chip.weights_ping, chip.bias_ping, N, d, d, false);
    K::load_linear(chip.weights_pong, chip.bias_pong, B.k_w.data(), B.k_b.data(), d, d);
    chip.linear(xn.data(), k.data(), chip.weights_pong, chip.bias_pong, N, d, d, false);
    count(L, fx_linear, c0);
    c0 = fx_overflow_count();
    chip.attention_qk(q.data(), k.data(), scores.data(), sm_info.data(), D);
    count(L, fx_attention, c0);
    c0 = fx_overflow_count();
    K::load_linear(chip.weights_ping, chip.bias_ping, B.v_w.data(), B.v_b.data(), d, d);
    chip.linear(xn.data(), v.data(), chip.weights_ping, chip.bias_ping, N, d, d, false);
    count(L, fx_linear, c0);
    c0 = fx_overflow_count();
    K::attention_av(v.data(), scores.data(), sm_info.data(), att.data(), D);
    count(L, fx_attention, c0);
    c0 = fx_overflow_count();
    K::load_linear(chip.weights_pong, chip.bias_pong, B.proj_w.data(), B.proj_b.data(), d, d);
    chip.linear(att.data(), y.data(), chip.weights_pong, chip.bias_pong, N, d, d, false);
    count(L, fx_linear, c0);
    c0 = fx_overflow_count();
    K::add(x.data(), y.data(), D);
    count(L, fx_add, c0);
    c0 = fx_overflow_count();
    chip.layernorm(x.data(), xn.data(), B.ln2_g.data(), B.ln2_b.data(), D, W.cfg.ln_eps);
    count(L, fx_layernorm, c0);
    if (!B.moe) {
      c0 = fx_overflow_count();
      K::load_linear(chip.weights_ping, chip.bias_ping, B.fc1_w.data(), B.fc1_b.data(), D.hidden, d);
      chip.linear(xn.data(), hidden.data(), chip.weights_ping, chip.bias_ping, N, d, D.hidden, true);
      K::load_linear(chip.weights_pong, chip.bias_pong, B.fc2_w.data(), B.fc2_b.data(), d, D.hidden);
      chip.linear(hidden.data(), y.data(), chip.weights_pong, chip.bias_pong, N, D.hidden, d, false);
      count(L, fx_linear, c0);
    } else {
      c0 = fx_overflow_count();
      for (size_t i = 0; i < B.gate_w.size(); ++i) chip.gate_w[i] = B.gate_w[i];
      for (int e = 0; e < D.experts; ++e) chip.gate_b[e] = B.gate_b[e];
      chip.gating(xn.data(), D, topk_idx.data(), topk_w.data());
      count(L, fx_router, c0);
      c0 = fx_overflow_count();
      chip.experts(xn.data(), y.data(), hidden.data(), B.w1.data(), B.b1.data(), B.w2.data(), B.b2.data(), D);
      count(L, fx_experts, c0);
      R.topk_idx.push_back(topk_idx);
      std::vector<float> tw(topk_w.size());
      for (size_t i = 0; i < tw.size(); ++i) tw[i] = topk_w[i].to_float();
      R.topk_w.push_back(std::move(tw));
    }
    c0 = fx_overflow_count();
    K::add(x.data(), y.data(), D);
    count(L, fx_add, c0);
  }
  std::vector<float> out(nd);
  for (size_t i = 0; i < nd; ++i) out[i] = x[i].to_float();
  return out;
}

template <Ovf O, FxFormat Fm>
std::vector<float> fx_encoder(const FxWeights<O, Fm>& w, const uint8_t* image, FxRunInfo* info, FxArith arith) {
  return FxEncoder<O, Fm>(arith).run(w, image, info);
}

template <Ovf O>
typename FxTypes<O>::fm_t fx_gelu(typename FxTypes<O>::fm_t x) {
  return FxGeluRom<O>().gelu(x);
}

template <Ovf O>
std::pair<double, double> fx_layernorm_stats(const std::vector<double>& row, double eps, FxArith arith) {
  using K = FxKernels<O, FxFormat::a32w16>;
  using fm_t = typename K::fm_t;
  if (row.empty() || row.size() > static_cast<size_t>(kFxMaxDim)) throw ConfigError("fx_layernorm_stats: row size");
  auto k = std::make_unique<K>();
  k->arith = arith;
  std::vector<fm_t> r(row.begin(), row.end());
  fm_t mean, rstd;
  k->ln_stats(r.data(), static_cast<int>(r.size()), eps, mean, rstd);
  return {mean.to_double(), rstd.to_double()};
}

template <Ovf O>
double fx_attention_score(const std::vector<double>& q, const std::vector<double>& k, FxArith arith) {
  using K = FxKernels<O, FxFormat::a32w16>;
  using fm_t = typename K::fm_t;
  if (q.size() != k.size() || q.empty()) throw ConfigError("fx_attention_score: q and k differ in size");
  auto kern = std::make_unique<K>();
  kern->arith = arith;
  std::vector<fm_t> qf(q.begin(), q.end()), kf(k.begin(), k.end());
  const int hd = static_cast<int>(q.size());
  const fm_t scale = fm_t(1.0 / std::sqrt(static_cast<double>(hd)));  // as attention_qk
  return kern->score(qf.data(), kf.data(), hd, scale).to_double();
}

template <Ovf O>
std::vector<double> fx_single_pass_softmax(const std::vector<double>& scores) {
  using K = FxKernels<O, FxFormat::a32w16>;
  using fm_t = typename K::fm_t;
  if (scores.empty()) return {};
  std::vector<fm_t> s(scores.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = fm_t(scores[i]);
  fm_t sum = fm_t(1.0), mx = s[0];
  for (size_t i = 1; i < s.size(); ++i) {
    auto diff = mx - s[i];
    if (diff.raw() < 0) {
      sum = fm_t(fm_t(sum * K::exp_neg(-diff)) + fm_t(1.0));
      mx = s[i];
    } else {
      sum = fm_t(sum + K::exp_neg(diff));
    }
  }
  fm_t recip = fx_recip<fm_t>(sum);
  std::vector<double> p(s.size());
  for (size_t i = 0; i < s.size(); ++i) p[i] = fm_t(K::exp_neg(mx - s[i]) * recip).to_double();
  return p;
}

// Every format with both overflow modes: eight encoders, the count compile time allows.
#define M3VIT_FX_INSTANTIATE(O, Fm)                                                                          \
  template class FxEncoder<O, Fm>;                                                                          \
  template FxWeights<O, Fm> convert_weights<O, Fm>(const EncoderWeights&, int, bool);                       \
  template std::vector<float> fx_encoder<O, Fm>(const FxWeights<O, Fm>&, const uint8_t*, FxRunInfo*, FxArith);
M3VIT_FX_INSTANTIATE(Ovf::wrap, FxFormat::a32w16)
M3VIT_FX_INSTANTIATE(Ovf::saturate, FxFormat::a32w16)
M3VIT_FX_INSTANTIATE(Ovf::wrap, FxFormat::a32w8)
M3VIT_FX_INSTANTIATE(Ovf::saturate, FxFormat::a32w8)
M3VIT_FX_INSTANTIATE(Ovf::wrap, FxFormat::a16w16)
M3VIT_FX_INSTANTIATE(Ovf::saturate, FxFormat::a16w16)
M3VIT_FX_INSTANTIATE(Ovf::wrap, FxFormat::a16w8)
M3VIT_FX_INSTANTIATE(Ovf::saturate, FxFormat::a16w8)
#undef M3VIT_FX_INSTANTIATE
template FxTypes<Ovf::wrap>::fm_t fx_gelu<Ovf::wrap>(FxTypes<Ovf::wrap>::fm_t);
template FxTypes<Ovf::saturate>::fm_t fx_gelu<Ovf::saturate>(FxTypes<Ovf::saturate>::fm_t);
template std::vector<double> fx_single_pass_softmax<Ovf::wrap>(const std::vector<double>&);
template std::vector<double> fx_single_pass_softmax<Ovf::saturate>(const std::vector<double>&);
template std::pair<double, double> fx_layernorm_stats<Ovf::wrap>(const std::vector<double>&, double, FxArith);
template std::pair<double, double> fx_layernorm_stats<Ovf::saturate>(const std::vector<double>&, double, FxArith);
template double fx_attention_score<Ovf::wrap>(const std::vector<double>&, const std::vector<double>&, FxArith);
template double fx_attention_score<Ovf::saturate>(const std::vector<double>&, const std::vector<double>&, FxArith);

}  // namespace m3vit::hw
