// The reordered MoE layer (runtime/moe_layer.h) on its own, at a size the tiny engine tests do not
// reach: 1157 tokens, so that a thread's part of an expert queue is longer than one chunk
// (kMaxChunk rows) and is cut, with 1, 2 and 3 threads, experts resident and streamed through a
// two-slot ring. Oracle: the layer written out directly in double (router, softmax over all E,
// top-k without renormalising, Σ_j w_j·fc2(GELU(fc1(x))) per token, custom_moe_layer.py:290-297).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>

#include "runtime/expert_store.h"
#include "runtime/model_file.h"
#include "runtime/moe_layer.h"
#include "runtime/weight_stream.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

struct Reference {
  std::vector<double> out;          // [N, d] x + MoE(xn)
  std::vector<int32_t> idx;         // [N, k]
  std::vector<int32_t> queue_len;   // [E]
};

Reference reference(const ModelFile& f, int block, const std::vector<float>& xn, const std::vector<float>& x) {
  const ModelConfig& c = f.config();
  const int N = c.num_tokens(), d = c.embed_dim, hid = c.moe_hidden(), E = c.moe_experts, k = c.moe_top_k;
  const float* g = f.data(block_key(block, "mlp.gate.0.w_gate"));  // [d, E]
  const float* W1 = f.data(block_key(block, "mlp.experts.htoh4.weight"));  // [E, hid, d]
  const float* B1 = f.data(block_key(block, "mlp.experts.htoh4.bias"));    // [E, hid]
  const float* W2 = f.data(block_key(block, "mlp.experts.h4toh.weight"));  // [E, d, hid]
  const float* B2 = f.data(block_key(block, "mlp.experts.h4toh.bias"));    // [E, d]
  Reference r;
  r.out.assign(x.begin(), x.end());
  r.queue_len.assign(E, 0);
  std::vector<double> p(E), h(hid);
  for (int t = 0; t < N; ++t) {
    const float* xt = xn.data() + static_cast<size_t>(t) * d;
    double mx = -1e300, s = 0;
    for (int e = 0; e < E; ++e) {
      double l = 0;
      for (int i = 0; i < d; ++i) l += static_cast<double>(xt[i]) * g[i * E + e];
      p[e] = l;
      mx = std::max(mx, l);
    }
    for (int e = 0; e < E; ++e) s += (p[e] = std::exp(p[e] - mx));
    for (double& v : p) v /= s;
    std::vector<int> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    for (int j = 0; j < k; ++j) {
      const int e = order[j];
      r.idx.push_back(e);
      ++r.queue_len[e];
      for (int o = 0; o < hid; ++o) {
        double a = B1[e * hid + o];
        for (int i = 0; i < d; ++i) a += static_cast<double>(W1[(static_cast<size_t>(e) * hid + o) * d + i]) * xt[i];
        h[o] = 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)));
      }
      for (int o = 0; o < d; ++o) {
        double y = B2[e * d + o];
        for (int i = 0; i < hid; ++i) y += static_cast<double>(W2[(static_cast<size_t>(e) * d + o) * hid + i]) * h[i];
        r.out[static_cast<size_t>(t) * d + o] += p[e] * y;  // not renormalised over the k
      }
    }
  }
  return r;
}

TEST(MoeLayer, LongQueuesAnyThreadCountBothResidencies) {
  ModelConfig cfg = rt_test::tiny_config(GateType::multi, 544, 544, 1);  // 34×34 + 1 = 1157 tokens
  cfg.moe_experts = 4;
  cfg.depth = 2;
  cfg.moe_blocks = {1};
  const std::string dir = rt_test::scratch_dir("moe-layer");
  const std::string path = dir + "/m.safetensors";
  rt_test::write_random_export(cfg, path, 21);
  const ModelFile file(path);
  const int N = cfg.num_tokens(), d = cfg.embed_dim, hid = cfg.moe_hidden(), E = cfg.moe_experts, k = cfg.moe_top_k;
  ASSERT_GT(N * k / E / 2, MoeLayer::kMaxChunk) << "a thread's part of a queue must need two chunks";

  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> xn(static_cast<size_t>(N) * d), x0(xn.size());
  for (auto& v : xn) v = nd(rng);
  for (auto& v : x0) v = nd(rng);
  const Reference ref = reference(file, 1, xn, x0);
  double scale = 0;
  for (double v : ref.out) scale = std::max(scale, std::fabs(v));

  // The router as the task switch packs it: nn.Linear's [E, d] from the gate's [d, E].
  const float* g = file.data(block_key(1, "mlp.gate.0.w_gate"));
  std::vector<float> wt(static_cast<size_t>(E) * d), zero(E, 0.f);
  for (int e = 0; e < E; ++e)
    for (int i = 0; i < d; ++i) wt[static_cast<size_t>(e) * d + i] = g[i * E + e];

  const int saved = omp_get_max_threads();
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    for (Residency mode : {Residency::resident, Residency::stream}) {
      SCOPED_TRACE(std::to_string(threads) + " threads, experts " + to_string(mode));
      omp_set_num_threads(threads);
      DnnlContext ctx;
      MoeLayer moe(ctx, N, d, hid, E, k, Precision::fp32);
      std::unique_ptr<WeightStream> ring;
      if (mode == Residency::stream)
        ring = std::make_unique<WeightStream>(ctx.eng, path, 2, ExpertStore::slot_bytes(moe.fc1(), moe.fc2()),
                                              ExpertStore::staging_bytes(moe.fc1()));
      ExpertStore experts(ctx, file, mode, moe.fc1(), moe.fc2(), ring.get());
      const PackedWeights router = moe.router_plan().pack(wt.data(), zero.data());
      for (int rep = 0; rep < 2; ++rep) {  // twice: the second pass reuses every buffer and ticket
        std::vector<float> x = x0;
        moe.forward(xn.data(), x.data(), router, experts, 0);
        EXPECT_EQ(moe.topk_idx(), ref.idx);
        EXPECT_EQ(moe.queue_lengths(), ref.queue_len);
        EXPECT_EQ(moe.experts_used(), E);
        double err = 0;
        for (size_t i = 0; i < x.size(); ++i) err = std::max(err, std::fabs(x[i] - ref.out[i]));
        EXPECT_LT(err, 1e-5 * scale);
        // Each token's k rows are added in expert order whatever the threads: bit-identical results.
        if (first.empty()) first = x;
        EXPECT_EQ(x, first);
      }
      if (ring) {
        EXPECT_EQ(ring->stats().loads, 2 * E);
      }
    }
  }
  omp_set_num_threads(saved);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace m3vit::rt
