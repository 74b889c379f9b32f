// Where an M³ViT training step goes, against the dense M-ViT (docs/TRAINING.md, "Training speed"):
// forward + backward of
//   1. one backbone pass (embedding, blocks, final norm) of M³ViT with one task's routing, and of the
//      M-ViT, whose MLP has the MACs of the top-k experts (the config's k · expert hidden = MLP
//      hidden): the ratio of equal work per pass;
//   2. one MoE layer on the pass's tokens, split into its parts: the router (logits, softmax, top-k,
//      the cv² aux loss), the token queues (sort by expert, gather), the expert matmuls, the combine
//      (weighting and scatter-add); and the dense MLP on the same tokens;
//   3. the whole multi-task step (forward_all, a sum of the outputs as a stand-in loss, backward).
// Median of --reps timings after one warm-up; a part's backward is timed by calling backward on it
// alone (its inputs are leaves), so the parts add up to about the layer. What is compared (M³ViT and
// M-ViT, the MoE layer and the MLP, the expert matmuls' variants) is timed in turn, one repetition
// of each per round.
//
//   train_step_profile [--config configs/tiny_synthetic.yaml] [--threads 2] [--batch 8] [--reps 7]
#include "common/pch/torch_pch.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/platform.h"
#include "core/config_yaml.h"
#include "model/mlp.h"
#include "model/moe_layer.h"
#include "model/multitask_model.h"

using namespace m3vit;

namespace {

double median_ms(const std::function<void()>& f, int reps) {
  f();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Forward and backward of `f` on fresh leaves; the output is reduced by a sum (all-ones gradient).
double fwd_bwd_ms(const std::function<torch::Tensor()>& f, int reps) {
  return median_ms([&] { f().sum().backward(); }, reps);
}

// Medians of measurements taken in turn, one repetition of each per round, so that a change of load
// on a shared machine hits all of them alike: their ratios are the robust numbers.
std::vector<double> interleaved_ms(const std::vector<std::function<void()>>& fs, int reps) {
  for (const auto& f : fs) f();  // warm-up
  std::vector<std::vector<double>> t(fs.size());
  for (int i = 0; i < reps; ++i)
    for (size_t j = 0; j < fs.size(); ++j) {
      const auto t0 = std::chrono::steady_clock::now();
      fs[j]();
      t[j].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  std::vector<double> med;
  for (auto& v : t) {
    std::sort(v.begin(), v.end());
    med.push_back(v[v.size() / 2]);
  }
  return med;
}

std::function<void()> fwd_bwd(const std::function<torch::Tensor()>& f) {
  return [f] { f().sum().backward(); };
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "configs/tiny_synthetic.yaml";
  int threads = 2, batch = 8, reps = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: train_step_profile [--config C] [--threads T] [--batch B] [--reps R]\n");
      return 2;
    }
  }
  tune_malloc();
  at::set_num_threads(threads);
  const ModelConfig cfg = load_config_file(config).model;
  const ModelConfig dense_cfg = dense_baseline(cfg);
  torch::manual_seed(0);
  MultiTaskModel moe(cfg), dense(dense_cfg);
  moe->train();
  dense->train();
  torch::Tensor images = torch::randn({batch, cfg.in_chans, cfg.img_h, cfg.img_w});

  // 1. One backbone pass, forward + backward, the two models in turn.
  const std::vector<double> passes = interleaved_ms(
      {fwd_bwd([&] {
         torch::Tensor f = moe->forward_features(images, 0);
         moe->take_aux_loss();  // not part of the sum: the pass itself is measured
         return f;
       }),
       fwd_bwd([&] { return dense->forward_features(images, 0); })},
      reps);
  const double moe_pass = passes[0], dense_pass = passes[1];

  // 2. One MoE layer's parts on the pass's tokens [T, d] (random, as LN2's output would be).
  const int64_t T = static_cast<int64_t>(batch) * (cfg.grid_h() * cfg.grid_w() + 1);
  torch::Tensor x = torch::randn({T, cfg.embed_dim}).requires_grad_(true);
  MoELayer layer(cfg);
  Mlp mlp(cfg.embed_dim, cfg.mlp_hidden());
  layer->train();
  const RouteResult fixed = layer->router(0)->forward(x.detach());
  layer->router(0)->take_loss();
  const TokenQueues q = make_token_queues(fixed.idx, cfg.moe_experts);
  torch::Tensor xs_leaf = x.detach().index_select(0, q.token).requires_grad_(true);

  const double t_router = median_ms([&] {
    RouteResult r = layer->router(0)->forward(x);
    (r.w.sum() + layer->router(0)->take_loss()).backward();
  }, reps);
  const double t_queues = fwd_bwd_ms([&] {
    TokenQueues qq = make_token_queues(fixed.idx, cfg.moe_experts);
    return x.index_select(0, qq.token);
  }, reps);
  const auto experts_now = fwd_bwd([&] { return layer->experts->forward_queues(xs_leaf, q.count); });
  // What the queues cost with per-expert weight indexing (weight[e]), as before forward_queues.
  const auto experts_indexed = fwd_bwd([&] {
    std::vector<torch::Tensor> ys;
    int64_t off = 0;
    for (int e = 0; e < cfg.moe_experts; ++e) {
      if (q.count[e] == 0) continue;
      ys.push_back(layer->experts->forward(e, xs_leaf.narrow(0, off, q.count[e])));
      off += q.count[e];
    }
    return torch::cat(ys, 0);
  });
  // The padded batched matmul (baddbmm) that forward_queues used before model/expert_mlp_function.h:
  // every queue padded with zero rows to the longest, two batched matmuls, autograd for the backward.
  const auto experts_padded = fwd_bwd([&] {
    const int64_t E = cfg.moe_experts, longest = *std::max_element(q.count.begin(), q.count.end());
    std::vector<int64_t> pos;
    for (int64_t e = 0; e < E; ++e)
      for (int64_t j = 0; j < q.count[e]; ++j) pos.push_back(e * longest + j);
    const torch::Tensor at = torch::tensor(pos, torch::kLong);
    const auto& w = layer->experts;
    torch::Tensor xp = torch::zeros({E * longest, cfg.embed_dim}).index_copy(0, at, xs_leaf);
    torch::Tensor h = torch::gelu(torch::baddbmm(w->htoh4->bias.unsqueeze(1), xp.view({E, longest, -1}),
                                                 w->htoh4->weight.transpose(1, 2)));
    torch::Tensor y = torch::baddbmm(w->h4toh->bias.unsqueeze(1), h, w->h4toh->weight.transpose(1, 2));
    return y.view({E * longest, -1}).index_select(0, at);
  });
  const std::vector<double> experts_ms = interleaved_ms({experts_now, experts_indexed, experts_padded}, reps);
  const double t_experts = experts_ms[0], t_experts_indexed = experts_ms[1], t_experts_padded = experts_ms[2];
  torch::Tensor y_leaf = torch::randn_like(xs_leaf).requires_grad_(true);
  torch::Tensor w_leaf = fixed.w.detach().clone().requires_grad_(true);
  const double t_combine = fwd_bwd_ms([&] {
    torch::Tensor ws = w_leaf.reshape({-1}).index_select(0, q.pair);
    return torch::zeros({T, cfg.embed_dim}).index_add(0, q.token, y_leaf * ws.unsqueeze(1));
  }, reps);
  // The layer against the dense MLP of equal MACs, in turn.
  const std::vector<double> layer_ms = interleaved_ms({fwd_bwd([&] {
                                                        torch::Tensor y = layer->forward(x, 0, {});
                                                        layer->router(0)->take_loss();
                                                        return y;
                                                      }),
                                                      fwd_bwd([&] { return mlp->forward(x); })},
                                                     reps);
  const double t_layer = layer_ms[0], t_mlp = layer_ms[1];

  // 3. The whole multi-task step (no loss functions: a sum of every output).
  auto step = [](MultiTaskModel& m, const torch::Tensor& img) {
    return [&m, &img] {
      auto out = m->forward_all(img);
      torch::Tensor s = m->take_aux_loss();
      for (auto& [k, v] : out) s = s + v.sum();
      s.backward();
    };
  };
  const std::vector<double> steps = interleaved_ms({step(moe, images), step(dense, images)}, std::max(3, reps / 2));
  const double moe_step = steps[0], dense_step = steps[1];

  const int tasks = cfg.num_tasks();
  std::printf("### Where a training step goes (%s, batch %d, %d threads, forward + backward, median of %d)\n\n",
              cfg.name.c_str(), batch, threads, reps);
  std::printf("| what | M³ViT ms | M-ViT ms | M-ViT / M³ViT |\n|---|---|---|---|\n");
  std::printf("| one backbone pass (%d MoE layers, k·hidden = MLP hidden) | %.2f | %.2f | **%.2f×** |\n",
              static_cast<int>(cfg.moe_blocks.size()), moe_pass, dense_pass, dense_pass / moe_pass);
  std::printf("| the multi-task step (%d tasks: M³ViT one pass per task after the shared prefix, M-ViT one) | %.1f | %.1f | %.2f× |\n\n",
              tasks, moe_step, dense_step, dense_step / moe_step);
  std::printf("Per backbone pass of equal MACs the M³ViT runs at %.2f× the M-ViT's speed (goal ≥ 0.85×: %s).\n\n",
              dense_pass / moe_pass, dense_pass / moe_pass >= 0.85 ? "met" : "not met");
  const auto [shortest, longest] = std::minmax_element(q.count.begin(), q.count.end());
  std::printf("| one MoE layer on %lld tokens (E %d, k %d; queues of %lld to %lld tokens) | ms | share |\n|---|---|---|\n",
              (long long)T, cfg.moe_experts, cfg.moe_top_k, (long long)*shortest, (long long)*longest);
  const double parts = t_router + t_queues + t_experts + t_combine;
  auto row = [&](const char* what, double ms) { std::printf("| %s | %.3f | %.0f%% |\n", what, ms, 100 * ms / parts); };
  row("router: logits, softmax, top-k, cv² aux loss", t_router);
  row("token queues: sort by expert, gather", t_queues);
  row("expert matmuls (Experts::forward_queues)", t_experts);
  row("combine: weights, scatter-add", t_combine);
  std::printf("| the parts together | %.3f | |\n| the layer as one | %.3f | |\n", parts, t_layer);
  std::printf("| (expert matmuls with per-expert weight[e] indexing instead) | %.3f | |\n", t_experts_indexed);
  std::printf("| (expert matmuls as queues padded to the longest and a batched matmul, baddbmm, instead) | %.3f | |\n",
              t_experts_padded);
  std::printf("| the dense MLP on the same tokens | %.3f | MoE layer = %.2f× the MLP |\n\n", t_mlp, t_layer / t_mlp);
  return 0;
}
