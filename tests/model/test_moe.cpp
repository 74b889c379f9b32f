#include "common/pch/torch_pch.h"

// MoE dispatch (model/moe_layer.cpp): the sparse token-queue dispatch against a dense reference that
// runs every expert on every token and masks by the top-k gates (forward and backward), a central
// finite-difference gradient check in double, and the token queues themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/config.h"
#include "model/experts.h"
#include "model/moe_layer.h"

namespace m3vit {
namespace {

ModelConfig moe_cfg(int d, int E, int k, double ratio = 1.0) {
  ModelConfig c;
  c.embed_dim = d;
  c.num_heads = 4;
  c.depth = 2;
  c.moe_blocks = {1};
  c.moe_experts = E;
  c.moe_top_k = k;
  c.moe_mlp_ratio = ratio;
  c.gate = GateType::multi;
  c.tasks = {{"semseg", 3}};
  return c;
}

// Dense reference, written independently of the module: every expert on every token with plain
// matmuls, then Σ_e G[:, e] · y_e where G holds the top-k softmax probabilities (not renormalised).
torch::Tensor dense_reference(MoELayerImpl& layer, const torch::Tensor& x, int k) {
  torch::Tensor w_gate = layer.router(0)->w_gate;
  auto& ex = *layer.experts;
  const int E = ex.num_experts();
  torch::Tensor probs = torch::softmax(x.matmul(w_gate), 1);  // [T, E]
  auto [v, i] = probs.topk(k, 1);
  torch::Tensor G = torch::zeros_like(probs).scatter(1, i, v);  // [T, E]
  torch::Tensor out = torch::zeros_like(x);
  for (int e = 0; e < E; ++e) {
    torch::Tensor h = torch::gelu(x.matmul(ex.htoh4->weight[e].t()) + ex.htoh4->bias[e]);
    torch::Tensor y = h.matmul(ex.h4toh->weight[e].t()) + ex.h4toh->bias[e];  // [T, d]
    out = out + G.select(1, e).unsqueeze(1) * y;
  }
  return out;
}

void randomise_biases(MoELayerImpl& layer) {
  torch::NoGradGuard ng;
  layer.experts->htoh4->bias.normal_(0, 0.1);
  layer.experts->h4toh->bias.normal_(0, 0.1);
}

std::vector<torch::Tensor> grads_of(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> g;
  for (auto& t : ts) g.push_back(t.grad().clone());
  return g;
}

// With 1 thread the experts run one after another; with 2 the expert matmuls run side by side
// (model/expert_mlp_function.cpp), each on its own OpenMP thread.
TEST(MoeDispatch, MatchesDenseReferenceForwardAndBackward) {
  const int threads_before = at::get_num_threads();
  for (int threads : {1, 2})
  for (int k : {1, 2, 3, 6}) {
    at::set_num_threads(threads);
    torch::manual_seed(11 + k);
    MoELayer layer(moe_cfg(32, 6, k));
    layer->to(torch::kDouble);
    randomise_biases(*layer);
    layer->eval();  // no noise, no aux loss: the same routing in both computations
    torch::Tensor x = torch::randn({2, 7, 32}, torch::kDouble).requires_grad_(true);
    torch::Tensor R = torch::randn({2, 7, 32}, torch::kDouble);
    std::vector<torch::Tensor> params = {x, layer->experts->htoh4->weight, layer->experts->htoh4->bias,
                                         layer->experts->h4toh->weight, layer->experts->h4toh->bias,
                                         layer->router(0)->w_gate};

    RouteResult route;
    torch::Tensor y = layer->forward(x, 0, {}, &route);
    ASSERT_EQ(y.sizes(), x.sizes());
    EXPECT_EQ(route.idx.sizes(), (std::vector<int64_t>{14, k}));
    (y * R).sum().backward();
    auto g_sparse = grads_of(params);
    for (auto& p : params) p.mutable_grad().zero_();

    torch::Tensor y_ref = dense_reference(*layer, x.reshape({14, 32}), k).reshape({2, 7, 32});
    (y_ref * R).sum().backward();
    auto g_dense = grads_of(params);

    // Both are exact double computations of the same sum in a different order: 1e-12 is rounding.
    EXPECT_LT((y - y_ref).abs().max().item<double>(), 1e-12) << "k=" << k;
    const char* names[] = {"x", "htoh4.weight", "htoh4.bias", "h4toh.weight", "h4toh.bias", "w_gate"};
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_GT(g_dense[i].abs().max().item<double>(), 0.0) << names[i];
      EXPECT_LT((g_sparse[i] - g_dense[i]).abs().max().item<double>(), 1e-12)
          << names[i] << " k=" << k << " threads=" << threads;
    }
  }
  at::set_num_threads(threads_before);
}

// Central finite differences in double on a tiny layer (torch::autograd::gradcheck is Python-only).
TEST(MoeDispatch, GradcheckFiniteDifferences) {
  torch::manual_seed(3);
  MoELayer layer(moe_cfg(4, 3, 2, 0.75));  // d 4, hidden 3, E 3, k 2
  layer->to(torch::kDouble);
  randomise_biases(*layer);
  layer->eval();
  torch::Tensor x = torch::randn({1, 5, 4}, torch::kDouble).requires_grad_(true);
  torch::Tensor R = torch::randn({1, 5, 4}, torch::kDouble);
  std::vector<torch::Tensor> params = {x, layer->experts->htoh4->weight, layer->experts->htoh4->bias,
                                       layer->experts->h4toh->weight, layer->experts->h4toh->bias,
                                       layer->router(0)->w_gate};
  auto f = [&] { return (layer->forward(x, 0, {}) * R).sum(); };
  f().backward();
  const double eps = 1e-6;
  for (size_t pi = 0; pi < params.size(); ++pi) {
    torch::Tensor p = params[pi];
    torch::Tensor g = p.grad().clone().reshape({-1});
    torch::Tensor flat = p.detach().view({-1});  // shares storage with p
    for (int64_t j = 0; j < flat.numel(); ++j) {
      const double orig = flat[j].item<double>();
      double fp, fm;
      {
        torch::NoGradGuard ng;
        flat[j] = orig + eps;
        fp = f().item<double>();
        flat[j] = orig - eps;
        fm = f().item<double>();
        flat[j] = orig;
      }
      const double numeric = (fp - fm) / (2 * eps);
      const double analytic = g[j].item<double>();
      // Central differences have O(eps²) truncation and O(1e-16/eps) rounding error: ~1e-9 here.
      EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-6 * std::abs(numeric)) << "param " << pi << " element " << j;
    }
  }
}

TEST(MoeDispatch, TokenQueuesAreStableSortedPerExpert) {
  // 5 tokens, k = 2, E = 4; expert 2 is chosen by nobody.
  torch::Tensor idx = torch::tensor({0, 3, 3, 1, 1, 0, 3, 0, 1, 3}, torch::kLong).reshape({5, 2});
  TokenQueues q = make_token_queues(idx, 4);
  EXPECT_EQ(q.count, (std::vector<int64_t>{3, 3, 0, 4}));
  // Expected by hand: pairs (t*k+j) grouped by expert, in ascending pair order within each expert.
  std::vector<int64_t> want_pair = {0, 5, 7, 3, 4, 8, 1, 2, 6, 9};
  std::vector<int64_t> want_token = {0, 2, 3, 1, 2, 4, 0, 1, 3, 4};
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(q.pair[i].item<int64_t>(), want_pair[i]) << i;
    EXPECT_EQ(q.token[i].item<int64_t>(), want_token[i]) << i;
  }
}

// The dispatch never touches an expert without tokens: poison one expert with NaN and route every
// token away from it. A dense evaluation (every expert on every token, masked by 0 gates) would give
// NaN · 0 = NaN in every output.
TEST(MoeDispatch, UnchosenExpertIsNeverComputed) {
  torch::manual_seed(5);
  MoELayer layer(moe_cfg(8, 4, 2));
  layer->eval();
  torch::Tensor x = torch::rand({1, 6, 8}) + 0.1;  // positive tokens
  {
    torch::NoGradGuard ng;
    layer->router(0)->w_gate.select(1, 3).fill_(-10.0);  // expert 3's logit is very negative
    layer->experts->htoh4->weight[3].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  RouteResult route;
  torch::Tensor y = layer->forward(x, 0, {}, &route);
  EXPECT_EQ((route.idx == 3).sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  // Its gradients are zeros (what autograd gives a weight no output depends on), the others finite.
  y.sum().backward();
  auto& ex = *layer->experts;
  for (const torch::Tensor& g : {ex.htoh4->weight.grad(), ex.htoh4->bias.grad(), ex.h4toh->weight.grad(),
                                 ex.h4toh->bias.grad()}) {
    EXPECT_EQ(g[3].abs().max().item<float>(), 0.0f);
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
    EXPECT_GT(g.abs().max().item<float>(), 0.0f);
  }
}

// No token for any expert (one rank of an expert-parallel run can get none): the empty output is
// still a function of the input and the weights, so that the backward pass reaches the input (the
// all-to-all's backward, a collective, must run on every rank) and every weight gets a zero gradient.
TEST(MoeDispatch, NoTokensStillReachInputAndWeights) {
  Experts ex(4, 8, 6);
  torch::Tensor xs = torch::zeros({0, 8}).requires_grad_(true);
  torch::Tensor y = ex->forward_queues(xs, {0, 0, 0, 0});
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{0, 8}));
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  ASSERT_TRUE(xs.grad().defined());
  EXPECT_EQ(xs.grad().sizes(), xs.sizes());
  for (const torch::Tensor& w : {ex->htoh4->weight, ex->htoh4->bias, ex->h4toh->weight, ex->h4toh->bias}) {
    ASSERT_TRUE(w.grad().defined());
    EXPECT_EQ(w.grad().sizes(), w.sizes());
    EXPECT_EQ(w.grad().abs().max().item<float>(), 0.0f);
  }
}

}  // namespace
}  // namespace m3vit
