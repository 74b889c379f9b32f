// The training loop on the smallest model (tests/train/configs/tiny_train.yaml): bitwise determinism, exact
// resume from a mid-epoch checkpoint, the graceful stop on SIGTERM, the checkpoint file's checks,
// and that the loss goes down. The SIGKILL variant through the command line is
// tests/cli/test_train_resume.sh.
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <thread>

#include "common/errors.h"
#include "common/fileutil.h"
#include "io/safetensors.h"
#include "tests/core/io_test_util.h"
#include "tests/train/train_test_util.h"
#include "train/optimizer.h"
#include "model/tensor_io.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"

namespace m3vit {
namespace {

TrainConfig tiny_config() { return load_train_config(std::string(M3VIT_SOURCE_DIR) + "/tests/train/configs/tiny_train.yaml"); }

TrainOptions tiny_options(const TrainConfig& f, const std::string& out_dir, int64_t steps) {
  TrainOptions o = train_options_from(f);
  o.out_dir = out_dir;
  o.max_steps = steps;
  o.threads = 1;
  o.workers = 1;
  o.progress = false;
  o.eval_every = 0;
  return o;
}

// Model tensors of the final export of a run.
std::map<std::string, torch::Tensor> final_weights(const std::string& out_dir) {
  return load_tensors(final_model_path(out_dir));
}

void expect_identical(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name << " differs, max abs "
                                             << (t.to(torch::kDouble) - b.at(name).to(torch::kDouble)).abs().max().item<double>();
  }
}

// The log's records; a line being written (not yet complete) is skipped.
std::vector<nlohmann::json> read_log(const std::string& out_dir) {
  std::vector<nlohmann::json> v;
  std::ifstream in(train_log_path(out_dir));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      v.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
    }
  }
  return v;
}

// Runs `o` and stops it with a real SIGTERM once its first step is logged. The test ignores SIGTERM
// outside the trainer, so a late signal cannot end the test binary.
TrainOutcome run_stopped_after_first_step(const TrainConfig& f, const TrainOptions& o) {
  auto previous = std::signal(SIGTERM, SIG_IGN);
  std::thread killer([&] {
    for (int i = 0; i < 20000; ++i) {
      if (file_exists(train_log_path(o.out_dir)) && !read_log(o.out_dir).empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::raise(SIGTERM);
  });
  TrainOutcome out = run_training(f, o, {});
  killer.join();
  std::signal(SIGTERM, previous);
  return out;
}

TEST(Trainer, TwoRunsAreBitwiseIdentical) {
  const TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("determinism");
  auto o1 = tiny_options(f, d + "/a", 5), o2 = tiny_options(f, d + "/b", 5);
  run_training(f, o1, {});
  run_training(f, o2, {});
  expect_identical(final_weights(o1.out_dir), final_weights(o2.out_dir));
  // The weights moved, and a different seed gives different weights.
  auto o3 = tiny_options(f, d + "/c", 5);
  o3.seed = 1;
  run_training(f, o3, {});
  auto w1 = final_weights(o1.out_dir), w3 = final_weights(o3.out_dir);
  EXPECT_FALSE(torch::equal(w1.begin()->second, w3.begin()->second));
}

TEST(Trainer, ResumeFromMidEpochCheckpointIsExact) {
  TrainConfig f = tiny_config();
  // 16 training images, batch 4: 4 batches per epoch; 7 steps cross an epoch boundary.
  const std::string d = test::scratch_dir("resume");
  auto full = tiny_options(f, d + "/full", 7);
  run_training(f, full, {});

  // Checkpoints every 2 steps do not change the trajectory.
  auto part = tiny_options(f, d + "/part", 7);
  part.checkpoint_every = 2;
  run_training(f, part, {});

  // A run stopped by SIGTERM after its first step(s), mid-epoch, then resumed to step 7.
  auto two = tiny_options(f, d + "/two", 7);
  TrainOutcome stopped = run_stopped_after_first_step(f, two);
  ASSERT_EQ(stopped.signal, SIGTERM);
  ASSERT_LT(stopped.position.step, 7);
  ASSERT_FALSE(file_exists(final_model_path(two.out_dir)));
  const auto pos = read_train_checkpoint_metadata(checkpoint_path(two.out_dir)).position;
  EXPECT_EQ(pos.step, stopped.position.step);

  TrainRunOptions r;
  r.resume = true;
  TrainOutcome resumed = run_training(f, two, r);
  EXPECT_EQ(resumed.signal, 0);
  EXPECT_EQ(resumed.position.step, 7);
  EXPECT_EQ(resumed.position.epoch, 1);
  EXPECT_EQ(resumed.position.batch_in_epoch, 3);
  expect_identical(final_weights(full.out_dir), final_weights(two.out_dir));
  expect_identical(final_weights(full.out_dir), final_weights(part.out_dir));
  // The log of the resumed run has one record per step, no duplicates.
  int train_records = 0;
  int64_t last = 0;
  for (const auto& j : read_log(two.out_dir))
    if (j["type"] == "train") {
      ++train_records;
      EXPECT_EQ(j["step"].get<int64_t>(), last + 1);
      last = j["step"].get<int64_t>();
    }
  EXPECT_EQ(train_records, 7);
}

TEST(Trainer, RefusesMismatchedResumeAndExistingRun) {
  TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("mismatch");
  auto o = tiny_options(f, d + "/run", 2);
  run_training(f, o, {});
  // Same folder without --resume or --overwrite.
  EXPECT_THROW(run_training(f, o, {}), ConfigError);
  // Resume with another learning rate names the difference.
  auto other = o;
  other.lr *= 2;
  TrainRunOptions r;
  r.resume = true;
  try {
    run_training(f, other, r);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lr"), std::string::npos) << e.what();
  }
  // --overwrite starts again.
  TrainRunOptions ow;
  ow.overwrite = true;
  EXPECT_EQ(run_training(f, o, ow).position.step, 2);
}

TEST(Trainer, CheckpointContentAndCorruption) {
  TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("ckpt");
  auto o = tiny_options(f, d + "/run", 2);
  run_training(f, o, {});
  const std::string ck = checkpoint_path(o.out_dir);
  SafeTensorsFile file(ck);
  EXPECT_EQ(file.metadata().at("format"), kTrainCheckpointFormat);
  // Model, optimizer (SGD momentum for every trained parameter) and RNG state are all there.
  MultiTaskModel model = build_model(f, o);
  size_t n_params = 0;
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(file.has("model/" + p.key())) << p.key();
    EXPECT_TRUE(file.has("optimizer/momentum_buffer/" + p.key())) << p.key();
    ++n_params;
  }
  EXPECT_GT(n_params, 10u);
  EXPECT_TRUE(file.has("rng/torch_cpu"));
  EXPECT_EQ(read_train_checkpoint_metadata(ck).position.step, 2);

  // A truncated file and a file of another kind are refused with the path in the message.
  const std::string bytes = read_file(ck);
  const std::string cut = d + "/cut.safetensors";
  write_file_atomic(cut, bytes.substr(0, bytes.size() / 2));
  Optimizer opt(name_parameters(*model, model->expert_parameters()), o.optimizer);
  EXPECT_THROW(load_train_checkpoint(cut, *model, &opt), Error);
  EXPECT_THROW(load_train_checkpoint(final_model_path(o.out_dir), *model, &opt), FormatError);
  EXPECT_FALSE(is_train_checkpoint(final_model_path(o.out_dir)));
  EXPECT_TRUE(is_train_checkpoint(ck));
  // No temporary files are left next to the checkpoint.
  for (const auto& e : std::filesystem::directory_iterator(o.out_dir))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(Trainer, LossDecreases) {
  // The same 4 images every step (no augmentation): 24 AdamW steps must bring the loss well down.
  TrainConfig f = tiny_config();
  f.data.synthetic_train_images = 4;
  f.data.augment = false;
  const std::string d = test::scratch_dir("learn");
  auto o = tiny_options(f, d + "/run", 24);
  o.optimizer.type = "adamw";
  o.lr = 3e-3;
  run_training(f, o, {});
  // Per task: mean of the first 4 and the last 4 steps. Depth (metres, from an output that starts
  // near 0) moves slowest; class and normal losses must drop by a fifth.
  std::map<std::string, std::vector<double>> per_task;
  for (const auto& j : read_log(o.out_dir))
    if (j["type"] == "train")
      for (const std::string t : {"semseg", "normals", "depth"}) per_task[t].push_back(j["losses"][t].get<double>());
  for (const auto& [t, v] : per_task) {
    ASSERT_EQ(v.size(), 24u) << t;
    double first = 0, last = 0;
    for (int i = 0; i < 4; ++i) first += v[i] / 4, last += v[v.size() - 1 - i] / 4;
    EXPECT_LT(last, (t == "depth" ? 0.99 : 0.8) * first) << t << ": first " << first << " last " << last;
  }
}

TEST(Trainer, OneByOneTaskLoopGivesTheSameStepAsAllTasks) {
  // Without TAM the heads' BatchNorms see the same batch either way and the backbone has no batch
  // statistics, so the summed per-task backward of the authors' one_by_one loop equals the backward
  // of the summed loss: one plain SGD step lands on the same weights up to summation order.
  TrainConfig f = tiny_config();
  f.model.tam = false;
  const std::string d = test::scratch_dir("one_by_one");
  auto all = tiny_options(f, d + "/all", 1);
  all.optimizer.momentum = 0;
  all.task_loop = "all";
  auto obo = all;
  obo.out_dir = d + "/obo";
  obo.task_loop = "one_by_one";
  run_training(f, all, {});
  run_training(f, obo, {});
  auto a = final_weights(all.out_dir), b = final_weights(obo.out_dir);
  auto init = [&] {
    MultiTaskModel m = build_model(f, all);
    std::map<std::string, torch::Tensor> w;
    for (const auto& [k, t] : model_state(*m)) w[k] = t.detach().clone();
    return w;
  }();
  double moved = 0;
  for (const auto& [k, t] : a) {
    if (k.find("num_batches_tracked") != std::string::npos) continue;
    EXPECT_TRUE(test::tensors_close(k, b.at(k), t, 1e-4, 1e-6));
    moved = std::max(moved, (t - init.at(k).to(t.scalar_type())).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-4);  // the step did something
  // Both loops log the same losses.
  auto la = read_log(all.out_dir), lb = read_log(obo.out_dir);
  EXPECT_NEAR(la[0]["loss"].get<double>(), lb[0]["loss"].get<double>(), 1e-4);
  // one_by_one with TAM is refused (the authors' loss needs every task at once, quirk Q3).
  TrainConfig tam = tiny_config();
  tam.doc["train"]["task_loop"] = "one_by_one";
  EXPECT_THROW(train_options_from(tam), ConfigError);
}

TEST(Trainer, GradientAccumulationCountsMicroBatches) {
  // 16 images, batch 4: 4 micro-batches per epoch; grad_accum 3 gives steps of 3 + 1 micro-batches,
  // so 2 steps per epoch, and a resume after step 1 continues at batch 3 of epoch 0.
  TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("accum");
  auto o = tiny_options(f, d + "/full", 5);
  o.grad_accum = 3;
  auto res = run_training(f, o, {});
  EXPECT_EQ(res.position.step, 5);
  EXPECT_EQ(res.position.epoch, 2);
  EXPECT_EQ(res.position.batch_in_epoch, 3);
  EXPECT_EQ(res.position.images, 4 * (3 + 1 + 3 + 1 + 3));
  // Stopped by SIGTERM after its first step(s) and resumed: the same weights.
  auto part = tiny_options(f, d + "/part", 5);
  part.grad_accum = 3;
  TrainOutcome stopped = run_stopped_after_first_step(f, part);
  ASSERT_EQ(stopped.signal, SIGTERM);
  TrainRunOptions r;
  r.resume = true;
  EXPECT_EQ(run_training(f, part, r).position.step, 5);
  expect_identical(final_weights(o.out_dir), final_weights(part.out_dir));
}

TEST(Trainer, DeitInitialisationLoadsTheSharedWeights) {
  // A timm/DeiT-style backbone file (keys without "backbone.", a 4x4 grid position embedding, a
  // classifier head) built from another seed's model; init: deit copies attention, norms and the
  // dense MLPs, resizes the position embedding to the model's 2x4 grid, and leaves experts alone.
  TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("deit");
  auto o = tiny_options(f, d + "/run", 1);
  o.seed = 9;
  MultiTaskModel donor = build_model(f, o);
  std::map<std::string, torch::Tensor> deit;
  for (const auto& [k, t] : model_state(*donor))
    if (k.rfind("backbone.", 0) == 0 && k.find(".mlp.experts.") == std::string::npos && k.find(".mlp.gate") == std::string::npos)
      deit[k.substr(9)] = t.detach().clone();
  // DeiT has a dense MLP in every block, also where the model has a MoE layer (ignored there).
  const int64_t hid = f.model.mlp_hidden(), dim = f.model.embed_dim;
  deit["blocks.1.mlp.fc1.weight"] = torch::randn({hid, dim});
  deit["blocks.1.mlp.fc1.bias"] = torch::randn({hid});
  deit["blocks.1.mlp.fc2.weight"] = torch::randn({dim, hid});
  deit["blocks.1.mlp.fc2.bias"] = torch::randn({dim});
  deit["pos_embed"] = torch::randn({1, 17, f.model.embed_dim});
  deit["head.weight"] = torch::randn({10, f.model.embed_dim});
  deit["head.bias"] = torch::zeros({10});
  save_tensors(d + "/deit.safetensors", deit);

  o.seed = 0;
  o.init = "deit";
  o.pretrained = d + "/deit.safetensors";
  MultiTaskModel m = build_model(f, o);
  o.init = "random";
  MultiTaskModel plain = build_model(f, o);
  auto ms = m->named_parameters();
  EXPECT_TRUE(torch::equal(ms["backbone.blocks.0.attn.qkv.weight"], deit["blocks.0.attn.qkv.weight"]));
  EXPECT_TRUE(torch::equal(ms["backbone.blocks.0.mlp.fc1.weight"], deit["blocks.0.mlp.fc1.weight"]));
  EXPECT_TRUE(torch::equal(ms["backbone.cls_token"], deit["cls_token"]));
  EXPECT_EQ(ms["backbone.pos_embed"].sizes(), (std::vector<int64_t>{1, 9, f.model.embed_dim}));
  // The cls row of the position embedding is kept as is.
  EXPECT_TRUE(torch::equal(ms["backbone.pos_embed"][0][0], deit["pos_embed"][0][0]));
  // Experts (block 1 is MoE) are not initialised from DeiT: they keep the seed-0 initialisation.
  EXPECT_TRUE(torch::equal(ms["backbone.blocks.1.mlp.experts.htoh4.weight"],
                           plain->named_parameters()["backbone.blocks.1.mlp.experts.htoh4.weight"]));
  // And training from it runs.
  o.init = "deit";
  EXPECT_EQ(run_training(f, o, {}).position.step, 1);

  // Without the file a new run stops before anything exists: no output folder, one line naming the
  // file and --from-scratch. A resumed run takes its weights from the checkpoint and needs no file.
  std::filesystem::remove(o.pretrained);
  TrainOptions fresh = o;
  fresh.out_dir = d + "/fresh";
  const std::string msg = test_io::error_of<IoError>([&] { run_training(f, fresh, {}); });
  EXPECT_NE(msg.find(o.pretrained), std::string::npos) << msg;
  EXPECT_NE(msg.find("--from-scratch"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(fresh.out_dir));
  TrainRunOptions resume;
  resume.resume = true;
  resume.allow_changes = true;  // a longer run (max_steps 1 -> 2)
  o.max_steps = 2;
  EXPECT_EQ(run_training(f, o, resume).position.step, 2);
}

// eval_last_epochs: validation after each of the last N epochs (the authors' last 10,
// train_fastmoe.py:419-425), best model kept by Δm; none before them with eval_every 0.
TEST(Trainer, ValidatesInTheLastEpochsOnly) {
  TrainConfig f = tiny_config();
  f.train.eval_last_epochs = 2;  // as the config key would set it
  TrainOptions o = tiny_options(f, test::scratch_dir("last_epochs") + "/run", 0);
  EXPECT_EQ(o.eval_last_epochs, 2);
  o.epochs = 4;  // 4 steps per epoch (16 images, batch 4)
  o.eval_every = 0;
  o.delta_m_references = {{"semseg", 0.5}, {"depth", 2.0}};  // a defined Δm: the best one is kept
  const TrainOutcome out = run_training(f, o, {});
  EXPECT_EQ(out.position.step, 16);
  std::vector<int64_t> eval_epochs;
  double best = -1e300;
  int64_t best_step = -1;
  for (const auto& j : read_log(o.out_dir))
    if (j["type"] == "eval") {
      eval_epochs.push_back(j["epoch"].get<int64_t>());
      const double dm = j["delta_m"].get<double>();
      if (dm > best) best = dm, best_step = j["step"].get<int64_t>();
    }
  EXPECT_EQ(eval_epochs, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(out.position.best_step, best_step);
  EXPECT_TRUE(file_exists(best_model_path(o.out_dir)));
}

}  // namespace
}  // namespace m3vit
