#include "common/pch/torch_pch.h"

// Model parity: the C++ MultiTaskModel against the independent PyTorch oracle (tests/oracle/), per
// named tensor (docs/TESTING.md). Each case builds a tiny model from a fixed seed, redraws its weights at a
// trained scale and moves every bias, norm scale and BatchNorm running statistic off 0 / 1 (perturb),
// writes it with export_model (docs/ARCHITECTURE.md "Model export"; so the oracle, which binds every
// key strictly, also proves the export complete and correctly named), runs
// `/usr/bin/python3 tests/oracle/run_oracle.py` in eval and train mode, and compares:
//   - eval: forward_all and forward_task outputs per task, every block output, the head input, and per
//     MoE layer the router logits, probabilities, kept top-k weights and the top-k expert indices
//     (which must be IDENTICAL);
//   - train: forward_all outputs including TAM (BN on batch statistics in both), the aux loss
//     Σ cv²(importance) + cv²(load) over every router call of forward_all, forward_task outputs;
//   - one backward pass: every parameter's gradient of L = Σ_outputs mean(out²) + aux.
// The oracle runs in float64 and evaluates the MoE densely (every expert on every token), so each
// max error printed is the C++ fp32 model's own error. Tolerances and their reasons: docs/TESTING.md.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "core/config.h"
#include "model/multitask_model.h"
#include "model/tensor_io.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

// fp32 outputs of O(1) after ~30 layers (backbone + PUP head + TAM) against a float64 reference:
// rounding accumulates to ~1e-6..1e-5, so 1e-4 separates rounding from any real difference.
constexpr double kTolOut = 1e-4;
// Probabilities and kept top-k weights lie in [0, 1] and come from one softmax: tighter.
constexpr double kTolProb = 1e-5;
// The aux loss is a sum of cv² terms with hard counts; relative to its size.
constexpr double kTolAuxRel = 1e-4;
// Gradients, relative to each tensor's largest oracle gradient (see check_gradients).
constexpr double kTolGradRel = 1e-4;
// Gradients that are exactly 0 in exact arithmetic: fp32 cancellation leaves up to ~1e-6.
constexpr double kTolGradAbs = 1e-5;

const char* kPython = "/usr/bin/python3";

// Copies a tensor out of the oracle's file.
torch::Tensor read_tensor(const SafeTensorsFile& f, const std::string& name) { return to_tensor(f.get(name)); }

// Prints the max abs error and fails the test when it is over `tol` or the shapes differ.
bool check_tensor(const std::string& name, const torch::Tensor& got, const torch::Tensor& want, double tol) {
  if (got.sizes() != want.sizes()) {
    ADD_FAILURE() << name << ": shape " << got.sizes() << " vs oracle " << want.sizes();
    return false;
  }
  const torch::Tensor g = got.detach().to(torch::kDouble), o = want.to(torch::kDouble);
  if (!torch::isfinite(g).all().item<bool>()) {
    ADD_FAILURE() << name << ": non-finite values in the C++ result";
    return false;
  }
  const double err = (g - o).abs().max().item<double>();
  const double scale = o.abs().max().item<double>();
  std::printf("  %-44s max|err| %.3e  (tol %.0e, max|ref| %.3g)\n", name.c_str(), err, tol, scale);
  EXPECT_LE(err, tol) << name;
  return err <= tol;
}

// Top-k indices must be identical. On a mismatch, report the tokens and the oracle's probability gap
// between the k-th and (k+1)-th expert, which says whether it is a near-tie or a real routing bug.
bool check_topk(const std::string& name, const torch::Tensor& got, const torch::Tensor& want,
                const torch::Tensor& want_probs) {
  if (got.sizes() != want.sizes()) {
    ADD_FAILURE() << name << ": shape " << got.sizes() << " vs oracle " << want.sizes();
    return false;
  }
  const torch::Tensor diff = (got.to(torch::kLong) != want).any(1);
  const int64_t bad = diff.sum().item<int64_t>();
  std::printf("  %-44s %lld of %lld tokens differ\n", name.c_str(), static_cast<long long>(bad),
              static_cast<long long>(got.size(0)));
  if (bad == 0) return true;
  const int64_t k = want.size(1);
  const torch::Tensor sorted = std::get<0>(want_probs.sort(1, /*descending=*/true));
  const torch::Tensor tokens = diff.nonzero().flatten();
  for (int64_t i = 0; i < std::min<int64_t>(5, tokens.size(0)); ++i) {  // the first five
    const int64_t t = tokens[i].item<int64_t>();
    double gap = k < sorted.size(1) ? (sorted[t][k - 1] - sorted[t][k]).item<double>() : 1.0;
    ADD_FAILURE() << name << ": token " << t << " C++ " << got[t] << " oracle " << want[t]
                  << " (oracle gap p_k - p_{k+1} = " << gap << ")";
  }
  return false;
}

// Redraws every weight at the scale of a trained network and moves every bias, norm scale and BN
// running statistic away from its init value (0 or 1). The authors' init is far too gentle for a
// parity test: trunc-normal(0.02) linears give near-uniform attention, and the expert init
// U(±1/sqrt(out·in)) (fmoe/linear.py) makes an expert's output mostly its bias, so a wrong scale factor,
// a transposed expert matrix or a swapped tensor would change the result by less than the tolerance.
void perturb(MultiTaskModel& m) {
  torch::NoGradGuard ng;
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (auto& p : m->named_parameters()) {
    const std::string& k = p.key();
    torch::Tensor t = p.value();
    if (ends_with(k, "cls_token") || ends_with(k, "pos_embed")) {
      t.normal_(0.0, 0.5);
    } else if (ends_with(k, "bias")) {  // expert biases are [E, out]
      t.uniform_(-0.1, 0.1);
    } else if (t.dim() >= 2) {
      // fan-in: w_gate is input-major [d_gate, E]; experts are [E, out, in]; linear [out, in] and
      // conv [out, in, kh, kw] (transposed conv [in, out, kh, kw], square here) read the same.
      int64_t fan_in = t.numel() / t.size(0);
      if (ends_with(k, "w_gate")) fan_in = t.size(0);
      else if (k.find("mlp.experts.") != std::string::npos) fan_in = t.size(2);
      t.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(fan_in)));
    } else if (ends_with(k, "weight")) {
      t.uniform_(0.8, 1.2);  // LayerNorm / BatchNorm scale
    }
  }
  for (auto& b : m->named_buffers()) {
    const std::string& k = b.key();
    if (ends_with(k, "running_mean")) b.value().uniform_(-0.2, 0.2);
    if (ends_with(k, "running_var")) b.value().uniform_(0.5, 1.5);
  }
}

void run_oracle(const std::string& dir, const std::string& mode) {
  const std::string cmd = std::string(kPython) + " " + M3VIT_SOURCE_DIR + "/tests/oracle/run_oracle.py --weights " +
                          dir + "/weights.safetensors --input " + dir + "/input.safetensors --out " + dir + "/oracle_" +
                          mode + ".safetensors --mode " + mode + " --task-trace" + (mode == "train" ? " --grad" : "");
  const int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << "oracle failed: " << cmd;
}

// Backward pass: every parameter's gradient of the oracle's scalar (run_oracle.py grad_step).
void check_gradients(MultiTaskModel& model, const torch::Tensor& images, const SafeTensorsFile& tr) {
  torch::AutoGradMode grad_on(true);  // the caller holds a NoGradGuard
  model->train();
  model->zero_grad();
  model->take_aux_loss();
  auto outs = model->forward_all(images);
  torch::Tensor loss = model->take_aux_loss();
  for (auto& kv : outs) loss = loss + kv.second.pow(2).mean();
  loss.backward();
  check_tensor("grad_loss", loss.detach().reshape({1}), read_tensor(tr, "grad_loss"), kTolOut);
  double worst = 0.0;
  int n = 0;
  for (auto& p : model->named_parameters()) {
    const std::string name = "grad." + p.key();
    const torch::Tensor want = read_tensor(tr, name);
    const torch::Tensor got = p.value().grad().defined() ? p.value().grad() : torch::zeros_like(p.value());
    ++n;
    if (got.sizes() != want.sizes()) {
      check_tensor(name, got, want, 0.0);  // reports both shapes and fails
      continue;
    }
    // Gradients span orders of magnitude across tensors: the tolerance is relative to each tensor's
    // largest oracle gradient. A tensor whose exact gradient is 0 (a conv bias before a train-mode
    // BatchNorm, which removes the mean) gets the absolute floor instead.
    const double scale = want.abs().max().item<double>();
    const bool exact_zero = scale < 1e-12;
    const double tol = exact_zero ? kTolGradAbs : kTolGradRel * scale;
    const double err = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>();
    if (!exact_zero) worst = std::max(worst, err / scale);
    if (!(err <= tol)) check_tensor(name, got, want, tol);  // prints the line and fails
  }
  std::printf("  %d parameter gradients, worst max|err| / max|ref| = %.3e (tol %.0e; exact zeros: %.0e)\n", n,
              worst, kTolGradRel, kTolGradAbs);
}

// The whole comparison for one config.
void check_parity(ModelConfig cfg, const std::string& tag, uint64_t seed, int batch) {
  cfg.validate();
  const std::string dir = test_io::make_scratch_dir("parity-" + tag);
  torch::manual_seed(seed);
  MultiTaskModel model(cfg);
  perturb(model);
  const torch::Tensor images = torch::randn({batch, cfg.in_chans, cfg.img_h, cfg.img_w});
  export_model(*model, dir + "/weights.safetensors");  // the runtime's format, read by the oracle as is
  {
    SafeTensorsWriter w;
    add_tensor(w, "images", images);
    w.write(dir + "/input.safetensors");
  }
  ASSERT_NO_FATAL_FAILURE(run_oracle(dir, "eval"));
  ASSERT_NO_FATAL_FAILURE(run_oracle(dir, "train"));
  SafeTensorsFile ev(dir + "/oracle_eval.safetensors");
  SafeTensorsFile tr(dir + "/oracle_train.safetensors");
  torch::NoGradGuard ng;
  const int moe_layers = static_cast<int>(cfg.moe_blocks.size());

  // --- eval: forward_all, then forward_task with the trace, per task ---
  std::printf("[%s] eval\n", tag.c_str());
  model->eval();
  auto all = model->forward_all(images);
  EXPECT_EQ(all.size(), cfg.tasks.size());
  for (const auto& task : cfg.tasks) {
    ASSERT_TRUE(all.count(task.name)) << task.name;
    check_tensor("out." + task.name, all[task.name], read_tensor(ev, "out." + task.name), kTolOut);
  }
  EXPECT_EQ(model->take_aux_loss().item<double>(), 0.0) << "aux loss must be 0 in eval";
  for (int t = 0; t < cfg.num_tasks(); ++t) {
    const std::string& name = cfg.tasks[t].name;
    const std::string p = "trace." + name + ".";
    ForwardTrace trace;
    torch::Tensor y = model->forward_task(images, t, &trace);
    check_tensor("task." + name, y, read_tensor(ev, "task." + name), kTolOut);
    ASSERT_EQ(static_cast<int>(trace.block_out.size()), cfg.depth);
    for (int i = 0; i < cfg.depth; ++i) {
      const std::string b = p + "block" + std::to_string(i);
      check_tensor(b, trace.block_out[i], read_tensor(ev, b), kTolOut);
    }
    ASSERT_EQ(static_cast<int>(trace.topk_idx.size()), moe_layers);
    for (int j = 0; j < moe_layers; ++j) {
      const std::string s = std::to_string(j);
      check_tensor(p + "router_logits" + s, trace.router_logits[j], read_tensor(ev, p + "router_logits" + s), kTolOut);
      const torch::Tensor probs = read_tensor(ev, p + "router_probs" + s);
      check_tensor(p + "router_probs" + s, trace.router_probs[j], probs, kTolProb);
      check_topk(p + "topk_idx" + s, trace.topk_idx[j], read_tensor(ev, p + "topk_idx" + s), probs);
      check_tensor(p + "topk_w" + s, trace.topk_w[j], read_tensor(ev, p + "topk_w" + s), kTolProb);
    }
    check_tensor(p + "head_in", trace.head_in, read_tensor(ev, p + "head_in"), kTolOut);
  }

  // --- train: forward_all (BN on batch statistics, TAM on, aux loss), then forward_task ---
  std::printf("[%s] train\n", tag.c_str());
  model->train();
  model->take_aux_loss();  // clear
  all = model->forward_all(images);
  const torch::Tensor aux = model->take_aux_loss();
  std::vector<std::string> want_keys;
  for (const auto& n : tr.names())
    if (n.rfind("out.", 0) == 0) want_keys.push_back(n.substr(4));
  EXPECT_EQ(all.size(), want_keys.size()) << "forward_all keys differ from the oracle's in train mode";
  for (const auto& k : want_keys) {
    if (!all.count(k)) {
      ADD_FAILURE() << "forward_all lacks '" << k << "' in train mode";
      continue;
    }
    check_tensor("train out." + k, all[k], read_tensor(tr, "out." + k), kTolOut);
  }
  const double want_aux = read_tensor(tr, "aux_loss").item<double>();
  check_tensor("train aux_loss", aux.reshape({1}), read_tensor(tr, "aux_loss"),
               kTolAuxRel * std::max(1.0, std::fabs(want_aux)));
  EXPECT_GT(want_aux, 0.0) << "a train-mode forward with MoE layers has a positive aux loss";
  for (int t = 0; t < cfg.num_tasks(); ++t) {
    const std::string& name = cfg.tasks[t].name;
    check_tensor("train task." + name, model->forward_task(images, t), read_tensor(tr, "task." + name), kTolOut);
  }

  // --- one step of gradients (train mode) of L = Σ_outputs mean(out²) + aux ---
  std::printf("[%s] gradients\n", tag.c_str());
  check_gradients(model, images, tr);
  // The scratch folder is kept for inspection on failure, or when M3VIT_KEEP_SCRATCH is set.
  if (!::testing::Test::HasFailure() && !std::getenv("M3VIT_KEEP_SCRATCH")) std::filesystem::remove_all(dir);
}

ModelConfig tiny_base() {
  ModelConfig c;
  c.name = "parity";
  c.patch = 16;
  c.embed_dim = 48;
  c.depth = 4;
  c.mlp_ratio = 4.0;
  c.moe_blocks = {1, 3};
  c.moe_mlp_ratio = 1.0;
  c.head_channels = 16;
  c.noise_std = 0.0;
  return c;
}

// Config A: the paper's setting in miniature: multi-gate, the five PASCAL tasks, 12 heads (quirk Q1,
// head dim 4 here), a non-square input whose grid (4x6) keeps the TAM's feature maps divisible by 4.
TEST(ModelParity, MultiGatePascalTasks) {
  ModelConfig c = tiny_base();
  c.img_h = 64;
  c.img_w = 96;
  c.num_heads = 12;
  c.moe_experts = 8;
  c.moe_top_k = 2;
  c.gate = GateType::multi;
  c.tasks = {{"semseg", 21}, {"human_parts", 7}, {"sal", 1}, {"normals", 3}, {"edge", 1}};
  c.tam = true;
  c.tam_levels[0] = true;
  c.tam_levels[1] = true;
  c.tam_levels[2] = false;
  check_parity(c, "multi", 1234, 2);
}

// Config B: task-conditioned router over [token ; LN(fc2(GELU(fc1(onehot))))], two NYUD tasks, an odd
// grid (3x5, no TAM), k = 3 of 4 experts with hidden width 2d.
TEST(ModelParity, TaskCondNyudTasks) {
  ModelConfig c = tiny_base();
  c.img_h = 48;
  c.img_w = 80;
  c.num_heads = 4;
  c.moe_experts = 4;
  c.moe_top_k = 3;
  c.moe_mlp_ratio = 2.0;  // expert hidden 96 != d: htoh4 and h4toh differ in shape
  c.gate = GateType::task_cond;
  c.task_emb_dim = 8;
  c.tasks = {{"semseg", 40}, {"depth", 1}};
  c.tam = false;
  check_parity(c, "task_cond", 99, 2);
}

// Config C: one router shared by every task (one backbone pass serves all heads), k = 1, three tasks
// so the TAM's T = 3 mixing rule is covered, all three TAM levels.
TEST(ModelParity, SharedGateThreeTasks) {
  ModelConfig c = tiny_base();
  c.img_h = 32;
  c.img_w = 64;
  c.depth = 2;
  c.num_heads = 6;
  c.moe_blocks = {1};
  c.moe_experts = 4;
  c.moe_top_k = 1;
  c.gate = GateType::shared;
  c.tasks = {{"semseg", 21}, {"sal", 1}, {"normals", 3}};
  c.tam = true;
  c.tam_levels[0] = true;
  c.tam_levels[1] = true;
  c.tam_levels[2] = true;
  check_parity(c, "shared", 7, 2);
}

// The oracle's own checks (hand examples, numpy loops, torch kernels): a broken oracle would make the
// parity cases above meaningless, so they run with the suite.
TEST(ModelParity, OracleSelfTest) {
  const std::string cmd = std::string(kPython) + " " + M3VIT_SOURCE_DIR + "/tests/oracle/self_test.py";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
}  // namespace m3vit
