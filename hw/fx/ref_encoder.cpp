// fp32 reference encoder (hw/fx/ref_encoder.h). Shapes: x [N, d], qkv rows s·d + h·hd + j
// (vision_transformer_moe.py:194-224), experts [E, out, in] (FastMoE layout).
#include "hw/fx/ref_encoder.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/errors.h"

namespace m3vit::hw {

double gelu_exact(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

double ActivationRanges::largest() const {
  return std::max({tokens, normed, qkv, attention, hidden, linear_out});
}

void ActivationRanges::merge(const ActivationRanges& o) {
  tokens = std::max(tokens, o.tokens);
  normed = std::max(normed, o.normed);
  qkv = std::max(qkv, o.qkv);
  attention = std::max(attention, o.attention);
  hidden = std::max(hidden, o.hidden);
  linear_out = std::max(linear_out, o.linear_out);
}

namespace {

using Mat = std::vector<float>;

void track(double& m, const Mat& v) {
  for (float e : v) m = std::max(m, static_cast<double>(std::fabs(e)));
}

// out[n, o] = b[o] + Σ_i in[n, i] · W[o, i]
void linear(const float* in, int n, int din, const float* W, const float* b, int dout, float* out) {
  for (int t = 0; t < n; ++t)
    for (int o = 0; o < dout; ++o) {
      double acc = b ? b[o] : 0.0;
      const float* w = W + static_cast<size_t>(o) * din;
      const float* x = in + static_cast<size_t>(t) * din;
      for (int i = 0; i < din; ++i) acc += static_cast<double>(x[i]) * w[i];
      out[static_cast<size_t>(t) * dout + o] = static_cast<float>(acc);
    }
}

void layernorm(const Mat& x, int n, int d, const Mat& g, const Mat& b, double eps, Mat& out) {
  out.resize(x.size());
  for (int t = 0; t < n; ++t) {
    const float* r = &x[static_cast<size_t>(t) * d];
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += r[i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += (r[i] - mean) * (r[i] - mean);
    var /= d;
    double rs = 1.0 / std::sqrt(var + eps);
    for (int i = 0; i < d; ++i) out[static_cast<size_t>(t) * d + i] = static_cast<float>((r[i] - mean) * rs * g[i] + b[i]);
  }
}

}  // namespace

EncoderOutput ref_encoder(const EncoderWeights& w, const uint8_t* image, int task, bool keep_blocks) {
  const ModelConfig& c = w.cfg;
  const int d = c.embed_dim, N = c.num_tokens(), H = c.num_heads, hd = c.head_dim(), P = c.patch;
  const int gw = c.grid_w(), gh = c.grid_h(), C = c.in_chans, pin = C * P * P;
  if (task < 0 || task >= c.num_tasks()) throw ConfigError("task index " + std::to_string(task) + " out of range");
  if (C != 3) throw ConfigError("the hardware encoder takes RGB images (in_chans 3), config has " + std::to_string(C));
  EncoderOutput res;

  // Patch embedding: normalised pixels, conv k=s=P as a linear map over each patch [C, P, P].
  Mat x(static_cast<size_t>(N) * d);
  std::vector<float> patch(pin);
  for (int py = 0; py < gh; ++py)
    for (int px = 0; px < gw; ++px) {
      for (int ch = 0; ch < C; ++ch)
        for (int yy = 0; yy < P; ++yy)
          for (int xx = 0; xx < P; ++xx) {
            size_t src = (static_cast<size_t>(ch) * c.img_h + py * P + yy) * c.img_w + px * P + xx;
            patch[(ch * P + yy) * P + xx] = (image[src] / 255.0f - kImageNetMean[ch]) / kImageNetStd[ch];
          }
      int tok = 1 + py * gw + px;
      linear(patch.data(), 1, pin, w.patch_w.data(), w.patch_b.data(), d, &x[static_cast<size_t>(tok) * d]);
    }
  for (int i = 0; i < d; ++i) x[i] = w.cls[i];
  for (size_t i = 0; i < x.size(); ++i) x[i] += w.pos[i];
  ActivationRanges& rg = res.ranges;
  track(rg.tokens, x);

  Mat xn, q(static_cast<size_t>(N) * d), k(q.size()), v(q.size()), att(q.size()), y(q.size());
  std::vector<double> s(N);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int b = 0; b < c.depth; ++b) {
    const EncoderBlockWeights& B = w.blocks[b];
    layernorm(x, N, d, B.ln1_g, B.ln1_b, c.ln_eps, xn);
    track(rg.normed, xn);
    linear(xn.data(), N, d, B.qkv_w.data(), B.qkv_b.data(), d, q.data());
    linear(xn.data(), N, d, B.qkv_w.data() + static_cast<size_t>(d) * d, B.qkv_b.data() + d, d, k.data());
    linear(xn.data(), N, d, B.qkv_w.data() + 2 * static_cast<size_t>(d) * d, B.qkv_b.data() + 2 * d, d, v.data());
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i) {
        double mx = -1e300;
        for (int j = 0; j < N; ++j) {
          double dot = 0;
          for (int e = 0; e < hd; ++e)
            dot += static_cast<double>(q[static_cast<size_t>(i) * d + h * hd + e]) * k[static_cast<size_t>(j) * d + h * hd + e];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int j = 0; j < N; ++j) sum += s[j] = std::exp(s[j] - mx);
        for (int e = 0; e < hd; ++e) {
          double acc = 0;
          for (int j = 0; j < N; ++j) acc += s[j] * v[static_cast<size_t>(j) * d + h * hd + e];
          att[static_cast<size_t>(i) * d + h * hd + e] = static_cast<float>(acc / sum);
        }
      }
    track(rg.qkv, q);
    track(rg.qkv, k);
    track(rg.qkv, v);
    track(rg.attention, att);
    linear(att.data(), N, d, B.proj_w.data(), B.proj_b.data(), d, y.data());
    track(rg.linear_out, y);
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    track(rg.tokens, x);
    layernorm(x, N, d, B.ln2_g, B.ln2_b, c.ln_eps, xn);
    track(rg.normed, xn);
    if (!c.is_moe_block(b)) {
      const int hid = c.mlp_hidden();
      Mat hbuf(static_cast<size_t>(N) * hid);
      linear(xn.data(), N, d, B.fc1_w.data(), B.fc1_b.data(), hid, hbuf.data());
      for (auto& e : hbuf) e = static_cast<float>(gelu_exact(e));
      track(rg.hidden, hbuf);
      linear(hbuf.data(), N, hid, B.fc2_w.data(), B.fc2_b.data(), d, y.data());
    } else {
      const int E = c.moe_experts, K = c.moe_top_k, mh = c.moe_hidden();
      const std::vector<float>& G = router_matrix(w, b, task);  // [d_gate, E], first d rows = token part
      std::vector<float> gbias = router_task_bias(w, b, task);
      std::vector<int32_t> idx(static_cast<size_t>(N) * K);
      std::vector<float> wt(idx.size());
      std::vector<double> logit(E), p(E);
      std::vector<int> order(E);
      std::vector<float> hrow(mh), yrow(d);
      std::fill(y.begin(), y.end(), 0.0f);
      for (int t = 0; t < N; ++t) {
        const float* xt = &xn[static_cast<size_t>(t) * d];
        double mx = -1e300;
        for (int e = 0; e < E; ++e) {
          double a = gbias[e];
          for (int i = 0; i < d; ++i) a += static_cast<double>(xt[i]) * G[static_cast<size_t>(i) * E + e];
          logit[e] = a;
          mx = std::max(mx, a);
        }
        double sum = 0;
        for (int e = 0; e < E; ++e) sum += p[e] = std::exp(logit[e] - mx);
        for (int e = 0; e < E; ++e) p[e] /= sum;
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int bb) { return p[a] > p[bb]; });
        for (int j = 0; j < K; ++j) {
          int e = order[j];
          idx[static_cast<size_t>(t) * K + j] = e;
          wt[static_cast<size_t>(t) * K + j] = static_cast<float>(p[e]);
          linear(xt, 1, d, B.w1.data() + static_cast<size_t>(e) * mh * d, B.b1.data() + static_cast<size_t>(e) * mh, mh,
                 hrow.data());
          for (auto& h : hrow) h = static_cast<float>(gelu_exact(h));
          track(rg.hidden, hrow);
          linear(hrow.data(), 1, mh, B.w2.data() + static_cast<size_t>(e) * d * mh, B.b2.data() + static_cast<size_t>(e) * d,
                 d, yrow.data());
          for (int i = 0; i < d; ++i) y[static_cast<size_t>(t) * d + i] += static_cast<float>(p[e] * yrow[i]);
        }
      }
      res.topk_idx.push_back(std::move(idx));
      res.topk_w.push_back(std::move(wt));
    }
    track(rg.linear_out, y);
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    track(rg.tokens, x);
    if (keep_blocks) res.block_out.push_back(x);
  }
  res.out = std::move(x);
  return res;
}

}  // namespace m3vit::hw
