#include "common/pch/torch_pch.h"

// Router (model/router.cpp) and its aux loss: exact ties, k = E, k = 1, the load-balancing loss
// against plain-loop hand computations (noise off and on), the smooth load estimate against its
// direct definition, and the authors' quirk-Q6 variant.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "core/config.h"
#include "model/moe_layer.h"
#include "model/router.h"

namespace m3vit {
namespace {

using Mat = std::vector<std::vector<double>>;

torch::Tensor to_tensor(const Mat& m) {
  std::vector<double> flat;
  for (auto& r : m) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kDouble).reshape({(int64_t)m.size(), (int64_t)m[0].size()});
}

// --- plain-loop reference formulas (independent of the module code) ---
std::vector<double> softmax_row(const std::vector<double>& l) {
  double mx = *std::max_element(l.begin(), l.end()), s = 0;
  std::vector<double> p(l.size());
  for (size_t i = 0; i < l.size(); ++i) s += (p[i] = std::exp(l[i] - mx));
  for (auto& v : p) v /= s;
  return p;
}
std::vector<double> sorted_desc(std::vector<double> v) {
  std::sort(v.begin(), v.end(), std::greater<double>());
  return v;
}
double cv2(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  double mean = 0;
  for (double x : v) mean += x / n;
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean) / (n - 1);  // unbiased
  return var / (mean * mean + 1e-10);
}
double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// importance_e = Σ_t (p_te if e in top-k of token t else 0); hard load_e = #tokens with e in top-k.
void importance_and_count(const Mat& noisy, int k, std::vector<double>& imp, std::vector<double>& cnt) {
  const size_t E = noisy[0].size();
  imp.assign(E, 0);
  cnt.assign(E, 0);
  for (auto& row : noisy) {
    auto p = softmax_row(row);
    const double kth = sorted_desc(p)[k - 1];
    for (size_t e = 0; e < E; ++e)
      if (p[e] >= kth) imp[e] += p[e], cnt[e] += 1;
  }
}

// Shazeer's smooth load, by definition: P(e in top k) = Phi((clean_e - kth largest noisy among the others) / sigma).
std::vector<double> smooth_load_by_definition(const Mat& clean, const Mat& noisy, double sigma, int k) {
  std::vector<double> load(clean[0].size(), 0);
  for (size_t t = 0; t < clean.size(); ++t)
    for (size_t e = 0; e < clean[t].size(); ++e) {
      std::vector<double> others;
      for (size_t j = 0; j < clean[t].size(); ++j)
        if (j != e) others.push_back(noisy[t][j]);
      load[e] += Phi((clean[t][e] - sorted_desc(others)[k - 1]) / sigma);
    }
  return load;
}

// The authors' code (quirk Q6): thresholds are the (k+1)-th / k-th largest softmax PROBABILITIES,
// "in" means noisy logit > the (k+1)-th probability.
std::vector<double> smooth_load_q6(const Mat& clean, const Mat& noisy, double sigma, int k) {
  std::vector<double> load(clean[0].size(), 0);
  for (size_t t = 0; t < clean.size(); ++t) {
    auto top = sorted_desc(softmax_row(noisy[t]));
    for (size_t e = 0; e < clean[t].size(); ++e) {
      const bool in = noisy[t][e] > top[k];
      load[e] += Phi((clean[t][e] - (in ? top[k] : top[k - 1])) / sigma);
    }
  }
  return load;
}

// A router whose logits equal its input: d_gate = E, w_gate = identity.
Router identity_router(int E, int k, double noise_std, bool q6 = false) {
  Router r(E, E, k, noise_std, q6);
  r->to(torch::kDouble);
  torch::NoGradGuard ng;
  r->w_gate.copy_(torch::eye(E, torch::kDouble));
  return r;
}

const Mat kLogits = {{2.0, 1.0, 0.5, -1.0}, {0.1, 0.3, 2.5, 0.2}, {1.5, -0.5, 1.4, 0.0}};

// --- aux loss, noise off ---
TEST(RouterAux, NoiseOffMatchesHandComputation) {
  Router r = identity_router(4, 2, 0.0);
  r->train();
  r->forward(to_tensor(kLogits));
  torch::Tensor loss = r->take_loss();
  ASSERT_TRUE(loss.defined());
  std::vector<double> imp, cnt;
  importance_and_count(kLogits, 2, imp, cnt);
  // By hand: top-2 per token: {0,1}, {2,1}, {0,2} -> counts [2,2,2,0].
  EXPECT_EQ(cnt, (std::vector<double>{2, 2, 2, 0}));
  EXPECT_NEAR(loss.item<double>(), cv2(imp) + cv2(cnt), 1e-12);
  // Accumulates over calls; take clears.
  r->forward(to_tensor(kLogits));
  r->forward(to_tensor(kLogits));
  EXPECT_NEAR(r->take_loss().item<double>(), 2 * (cv2(imp) + cv2(cnt)), 1e-12);
  EXPECT_FALSE(r->take_loss().defined());
  // No loss in eval.
  r->eval();
  r->forward(to_tensor(kLogits));
  EXPECT_FALSE(r->take_loss().defined());
}

TEST(RouterAux, CvSquaredUsesUnbiasedVariance) {
  // v = [1, 2, 3, 6]: mean 3, unbiased var (4+1+0+9)/3 = 14/3, cv² = (14/3)/(9 + 1e-10).
  EXPECT_NEAR(cv_squared(torch::tensor({1.0, 2.0, 3.0, 6.0}, torch::kDouble)).item<double>(), (14.0 / 3) / (9 + 1e-10),
              1e-14);
  EXPECT_EQ(cv_squared(torch::tensor({5.0}, torch::kDouble)).item<double>(), 0.0);
}

// --- smooth load estimate (noise on) ---
TEST(RouterAux, SmoothLoadMatchesDefinitionAndQ6Differs) {
  const Mat clean = kLogits;
  const Mat noisy = {{2.1, 0.8, 0.6, -0.9}, {0.0, 0.45, 2.4, 0.25}, {1.45, -0.4, 1.55, 0.1}};
  const double sigma = 0.3;
  const int k = 2;
  torch::Tensor c = to_tensor(clean), n = to_tensor(noisy), p = torch::softmax(n, 1);
  auto want = smooth_load_by_definition(clean, noisy, sigma, k);
  auto want_q6 = smooth_load_q6(clean, noisy, sigma, k);
  torch::Tensor got = smooth_load(c, n, p, sigma, k, false);
  torch::Tensor got_q6 = smooth_load(c, n, p, sigma, k, true);
  double max_diff = 0;
  for (int e = 0; e < 4; ++e) {
    EXPECT_NEAR(got[e].item<double>(), want[e], 1e-12) << "expert " << e;
    EXPECT_NEAR(got_q6[e].item<double>(), want_q6[e], 1e-12) << "expert " << e;
    max_diff = std::max(max_diff, std::abs(want[e] - want_q6[e]));
  }
  EXPECT_GT(max_diff, 0.1);  // Q6 is a different quantity
}

TEST(RouterAux, NoisyRouterUsesSmoothLoadWithResampledNoise) {
  for (bool q6 : {false, true}) {
    const double noise_std = 0.8, sigma = noise_std / 4;  // sigma = noise_std / E
    Router r = identity_router(4, 2, noise_std, q6);
    r->train();
    torch::manual_seed(7);
    RouteResult res = r->forward(to_tensor(kLogits));
    torch::Tensor loss = r->take_loss();
    // Replay the noise draw: same seed, same shape and dtype.
    torch::manual_seed(7);
    torch::Tensor noise = torch::randn({3, 4}, torch::kDouble) * sigma;
    Mat noisy = kLogits;
    for (int t = 0; t < 3; ++t)
      for (int e = 0; e < 4; ++e) noisy[t][e] += noise[t][e].item<double>();
    // Trace semantics: logits before noise, probs after.
    EXPECT_LT((res.logits - to_tensor(kLogits)).abs().max().item<double>(), 1e-15);
    EXPECT_LT((res.probs - torch::softmax(to_tensor(noisy), 1)).abs().max().item<double>(), 1e-15);
    std::vector<double> imp, cnt;
    importance_and_count(noisy, 2, imp, cnt);
    auto load = q6 ? smooth_load_q6(kLogits, noisy, sigma, 2) : smooth_load_by_definition(kLogits, noisy, sigma, 2);
    EXPECT_NEAR(loss.item<double>(), cv2(imp) + cv2(load), 1e-12) << "q6=" << q6;
  }
}

TEST(Router, EvalHasNoNoise) {
  Router r = identity_router(4, 2, 5.0);
  r->eval();
  RouteResult res = r->forward(to_tensor(kLogits));
  EXPECT_LT((res.probs - torch::softmax(to_tensor(kLogits), 1)).abs().max().item<double>(), 1e-15);
}

// --- routing edge cases through the whole MoE layer ---
ModelConfig layer_cfg(int E, int k) {
  ModelConfig c;
  c.embed_dim = 8;
  c.num_heads = 2;
  c.depth = 2;
  c.moe_blocks = {1};
  c.moe_experts = E;
  c.moe_top_k = k;
  c.tasks = {{"semseg", 3}};
  return c;
}

// Expert e on tokens x [T, d], plain matmuls.
torch::Tensor expert_ref(MoELayerImpl& l, int e, const torch::Tensor& x) {
  auto& ex = *l.experts;
  torch::Tensor h = torch::gelu(x.matmul(ex.htoh4->weight[e].t()) + ex.htoh4->bias[e]);
  return h.matmul(ex.h4toh->weight[e].t()) + ex.h4toh->bias[e];
}

MoELayer make_layer(int E, int k, int seed) {
  torch::manual_seed(seed);
  MoELayer l(layer_cfg(E, k));
  l->to(torch::kDouble);
  l->eval();
  torch::NoGradGuard ng;
  l->experts->htoh4->bias.normal_(0, 0.1);
  l->experts->h4toh->bias.normal_(0, 0.1);
  return l;
}

TEST(RouterEdge, ExactTiesFollowTorchTopkAndOutputIsCorrect) {
  const int E = 6, k = 3;
  MoELayer l = make_layer(E, k, 1);
  {
    torch::NoGradGuard ng;
    l->router(0)->w_gate.zero_();  // every logit 0: all E probabilities exactly 1/E
  }
  torch::Tensor x = torch::randn({1, 5, 8}, torch::kDouble);
  RouteResult r;
  torch::Tensor y = l->forward(x, 0, {}, &r).reshape({5, 8});
  torch::Tensor probs = torch::full({5, E}, 1.0 / E, torch::kDouble);
  // The authors take topk(k+1) and keep the first k (noisy_gate_vmoe.py:259-265).
  torch::Tensor want_idx = std::get<1>(probs.topk(k + 1, 1)).narrow(1, 0, k);
  EXPECT_TRUE(torch::equal(r.idx, want_idx)) << r.idx << want_idx;
  // torch::topk(k) breaks these ties the same way (not by index order).
  EXPECT_TRUE(torch::equal(r.idx, std::get<1>(probs.topk(k, 1))));
  EXPECT_TRUE(torch::equal(r.w, torch::full({5, k}, 1.0 / E, torch::kDouble)));
  // Each token's k chosen experts are distinct.
  for (int t = 0; t < 5; ++t) EXPECT_EQ(std::get<0>(at::_unique(r.idx[t])).numel(), k);
  torch::Tensor xt = x.reshape({5, 8});
  for (int t = 0; t < 5; ++t) {
    torch::Tensor want = torch::zeros({8}, torch::kDouble);
    for (int j = 0; j < k; ++j) want += expert_ref(*l, r.idx[t][j].item<int>(), xt.narrow(0, t, 1))[0] / E;
    EXPECT_LT((y[t] - want).abs().max().item<double>(), 1e-12) << "token " << t;
  }
}

TEST(RouterEdge, PartialTieAtTheKthPlace) {
  // Logits [1, 1, 0.5, 1, 0, 0] with k = 2: three experts tie for the two places.
  Router r = identity_router(6, 2, 0.0);
  r->eval();
  torch::Tensor x = torch::tensor({1.0, 1.0, 0.5, 1.0, 0.0, 0.0}, torch::kDouble).reshape({1, 6});
  RouteResult res = r->forward(x);
  torch::Tensor probs = torch::softmax(x, 1);
  torch::Tensor want_idx = std::get<1>(probs.topk(3, 1)).narrow(1, 0, 2);
  EXPECT_TRUE(torch::equal(res.idx, want_idx));
  for (int j = 0; j < 2; ++j) {
    const int64_t e = res.idx[0][j].item<int64_t>();
    EXPECT_TRUE(e == 0 || e == 1 || e == 3);
    EXPECT_NEAR(res.w[0][j].item<double>(), std::exp(1.0) / (3 * std::exp(1.0) + std::exp(0.5) + 2), 1e-15);
  }
}

TEST(RouterEdge, TopKEqualsEUsesEveryExpert) {
  const int E = 4;
  MoELayer l = make_layer(E, E, 2);
  torch::Tensor x = torch::randn({2, 3, 8}, torch::kDouble);
  torch::Tensor y = l->forward(x, 0, {}).reshape({6, 8});
  torch::Tensor xt = x.reshape({6, 8});
  torch::Tensor p = torch::softmax(xt.matmul(l->router(0)->w_gate), 1);  // [6, E]
  torch::Tensor want = torch::zeros({6, 8}, torch::kDouble);
  for (int e = 0; e < E; ++e) want += p.select(1, e).unsqueeze(1) * expert_ref(*l, e, xt);
  EXPECT_LT((y - want).abs().max().item<double>(), 1e-12);
  // Every weight row sums to 1 only here (k = E): the kept probabilities are never renormalised.
}

TEST(RouterEdge, TopOneKeepsTheUnrenormalisedProbability) {
  const int E = 5;
  MoELayer l = make_layer(E, 1, 3);
  torch::Tensor x = torch::randn({1, 7, 8}, torch::kDouble);
  RouteResult r;
  torch::Tensor y = l->forward(x, 0, {}, &r).reshape({7, 8});
  torch::Tensor xt = x.reshape({7, 8});
  torch::Tensor p = torch::softmax(xt.matmul(l->router(0)->w_gate), 1);
  for (int t = 0; t < 7; ++t) {
    const int64_t e = p[t].argmax().item<int64_t>();
    EXPECT_EQ(r.idx[t][0].item<int64_t>(), e);
    EXPECT_LT(r.w[t][0].item<double>(), 1.0);  // not renormalised to 1
    torch::Tensor want = p[t][e] * expert_ref(*l, e, xt.narrow(0, t, 1))[0];
    EXPECT_LT((y[t] - want).abs().max().item<double>(), 1e-12) << "token " << t;
  }
}

TEST(RouterInit, KaimingUniformBounds) {
  // w_gate [d_gate, E]: torch's fan_in of a 2-D tensor is size(1) = E -> U(±1/sqrt(E)).
  torch::manual_seed(0);
  Router r(64, 16, 4, 0.0, false);
  EXPECT_LE(r->w_gate.abs().max().item<double>(), 0.25);
  EXPECT_GT(r->w_gate.abs().max().item<double>(), 0.24);  // 1024 draws reach close to the bound
}

}  // namespace
}  // namespace m3vit
