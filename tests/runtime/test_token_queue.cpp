// Routing and token queues (runtime/token_queue.h) against hand-worked cases and a naive sort.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <filesystem>
#include <random>

#include "runtime/token_queue.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

// Hand case: logits [0, ln 2, ln 3, 0] -> p = [1, 2, 3, 1] / 7; top-2 = experts 2 (3/7), 1 (2/7),
// weights NOT renormalised (they sum to 5/7, noisy_gate_vmoe.py:258-268).
TEST(RouteTokens, SoftmaxOverAllExpertsThenTopK) {
  std::vector<float> logits = {0.f, std::log(2.f), std::log(3.f), 0.f};
  int32_t idx[2];
  float w[2];
  route_tokens(logits.data(), 1, 4, 2, idx, w);
  EXPECT_EQ(idx[0], 2);
  EXPECT_EQ(idx[1], 1);
  EXPECT_NEAR(w[0], 3.0 / 7, 1e-7);
  EXPECT_NEAR(w[1], 2.0 / 7, 1e-7);
  EXPECT_NEAR(logits[0] + logits[1] + logits[2] + logits[3], 1.0, 1e-6);  // probabilities in place
}

// Equal probabilities: the order CPU torch.topk gives (not simply the lower index first), taken
// from torch itself (/usr/bin/python3, Debian's torch 1.13) on the same probability rows. The
// router asks for the top k+1 and keeps k, as the authors' gate does.
TEST(RouteTokens, TiesAreOrderedAsTorchTopkOrdersThem) {
  struct Case {
    int E, k;
    std::vector<float> logits;
  };
  std::vector<Case> cases = {
      {8, 2, std::vector<float>(8, 0.5f)},
      {16, 4, std::vector<float>(16, 0.f)},
      {16, 4, {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}},
      {16, 2, {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
      {128, 4, std::vector<float>(128, 0.25f)},
  };
  // One torch run for all rows: each row bit for bit, into torch.topk(p, k + 1)[:k].
  std::string code = "import numpy as np, torch\n";
  std::string want_ours;
  for (Case& cs : cases) {
    std::vector<int32_t> idx(cs.k);
    std::vector<float> w(cs.k), probs = cs.logits;
    route_tokens(probs.data(), 1, cs.E, cs.k, idx.data(), w.data());
    for (int j = 0; j < cs.k; ++j) want_ours += (j ? " " : "") + std::to_string(idx[j]);
    want_ours += "\n";
    std::string row;
    for (float v : probs) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      row += (row.empty() ? "" : ",") + std::to_string(bits);
    }
    code += "p = torch.from_numpy(np.array([" + row + "], dtype=np.uint32).view(np.float32)).reshape(1, -1)\n" +
            "print(' '.join(str(int(i)) for i in torch.topk(p, min(" + std::to_string(cs.k + 1) +
            ", p.shape[1]), dim=1).indices[0, :" + std::to_string(cs.k) + "]))\n";
  }
  const std::string dir = rt_test::scratch_dir("topk-ties");
  const rt_test::PyResult r = rt_test::run_python(dir, "topk", code);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(want_ours, r.output) << "ours (above) vs torch.topk (below)";
  std::filesystem::remove_all(dir);
}

TEST(RouteTokens, MatchesAFullSortOnRandomLogits) {
  const int n = 200, E = 16, k = 4;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> logits(n * E);
  for (auto& x : logits) x = nd(rng);
  const std::vector<float> orig = logits;
  std::vector<int32_t> idx(n * k);
  std::vector<float> w(n * k);
  route_tokens(logits.data(), n, E, k, idx.data(), w.data());
  for (int t = 0; t < n; ++t) {
    std::vector<double> p(E);
    double mx = *std::max_element(orig.begin() + t * E, orig.begin() + (t + 1) * E), s = 0;
    for (int e = 0; e < E; ++e) s += (p[e] = std::exp(orig[t * E + e] - mx));
    std::vector<int> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    for (int j = 0; j < k; ++j) {
      ASSERT_EQ(idx[t * k + j], order[j]) << "token " << t;
      EXPECT_NEAR(w[t * k + j], p[order[j]] / s, 1e-6);
    }
  }
}

// Counting sort: 4 tokens, k = 2, E = 4, hand-placed choices.
TEST(TokenQueues, CountingSortGroupsPairsByExpert) {
  const int32_t idx[] = {2, 0,   // token 0
                         0, 2,   // token 1
                         3, 2,   // token 2
                         0, 3};  // token 3
  const float w[] = {.5f, .1f, .6f, .2f, .7f, .3f, .8f, .4f};
  TokenQueues q;
  q.reserve(4, 4, 2);
  q.build(idx, w, 4, 2);
  EXPECT_EQ(q.count, (std::vector<int32_t>{3, 0, 3, 2}));
  EXPECT_EQ(q.offset, (std::vector<int32_t>{0, 3, 3, 6, 8}));
  EXPECT_EQ(q.active, (std::vector<int32_t>{0, 2, 3}));  // expert 1 has no tokens: skipped
  EXPECT_EQ(q.token, (std::vector<int32_t>{0, 1, 3, 0, 1, 2, 2, 3}));
  EXPECT_EQ(q.weight, (std::vector<float>{.1f, .6f, .8f, .5f, .2f, .3f, .7f, .4f}));
  EXPECT_EQ(q.pair, (std::vector<int32_t>{1, 2, 6, 0, 3, 5, 4, 7}));  // token·k + choice
  // Rebuilding with fewer tokens reuses the buffers and forgets the old queues.
  q.build(idx, w, 1, 2);
  EXPECT_EQ(q.active, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(q.count, (std::vector<int32_t>{1, 0, 1, 0}));
}

}  // namespace
}  // namespace m3vit::rt
