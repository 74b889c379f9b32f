// Per-task routers and heads, prepared once at load (runtime/task_switch.h).
#include "runtime/task_switch.h"

#include <cmath>

#include "runtime/model_file.h"
#include "runtime/ops/layernorm.h"

namespace m3vit::rt {

std::vector<std::vector<float>> task_embeddings(const ModelFile& f) {
  const ModelConfig& c = f.config();
  const int T = c.num_tasks(), D = c.task_emb_dim;
  const std::string p = "backbone.gate_task_represent.";
  const float* w1 = f.data(p + "fc1.weight");  // [D, T]
  const float* b1 = f.data(p + "fc1.bias");
  const float* w2 = f.data(p + "fc2.weight");  // [D, D]
  const float* b2 = f.data(p + "fc2.bias");
  std::vector<std::vector<float>> out(T, std::vector<float>(D));
  for (int t = 0; t < T; ++t) {
    // fc1(one_hot(t)) = column t of W1 + b1; then the exact (erf) GELU of nn.GELU.
    std::vector<float> h(D), y(D);
    for (int i = 0; i < D; ++i) {
      const float a = w1[i * T + t] + b1[i];
      h[i] = 0.5f * a * (1.f + std::erf(a * static_cast<float>(M_SQRT1_2)));
    }
    for (int i = 0; i < D; ++i) {
      float s = b2[i];
      for (int j = 0; j < D; ++j) s += w2[i * D + j] * h[j];
      y[i] = s;
    }
    layer_norm(y.data(), out[t].data(), 1, D, f.data(p + "norm.weight"), f.data(p + "norm.bias"), 1e-6);
  }
  return out;
}

TaskSwitch::TaskSwitch(const ModelFile& f, const MatmulPlan& router_plan, PupHead& head) {
  const ModelConfig& c = f.config();
  const int T = c.num_tasks(), d = c.embed_dim, E = c.moe_experts;
  const bool with_emb = has_task_embedding(c);
  task_emb_.assign(T, {});
  if (with_emb) task_emb_ = task_embeddings(f);
  routers_.assign(T, {});
  std::vector<float> wt(static_cast<size_t>(E) * d), bias(E);
  for (int i = 0; i < c.depth; ++i) {
    if (!c.is_moe_block(i)) continue;
    for (int t = 0; t < T; ++t) {
      if (c.gate != GateType::multi && !with_emb && t > 0) {
        routers_[t].push_back(routers_[0].back());  // one shared router: same packed memory
        continue;
      }
      const float* g = f.data(router_key(c, i, t));  // [d_gate, E], input-major
      // Our plans take nn.Linear's [out, in]: transpose the first d rows.
      for (int e = 0; e < E; ++e)
        for (int j = 0; j < d; ++j) wt[static_cast<size_t>(e) * d + j] = g[static_cast<size_t>(j) * E + e];
      // Task term of the task-conditioned gate: bias_t = e_t · W_gate[d:, :].
      for (int e = 0; e < E; ++e) {
        float s = 0.f;
        if (with_emb)
          for (int j = 0; j < c.task_emb_dim; ++j) s += task_emb_[t][j] * g[static_cast<size_t>(d + j) * E + e];
        bias[e] = s;
      }
      routers_[t].push_back(router_plan.pack(wt.data(), bias.data()));
    }
  }
  for (int t = 0; t < T; ++t) heads_.push_back(head.pack(f, c.tasks[t].name, c.tasks[t].out_channels));
}

size_t TaskSwitch::bytes() const {
  size_t n = 0;
  for (size_t t = 0; t < routers_.size(); ++t)
    for (size_t l = 0; l < routers_[t].size(); ++l)
      if (t == 0 || routers_[t][l].weights.get_data_handle() != routers_[0][l].weights.get_data_handle())
        n += routers_[t][l].bytes();
  for (const auto& h : heads_) n += h.bytes();
  return n;
}

}  // namespace m3vit::rt
