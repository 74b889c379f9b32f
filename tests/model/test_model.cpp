#include "common/pch/torch_pch.h"

// MultiTaskModel (model/multitask_model.cpp): the authors' state-dict keys, single-task vs all-task
// forward for the three gates, input checks, the aux loss of a whole forward against the trace,
// TAM outputs, gradient flow, the parameter groups and the initialisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/errors.h"
#include "core/config.h"
#include "model/multitask_model.h"

namespace m3vit {
namespace {

// Tiny model: d 32, 4 heads, depth 4 (MoE at 1, 3), 32x48 input.
ModelConfig tiny(GateType gate, int patch = 16) {
  ModelConfig c;
  c.name = "tiny";
  c.img_h = 32;
  c.img_w = 48;
  c.patch = patch;
  c.embed_dim = 32;
  c.depth = 4;
  c.num_heads = 4;
  c.moe_blocks = odd_blocks(4);
  c.moe_experts = 4;
  c.moe_top_k = 2;
  c.gate = gate;
  c.task_emb_dim = 8;
  c.head_channels = 16;
  c.tasks = {{"semseg", 5}, {"depth", 1}};
  return c;
}

std::vector<std::string> bn_keys(const std::string& p) {
  return {p + ".weight", p + ".bias", p + ".running_mean", p + ".running_var", p + ".num_batches_tracked"};
}

// The expected key list, written out from the authors' module names (vision_transformer_moe.py, vit_up_head.py).
std::vector<std::string> expected_keys(const ModelConfig& c, bool tam0) {
  std::vector<std::string> k = {"backbone.cls_token", "backbone.pos_embed", "backbone.patch_embed.proj.weight",
                                "backbone.patch_embed.proj.bias"};
  for (int i = 0; i < c.depth; ++i) {
    const std::string b = "backbone.blocks." + std::to_string(i) + ".";
    for (const char* s : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                          "attn.proj.bias", "norm2.weight", "norm2.bias"})
      k.push_back(b + s);
    if (i % 2 == 0) {
      for (const char* s : {"mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}) k.push_back(b + s);
    } else {
      for (const char* s : {"mlp.experts.htoh4.weight", "mlp.experts.htoh4.bias", "mlp.experts.h4toh.weight",
                            "mlp.experts.h4toh.bias"})
        k.push_back(b + s);
      if (c.gate == GateType::multi) {
        for (int t = 0; t < c.num_tasks(); ++t) k.push_back(b + "mlp.gate." + std::to_string(t) + ".w_gate");
      } else {
        k.push_back(b + "mlp.gate.w_gate");
      }
    }
  }
  if (c.gate == GateType::task_cond && c.task_emb_dim > 0)
    for (const char* s : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "norm.weight", "norm.bias"})
      k.push_back(std::string("backbone.gate_task_represent.") + s);
  for (const auto& t : c.tasks) {
    const std::string d = "decoders." + t.name + ".";
    k.push_back(d + "norm.weight");
    k.push_back(d + "norm.bias");
    for (int i = 0; i < 5; ++i) {
      k.push_back(d + "conv_" + std::to_string(i) + ".weight");
      k.push_back(d + "conv_" + std::to_string(i) + ".bias");
    }
    for (int i = 0; i < 4; ++i)
      for (auto& s : bn_keys(d + "syncbn_fc_" + std::to_string(i))) k.push_back(s);
  }
  if (tam0) {
    const std::string p = "tam_model0.";
    for (const char* m : {"layers0", "layers1", "layers2", "encoder0", "encoder1", "decoder0", "decoder1"}) {
      k.push_back(p + m + ".0.weight");
      k.push_back(p + m + ".0.bias");
      for (auto& s : bn_keys(p + m + ".1")) k.push_back(s);
    }
    for (const auto& t : c.tasks) {
      k.push_back(p + "layers3." + t.name + ".0.weight");
      k.push_back(p + "layers3." + t.name + ".0.bias");
      for (auto& s : bn_keys(p + "layers3." + t.name + ".1")) k.push_back(s);
      k.push_back(p + "layers4." + t.name + ".0.weight");
      k.push_back(p + "layers4." + t.name + ".0.bias");
    }
  }
  std::sort(k.begin(), k.end());
  return k;
}

std::vector<std::string> model_keys(MultiTaskModel& m) {
  std::vector<std::string> k;
  for (auto& p : m->named_parameters()) k.push_back(p.key());
  for (auto& b : m->named_buffers()) k.push_back(b.key());
  std::sort(k.begin(), k.end());
  return k;
}

TEST(ModelKeys, MultiGateTwoTasksTamLevel0AreTheAuthorsKeys) {
  ModelConfig c = tiny(GateType::multi, 8);  // 4x6 grid: TAM level 0 needs an even grid (validate())
  c.tam = true;
  c.tam_levels[0] = true;
  c.tam_levels[1] = false;
  c.tam_levels[2] = false;
  MultiTaskModel m(c);
  EXPECT_EQ(model_keys(m), expected_keys(c, true));
  auto params = m->named_parameters();
  EXPECT_EQ(params["backbone.pos_embed"].sizes(), (std::vector<int64_t>{1, 1 + 4 * 6, 32}));  // 4x6 grid
  EXPECT_EQ(params["backbone.blocks.1.mlp.gate.1.w_gate"].sizes(), (std::vector<int64_t>{32, 4}));
  EXPECT_EQ(params["backbone.blocks.3.mlp.experts.htoh4.weight"].sizes(), (std::vector<int64_t>{4, 32, 32}));
  EXPECT_EQ(params["backbone.blocks.3.mlp.experts.h4toh.bias"].sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(params["backbone.blocks.0.attn.qkv.weight"].sizes(), (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(params["backbone.blocks.2.mlp.fc1.weight"].sizes(), (std::vector<int64_t>{128, 32}));
  EXPECT_EQ(params["decoders.semseg.conv_4.weight"].sizes(), (std::vector<int64_t>{5, 16, 1, 1}));
  EXPECT_EQ(params["tam_model0.layers0.0.weight"].sizes(), (std::vector<int64_t>{16, 32, 3, 3}));
  EXPECT_EQ(params["tam_model0.decoder1.0.weight"].sizes(), (std::vector<int64_t>{16, 16, 3, 3}));
  EXPECT_EQ(params["tam_model0.layers4.depth.0.weight"].sizes(), (std::vector<int64_t>{1, 16, 1, 1}));
}

TEST(ModelKeys, TaskCondAndSharedGates) {
  ModelConfig c = tiny(GateType::task_cond);
  MultiTaskModel m(c);
  EXPECT_EQ(model_keys(m), expected_keys(c, false));
  auto params = m->named_parameters();
  EXPECT_EQ(params["backbone.blocks.1.mlp.gate.w_gate"].sizes(), (std::vector<int64_t>{40, 4}));  // d + D_t
  EXPECT_EQ(params["backbone.gate_task_represent.fc1.weight"].sizes(), (std::vector<int64_t>{8, 2}));
  c.task_emb_dim = -1;  // no embedding: the router sees only the token
  MultiTaskModel m2(c);
  EXPECT_EQ(model_keys(m2), expected_keys(c, false));
  EXPECT_EQ(m2->named_parameters()["backbone.blocks.1.mlp.gate.w_gate"].sizes(), (std::vector<int64_t>{32, 4}));
  ModelConfig s = tiny(GateType::shared);
  MultiTaskModel m3(s);
  EXPECT_EQ(model_keys(m3), expected_keys(s, false));
}

TEST(ModelForward, ForwardTaskEqualsForwardAllInEval) {
  for (GateType g : {GateType::multi, GateType::task_cond, GateType::shared}) {
    torch::manual_seed(1);
    MultiTaskModel m(tiny(g));
    m->eval();
    torch::NoGradGuard ng;
    torch::Tensor x = torch::randn({2, 3, 32, 48});
    auto all = m->forward_all(x);
    ASSERT_EQ(all.size(), 2u);
    for (int t = 0; t < 2; ++t) {
      const std::string& name = m->config().tasks[t].name;
      ForwardTrace tr;
      torch::Tensor y = m->forward_task(x, t, &tr);
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, m->config().tasks[t].out_channels, 32, 48}));
      EXPECT_TRUE(torch::equal(y, all.at(name))) << to_string(g) << " " << name;
      // Trace: 4 block outputs, 2 MoE layers, head input [B, d, h, w].
      ASSERT_EQ(tr.block_out.size(), 4u);
      ASSERT_EQ(tr.topk_idx.size(), 2u);
      EXPECT_EQ(tr.block_out[3].sizes(), (std::vector<int64_t>{2, 7, 32}));
      EXPECT_EQ(tr.router_logits[0].sizes(), (std::vector<int64_t>{14, 4}));
      EXPECT_EQ(tr.topk_idx[1].scalar_type(), torch::kLong);
      EXPECT_EQ(tr.topk_w[1].sizes(), (std::vector<int64_t>{14, 2}));
      EXPECT_EQ(tr.head_in.sizes(), (std::vector<int64_t>{2, 32, 2, 3}));
      EXPECT_TRUE(torch::equal(m->forward_features(x, t), tr.block_out[3]));
    }
    // Routing differs between tasks unless the gate is shared.
    ForwardTrace t0, t1;
    m->forward_features(x, 0, &t0);
    m->forward_features(x, 1, &t1);
    EXPECT_EQ(torch::equal(t0.router_probs[0], t1.router_probs[0]), g == GateType::shared) << to_string(g);
  }
}

// forward_all computes the part before the first MoE layer's routing once for all tasks
// (VisionTransformerMoE::forward_prefix). Against the authors' way, one whole backbone pass per task
// (forward_task): the same outputs bit for bit, and the same gradient of a loss over every task's
// output for every parameter (summed in another order: within 1e-5 of each tensor's largest entry).
// MoE first at block 1 (the authors'), at block 0 (no dense block before it) and at block 2.
TEST(ModelForward, ForwardAllSharesThePrefixWithTheSameGradients) {
  for (GateType g : {GateType::multi, GateType::task_cond}) {
    for (const std::vector<int>& moe : {std::vector<int>{1, 3}, std::vector<int>{0, 2}, std::vector<int>{2}}) {
      ModelConfig c = tiny(g);
      c.moe_blocks = moe;
      torch::manual_seed(3);
      MultiTaskModel m(c);
      m->train();
      const torch::Tensor x = torch::randn({2, 3, 32, 48});
      auto loss_of = [&](const std::map<std::string, torch::Tensor>& out) {
        torch::Tensor l = torch::zeros({});
        for (const auto& [name, y] : out) l = l + (y * y).mean();
        return l;
      };
      auto grads = [&] {
        std::vector<torch::Tensor> gs;
        for (auto& p : m->parameters()) {
          gs.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
          p.mutable_grad() = torch::Tensor();
        }
        return gs;
      };
      const auto all = m->forward_all(x);
      loss_of(all).backward();
      const auto g_all = grads();
      std::map<std::string, torch::Tensor> each;
      for (int t = 0; t < c.num_tasks(); ++t) each[c.tasks[t].name] = m->forward_task(x, t);
      loss_of(each).backward();
      const auto g_each = grads();
      const std::string tag = std::string(to_string(g)) + " moe at " + std::to_string(moe[0]);
      for (const auto& [name, y] : all) EXPECT_TRUE(torch::equal(y, each.at(name))) << tag << " " << name;
      int nonzero = 0;
      for (size_t i = 0; i < g_all.size(); ++i) {
        const double scale = std::max(g_each[i].abs().max().item<double>(), 1e-12);
        EXPECT_LE((g_all[i] - g_each[i]).abs().max().item<double>(), 1e-5 * scale) << tag << " parameter " << i;
        nonzero += g_each[i].abs().max().item<double>() > 0;
      }
      EXPECT_GT(nonzero, 10) << tag << ": gradients reached too few parameters to compare";
      m->take_aux_loss();  // drop the routers' pending aux terms
    }
  }
}

TEST(ModelForward, WrongInputShapeThrowsShapeError) {
  MultiTaskModel m(tiny(GateType::multi));
  m->eval();
  auto expect_shape_error = [&](const torch::Tensor& x, const std::string& got) {
    try {
      m->forward_task(x, 0);
      FAIL() << "no ShapeError for " << got;
    } catch (const ShapeError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(got), std::string::npos) << msg;
      EXPECT_NE(msg.find("[B, 3, 32, 48]"), std::string::npos) << msg;
    }
  };
  expect_shape_error(torch::zeros({1, 3, 32, 32}), "[1, 3, 32, 32]");
  expect_shape_error(torch::zeros({1, 1, 32, 48}), "[1, 1, 32, 48]");
  expect_shape_error(torch::zeros({3, 32, 48}), "[3, 32, 48]");
  EXPECT_THROW(m->forward_all(torch::zeros({1, 3, 48, 32})), ShapeError);
  EXPECT_THROW(m->forward_task(torch::zeros({1, 3, 32, 48}), 2), ConfigError);
}

// Plain-loop cv² and the aux loss of one MoE layer from its trace (noise off: hard counts).
double cv2(const std::vector<double>& v) {
  double mean = 0, var = 0;
  for (double x : v) mean += x / v.size();
  for (double x : v) var += (x - mean) * (x - mean) / (v.size() - 1);
  return var / (mean * mean + 1e-10);
}
double layer_aux_from_trace(const torch::Tensor& idx, const torch::Tensor& w, int E) {
  std::vector<double> imp(E, 0), cnt(E, 0);
  auto I = idx.accessor<int64_t, 2>();
  auto W = w.accessor<float, 2>();
  for (int64_t t = 0; t < idx.size(0); ++t)
    for (int64_t j = 0; j < idx.size(1); ++j) imp[I[t][j]] += W[t][j], cnt[I[t][j]] += 1;
  return cv2(imp) + cv2(cnt);
}

TEST(ModelAux, TakeAuxLossSumsEveryRouterCall) {
  for (GateType g : {GateType::multi, GateType::task_cond, GateType::shared}) {
    torch::manual_seed(2);
    MultiTaskModel m(tiny(g));
    m->train();
    torch::Tensor x = torch::randn({2, 3, 32, 48});
    double want_all = 0;
    for (int t = 0; t < 2; ++t) {
      ForwardTrace tr;
      m->forward_features(x, t, &tr);
      double want = 0;
      for (size_t l = 0; l < tr.topk_idx.size(); ++l) want += layer_aux_from_trace(tr.topk_idx[l], tr.topk_w[l], 4);
      const double got = m->take_aux_loss().item<double>();
      EXPECT_NEAR(got, want, 1e-5 * want) << to_string(g) << " task " << t;
      EXPECT_GT(got, 0.0);
      want_all += want;
    }
    // forward_all: one backbone pass per task, or a single one for the shared gate.
    m->forward_all(x);
    const double want = g == GateType::shared ? want_all / 2 : want_all;
    EXPECT_NEAR(m->take_aux_loss().item<double>(), want, 1e-5 * want) << to_string(g);
    EXPECT_EQ(m->take_aux_loss().item<double>(), 0.0);  // cleared
    m->eval();
    m->forward_all(x);
    EXPECT_EQ(m->take_aux_loss().item<double>(), 0.0);  // nothing in eval
  }
}

TEST(ModelTam, TrainingOutputsAndGradientsReachEveryParameter) {
  // Patch 8 makes the level-0 TAM map 8x12 (a multiple of 4, as the TAM encoder/decoder needs).
  ModelConfig c = tiny(GateType::multi, 8);
  c.tam = true;
  c.tam_levels[0] = true;
  c.tam_levels[1] = true;
  c.tam_levels[2] = false;
  torch::manual_seed(4);
  MultiTaskModel m(c);
  m->train();
  torch::Tensor x = torch::randn({2, 3, 32, 48});
  auto out = m->forward_all(x);
  std::set<std::string> names;
  for (auto& kv : out) names.insert(kv.first);
  EXPECT_EQ(names, (std::set<std::string>{"semseg", "depth", "tam_level0_semseg", "tam_level0_depth",
                                          "tam_level1_semseg", "tam_level1_depth"}));
  EXPECT_EQ(out["tam_level1_semseg"].sizes(), (std::vector<int64_t>{2, 5, 32, 48}));
  torch::Tensor loss = m->take_aux_loss();
  for (auto& kv : out) loss = loss + kv.second.pow(2).mean();
  loss.backward();
  for (auto& p : m->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().max().item<double>(), 0.0) << p.key();
  }
  m->eval();
  torch::NoGradGuard ng;
  EXPECT_EQ(m->forward_all(x).size(), 2u);  // TAM is training-only
}

TEST(ModelParams, ExpertAndNonExpertGroupsPartitionTheParameters) {
  MultiTaskModel m(tiny(GateType::multi));
  auto ex = m->expert_parameters();
  auto rest = m->non_expert_parameters();
  EXPECT_EQ(ex.size(), 8u);  // 2 MoE layers x (htoh4, h4toh) x (weight, bias)
  EXPECT_EQ(ex.size() + rest.size(), m->parameters().size());
  std::set<const void*> seen;
  for (auto& t : ex) seen.insert(t.unsafeGetTensorImpl());
  for (auto& t : rest) EXPECT_EQ(seen.count(t.unsafeGetTensorImpl()), 0u);
  for (auto& t : ex) EXPECT_EQ(t.size(0), 4);  // stacked [E, ...]
}

TEST(ModelInit, AuthorsInitialisationAndSeedDeterminism) {
  torch::manual_seed(9);
  MultiTaskModel a(tiny(GateType::task_cond));
  torch::manual_seed(9);
  MultiTaskModel b(tiny(GateType::task_cond));
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  // Linear weights trunc-normal std .02 (qkv: 96x32 draws), biases 0; LayerNorm 1/0.
  torch::Tensor qkv = pa["backbone.blocks.0.attn.qkv.weight"];
  EXPECT_NEAR(qkv.std().item<double>(), 0.02, 0.002);
  EXPECT_EQ(pa["backbone.blocks.0.attn.qkv.bias"].abs().max().item<double>(), 0.0);
  EXPECT_EQ(pa["backbone.gate_task_represent.fc2.bias"].abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(pa["backbone.blocks.1.norm2.weight"], torch::ones({32})));
  EXPECT_NEAR(pa["backbone.pos_embed"].std().item<double>(), 0.02, 0.004);
  // Experts: kaiming-uniform on [E, out, in] -> bound 1/sqrt(out*in) = 1/32; biases 0.
  torch::Tensor w1 = pa["backbone.blocks.1.mlp.experts.htoh4.weight"];
  EXPECT_LE(w1.abs().max().item<double>(), 1.0 / 32);
  EXPECT_GT(w1.abs().max().item<double>(), 0.9 / 32);
  EXPECT_EQ(pa["backbone.blocks.1.mlp.experts.h4toh.bias"].abs().max().item<double>(), 0.0);
  // Router [d + D_t, E]: bound 1/sqrt(E) = 0.5.
  torch::Tensor wg = pa["backbone.blocks.3.mlp.gate.w_gate"];
  EXPECT_LE(wg.abs().max().item<double>(), 0.5);
  EXPECT_GT(wg.abs().max().item<double>(), 0.4);
}

}  // namespace
}  // namespace m3vit
