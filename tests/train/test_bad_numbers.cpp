// Bad numbers in training (docs/TRAINING.md, "Bad numbers"), each case injected on the tiny model of
// tests/train/configs/tiny_train.yaml: NaN in the input images, a NaN weight (the per-task prediction
// guard), a NaN gradient behind a finite loss, a learning rate far too high, a corrupt checkpoint, and
// the authors' legitimate NaN (a task without a valid label pixel, zeroed with TAM; an error without).
// Every failing case checks the message (step, task or tensor, checkpoint), that the last good
// checkpoint is byte-identical, and that --resume from it finishes with the weights of a run that never
// met the fault. The same through the command line: tests/cli/test_train_bad_numbers.sh.
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <limits>
#include <regex>

#include "common/errors.h"
#include "common/fileutil.h"
#include "io/safetensors.h"
#include "model/tensor_io.h"
#include "tests/core/io_test_util.h"
#include "tests/train/train_test_util.h"
#include "train/optimizer.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"

namespace m3vit {
namespace {

constexpr int64_t kSteps = 6;  // 16 images, batch 4: a run crosses one epoch boundary (after step 4)

TrainConfig tiny_config(bool tam = true) {
  TrainConfig f = load_train_config(std::string(M3VIT_SOURCE_DIR) + "/tests/train/configs/tiny_train.yaml");
  f.model.tam = tam;
  return f;
}

TrainOptions tiny_options(const TrainConfig& f, const std::string& out_dir) {
  TrainOptions o = train_options_from(f);
  o.out_dir = out_dir;
  o.max_steps = kSteps;
  o.checkpoint_every = 1;  // a checkpoint after every good step: the bad one must not write its own
  o.threads = 1;
  o.workers = 1;
  o.progress = false;
  o.eval_every = 0;
  return o;
}

std::vector<nlohmann::json> train_records(const std::string& out_dir) {
  std::vector<nlohmann::json> v;
  std::ifstream in(train_log_path(out_dir));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      if (j["type"] == "train") v.push_back(j);
    }
  return v;
}

void expect_identical(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name << " differs";
  }
}

// Final weights of `o` run to the end without a fault, in a folder of its own.
std::map<std::string, torch::Tensor> clean_run(const TrainConfig& f, TrainOptions o) {
  o.out_dir += "-clean";
  EXPECT_EQ(run_training(f, o, {}).position.step, o.max_steps);
  return load_tensors(final_model_path(o.out_dir));
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs `o` to step `good` (stopped there as by SIGTERM, which writes the checkpoint), then resumes it
// with `faults`, which must stop it with NumericError in step good + 1. Checks what every such stop
// promises and returns the message.
std::string stop_after_good_step(const TrainConfig& f, const TrainOptions& o, int64_t good, TrainFaults faults) {
  TrainRunOptions first;
  first.faults.signal_at_step = good;
  const TrainOutcome a = run_training(f, o, first);
  EXPECT_EQ(a.signal, SIGTERM);
  EXPECT_EQ(a.position.step, good);
  const std::string ck = checkpoint_path(o.out_dir);
  const std::string before = read_file(ck);
  const ino_t inode = inode_of(ck);

  TrainRunOptions again;
  again.resume = true;
  again.faults = faults;
  std::string msg = test_io::error_of<NumericError>([&] { run_training(f, o, again); });
  EXPECT_FALSE(msg.empty()) << "expected NumericError in step " << good + 1;
  // The bad step wrote nothing: the checkpoint is the good step's, byte for byte, and the log ends there.
  EXPECT_TRUE(read_file(ck) == before) << "checkpoint of step " << good << " changed";
  // Not even rewritten with the same bytes (a save renames a new file over the old one).
  EXPECT_EQ(inode_of(ck), inode) << "checkpoint of step " << good << " rewritten";
  EXPECT_EQ(read_train_checkpoint_metadata(ck).position.step, good);
  auto log = train_records(o.out_dir);
  EXPECT_FALSE(log.empty());
  if (!log.empty()) {
    EXPECT_EQ(log.back()["step"].get<int64_t>(), good);
  }
  EXPECT_FALSE(file_exists(final_model_path(o.out_dir)));
  // One line, starting with the step, ending with where to resume from.
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind("step " + std::to_string(good + 1), 0), 0u) << msg;
  EXPECT_TRUE(contains(msg, "the last good one is " + ck + " (step " + std::to_string(good) +
                                "): fix the cause, then continue with --resume"))
      << msg;
  return msg;
}

// --resume without the fault: the run finishes where it was meant to, with the weights of a run that
// never met the fault (the bad step left no trace).
void expect_resume_finishes(const TrainConfig& f, const TrainOptions& o,
                            const std::map<std::string, torch::Tensor>& clean_weights) {
  TrainRunOptions r;
  r.resume = true;
  const TrainOutcome out = run_training(f, o, r);
  EXPECT_EQ(out.signal, 0);
  EXPECT_EQ(out.position.step, kSteps);
  expect_identical(load_tensors(final_model_path(o.out_dir)), clean_weights);
  EXPECT_EQ(train_records(o.out_dir).size(), static_cast<size_t>(kSteps));
}

// The first parameter whose name starts with `prefix`.
std::string parameter_named(const TrainConfig& f, const std::string& prefix) {
  MultiTaskModel m(f.model);
  for (const auto& p : m->named_parameters())
    if (p.key().rfind(prefix, 0) == 0) return p.key();
  ADD_FAILURE() << "no parameter " << prefix << "*";
  return prefix;
}

TEST(BadNumbers, NanInTheInputImagesStopsWithTheBatchNamed) {
  const TrainConfig f = tiny_config();
  const auto o = tiny_options(f, test::scratch_dir("bad_images") + "/run");
  TrainFaults fault;
  fault.nan_image_at_step = 3;
  const std::string msg = stop_after_good_step(f, o, 2, fault);
  // Step 3 is batch 3 of epoch 1; one value of its first image was poisoned.
  EXPECT_TRUE(contains(msg, "step 3: the input images hold NaN or Inf (1 NaN, 0 Inf of " +
                                std::to_string(4 * 3 * 32 * 64) + " values; sample(s) "))
      << msg;
  EXPECT_TRUE(contains(msg, " of batch 3, epoch 1): check the data")) << msg;
  expect_resume_finishes(f, o, clean_run(f, o));
}

TEST(BadNumbers, NanPredictionNamesItsTask) {
  // Without TAM the heads share nothing after the backbone: a NaN in the depth head spoils only the
  // depth prediction, and only depth is named.
  const TrainConfig f = tiny_config(/*tam=*/false);
  const std::string d = test::scratch_dir("bad_prediction");
  auto all = tiny_options(f, d + "/all");
  all.task_loop = "all";
  const std::string head = parameter_named(f, "decoders.depth.");
  TrainFaults fault;
  fault.nan_weight_at_step = 4;
  fault.weight = head;
  std::string msg = stop_after_good_step(f, all, 3, fault);
  EXPECT_TRUE(contains(msg, "step 4, task depth: the prediction is not finite (output 'depth': ")) << msg;
  EXPECT_FALSE(contains(msg, "semseg")) << msg;
  EXPECT_FALSE(contains(msg, "normals")) << msg;
  expect_resume_finishes(f, all, clean_run(f, all));

  // one_by_one: a NaN in the backbone is met by the first task's forward, which is the one named.
  auto obo = tiny_options(f, d + "/obo");
  obo.task_loop = "one_by_one";
  fault.weight = parameter_named(f, "backbone.blocks.0.attn.qkv.weight");
  msg = stop_after_good_step(f, obo, 3, fault);
  EXPECT_TRUE(contains(msg, "step 4, task semseg: the prediction is not finite (output 'semseg': ")) << msg;
  expect_resume_finishes(f, obo, clean_run(f, obo));
}

TEST(BadNumbers, NanGradientBehindAFiniteLossNamesTheParameter) {
  const TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("bad_grad");
  auto o = tiny_options(f, d + "/all");
  const std::string p = "backbone.blocks.0.attn.qkv.weight";
  TrainFaults fault;
  fault.bad_grad_at_step = 2;
  fault.grad = p;
  std::string msg = stop_after_good_step(f, o, 1, fault);
  const int64_t numel = 3 * 32 * 32;  // qkv of embed_dim 32
  EXPECT_TRUE(contains(msg, "step 2, tasks semseg, normals, depth and aux: the gradient of parameter '" + p +
                                "' is not finite (1 NaN, 0 Inf of " + std::to_string(numel) + " values) although the loss is"))
      << msg;
  // The losses quoted are the finite ones of that step.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(msg, m, std::regex(R"(\(losses: ([^)]*)\))"))) << msg;
  EXPECT_FALSE(contains(m[1].str(), "nan")) << msg;
  EXPECT_TRUE(contains(m[1].str(), "depth=")) << msg;
  expect_resume_finishes(f, o, clean_run(f, o));

  // one_by_one (no TAM): the fault follows the first task's backward, and that task is named.
  const TrainConfig g = tiny_config(/*tam=*/false);
  auto obo = tiny_options(g, d + "/obo");
  obo.task_loop = "one_by_one";
  fault.grad = "";  // the first parameter with a gradient
  msg = stop_after_good_step(g, obo, 1, fault);
  EXPECT_TRUE(contains(msg, "step 2, task semseg: the gradient of parameter '")) << msg;
  expect_resume_finishes(g, obo, clean_run(g, obo));
}

TEST(BadNumbers, OverflowInTheUpdateIsCaughtBeforeTheCheckpoint) {
  // A finite but huge gradient (1e30) passes the gradient guard; Adam squares it into its second
  // moment, which overflows to Inf (the weight itself stays finite: the step is exp_avg / sqrt(Inf)).
  // The check after the update names that state, and the checkpoint is not written.
  TrainConfig f = tiny_config();
  auto o = tiny_options(f, test::scratch_dir("bad_update") + "/run");
  o.optimizer.type = "adam";
  o.lr = 1e-3;
  const std::string p = "backbone.blocks.0.attn.qkv.weight";
  TrainFaults fault;
  fault.bad_grad_at_step = 3;
  fault.grad = p;
  fault.grad_value = 1e30;
  const std::string msg = stop_after_good_step(f, o, 2, fault);
  EXPECT_TRUE(contains(msg, "step 3, tasks semseg, normals and depth: after the update with lr 0.001, 'optimizer state "
                            "exp_avg_sq/" + p + "' is not finite (0 NaN, 1 Inf of 3072 values), so the learning rate is far too high"))
      << msg;
  expect_resume_finishes(f, o, clean_run(f, o));
}

TEST(BadNumbers, LearningRateFarTooHigh) {
  const TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("bad_lr");

  // 1. lr 1e8 from the first step: the weights grow by ~1e4 per step (SGD, weight decay 1e-4) until they
  //    overflow. The run stops at the first step that meets an Inf or NaN, and the checkpoint on disk is
  //    the one of the step before, byte-identical to that of a run stopped there on purpose.
  auto hot = tiny_options(f, d + "/hot");
  hot.lr = 1e8;
  hot.max_steps = 40;
  std::string msg = test_io::error_of<NumericError>([&] { run_training(f, hot, {}); });
  ASSERT_FALSE(msg.empty()) << "lr 1e8 trained 40 steps without a NaN";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(msg, m, std::regex(R"(^step (\d+), tasks? ([a-z_, ]+): )"))) << msg;
  const int64_t bad = std::stoll(m[1].str());
  ASSERT_GE(bad, 2) << msg;
  EXPECT_TRUE(contains(msg, " is not finite (")) << msg;
  const std::string ck = checkpoint_path(hot.out_dir);
  EXPECT_TRUE(contains(msg, "the last good one is " + ck + " (step " + std::to_string(bad - 1) + ")")) << msg;
  EXPECT_EQ(read_train_checkpoint_metadata(ck).position.step, bad - 1);
  auto ref = hot;
  ref.out_dir = d + "/hot-ref";
  TrainRunOptions stop_before;
  stop_before.faults.signal_at_step = bad - 1;
  EXPECT_EQ(run_training(f, ref, stop_before).signal, SIGTERM);
  EXPECT_TRUE(read_file(ck) == read_file(checkpoint_path(ref.out_dir))) << "checkpoint differs from step " << bad - 1;
  // --resume with the same lr continues from that checkpoint exactly: the same stop, the same message.
  TrainRunOptions r;
  r.resume = true;
  try {
    run_training(f, hot, r);
    ADD_FAILURE() << "resumed lr 1e8 run did not stop";
  } catch (const NumericError& e) {
    EXPECT_EQ(std::string(e.what()), msg);
  }

  // 2. The usual story: a good run whose lr is raised far too high from step 5 on (a resume with
  //    --allow-changes). Checkpoints only at epoch ends (step 4, 8), so no blown-up weights reach the
  //    disk before the stop; resuming with the lr of before finishes the run with the weights of one
  //    never raised.
  auto good = tiny_options(f, d + "/story");
  good.max_steps = 8;
  good.checkpoint_every = 0;
  TrainRunOptions first;
  first.faults.signal_at_step = 4;
  ASSERT_EQ(run_training(f, good, first).position.step, 4);
  const std::string ck4 = read_file(checkpoint_path(good.out_dir));
  auto raised = good;
  raised.lr = 1e8;
  TrainRunOptions changed;
  changed.resume = true;
  changed.allow_changes = true;
  msg = test_io::error_of<NumericError>([&] { run_training(f, raised, changed); });
  ASSERT_FALSE(msg.empty()) << "lr 1e8 from step 5 trained to step 8";
  ASSERT_TRUE(std::regex_search(msg, m, std::regex(R"(^step ([5-8]), tasks? )"))) << msg;
  EXPECT_TRUE(contains(msg, "the last good one is " + checkpoint_path(good.out_dir) + " (step 4)")) << msg;
  EXPECT_TRUE(read_file(checkpoint_path(good.out_dir)) == ck4) << "the step-4 checkpoint changed";
  // Without --allow-changes the changed lr is refused, naming it.
  TrainRunOptions plain;
  plain.resume = true;
  const std::string lr_refused = test_io::error_of<ConfigError>([&] { run_training(f, raised, plain); });
  EXPECT_TRUE(contains(lr_refused, "lr: 0.01 -> 100000000.0"))
      << "a changed lr was accepted without --allow-changes: " << lr_refused;
  // Back to the lr of the checkpoint: the failed run saved nothing, so this is a plain resume.
  const TrainOutcome done = run_training(f, good, plain);
  EXPECT_EQ(done.position.step, 8);
  expect_identical(load_tensors(final_model_path(good.out_dir)), clean_run(f, good));
  // --allow-changes does not cover a change of batch, optimizer type or data order.
  auto other = good;
  other.batch_size = 2;
  const std::string batch_refused = test_io::error_of<ConfigError>([&] { run_training(f, other, changed); });
  EXPECT_TRUE(contains(batch_refused, "batch_size: 4 -> 2")) << "a changed batch size was accepted: " << batch_refused;
}

// Rewrites `path` with one value of tensor `name` set to `v`, keeping the metadata.
void poison_checkpoint(const std::string& path, const std::string& name, float v) {
  std::map<std::string, std::string> metadata;
  {
    SafeTensorsFile file(path);
    metadata = file.metadata();
    ASSERT_TRUE(file.has(name)) << name;
  }
  auto tensors = load_tensors(path);
  tensors.at(name).view({-1})[0].fill_(v);
  save_tensors(path, tensors, metadata);
}

TEST(BadNumbers, CorruptCheckpointIsRefusedNamingTheTensor) {
  const TrainConfig f = tiny_config();
  const std::string d = test::scratch_dir("bad_ckpt");
  const auto o = tiny_options(f, d + "/run");
  TrainRunOptions first;
  first.faults.signal_at_step = 3;
  ASSERT_EQ(run_training(f, o, first).position.step, 3);
  const std::string ck = checkpoint_path(o.out_dir);
  const std::string good = read_file(ck), log = read_file(train_log_path(o.out_dir));
  const auto clean = clean_run(f, o);

  const std::string weight = "model/" + parameter_named(f, "backbone.blocks.0.attn.qkv.weight");
  const std::string momentum = "optimizer/momentum_buffer/" + parameter_named(f, "decoders.depth.");
  const std::string running_var = "model/" + [&] {
    MultiTaskModel m(f.model);
    for (const auto& b : m->named_buffers())
      if (contains(b.key(), "running_var")) return b.key();
    return std::string("?");
  }();
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const auto& [name, v, what] : {std::tuple{weight, nan, "1 NaN, 0 Inf"}, std::tuple{momentum, inf, "0 NaN, 1 Inf"},
                                      std::tuple{running_var, -inf, "0 NaN, 1 Inf"}}) {
    SCOPED_TRACE(name);
    write_file_atomic(ck, good);
    poison_checkpoint(ck, name, v);
    const std::string corrupt = read_file(ck);
    TrainRunOptions r;
    r.resume = true;
    try {
      run_training(f, o, r);
      ADD_FAILURE() << "a checkpoint with a non-finite " << name << " was resumed";
    } catch (const NumericError& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(contains(msg, ck + ": tensor '" + name + "' holds NaN or Inf (" + what + " of ")) << msg;
      EXPECT_TRUE(contains(msg, "the checkpoint is corrupt")) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    // Refused before anything was touched: the file and the log are as they were.
    EXPECT_TRUE(read_file(ck) == corrupt);
    EXPECT_TRUE(read_file(train_log_path(o.out_dir)) == log);
  }
  // The loader refuses without copying anything into the model.
  {
    write_file_atomic(ck, good);
    poison_checkpoint(ck, weight, nan);
    MultiTaskModel m(f.model);
    const auto before = m->named_parameters()[weight.substr(6)].clone();
    Optimizer opt(name_parameters(*m, m->expert_parameters()), o.optimizer);
    EXPECT_THROW(load_train_checkpoint(ck, *m, &opt), NumericError);
    EXPECT_TRUE(torch::equal(m->named_parameters()[weight.substr(6)], before));
  }
  // The good copy put back resumes and finishes.
  write_file_atomic(ck, good);
  expect_resume_finishes(f, o, clean);
}

TEST(BadNumbers, TaskWithoutValidLabelsIsZeroedWithTam) {
  // The authors' nan_to_num (loss_schemes.py:66-104): with TAM, a task whose batch has no valid label
  // pixel has a 0/0 = NaN loss that becomes 0, with a zero gradient. Not an error: the run goes on.
  const TrainConfig f = tiny_config(/*tam=*/true);
  const std::string d = test::scratch_dir("empty_labels");
  auto o = tiny_options(f, d + "/run");
  TrainFaults fault;
  fault.empty_label_at_step = 3;
  fault.empty_label_task = "depth";
  TrainRunOptions r;
  r.faults = fault;
  EXPECT_EQ(run_training(f, o, r).position.step, kSteps);
  const auto log = train_records(o.out_dir);
  ASSERT_EQ(log.size(), static_cast<size_t>(kSteps));
  const auto& step3 = log[2];
  ASSERT_EQ(step3["step"].get<int64_t>(), 3);
  for (const std::string k : {"depth", "tam_level0_depth", "tam_level1_depth"})
    EXPECT_EQ(step3["losses"][k].get<double>(), 0.0) << k;
  for (const std::string k : {"semseg", "normals"}) EXPECT_GT(step3["losses"][k].get<double>(), 0.0) << k;
  for (const auto& j : log)
    if (j["step"] != 3) {
      EXPECT_GT(j["losses"]["depth"].get<double>(), 0.0) << "step " << j["step"];
    }
  // The weights stay finite, and the zeroed step changed them (depth had no say in step 3).
  const auto w = load_tensors(final_model_path(o.out_dir));
  for (const auto& [k, t] : w)
    if (t.is_floating_point()) {
      EXPECT_TRUE(t.isfinite().all().item<bool>()) << k;
    }
  const auto clean = clean_run(f, o);
  EXPECT_FALSE(torch::equal(w.at("backbone.blocks.0.attn.qkv.weight"), clean.at("backbone.blocks.0.attn.qkv.weight")));
}

TEST(BadNumbers, TaskWithoutValidLabelsStopsWithoutTam) {
  // Without TAM the authors zero a NaN loss only for human_parts: a depth batch without a valid pixel
  // is NaN, and the loss guard stops the step, naming the task and why.
  const TrainConfig f = tiny_config(/*tam=*/false);
  const auto o = tiny_options(f, test::scratch_dir("empty_labels_no_tam") + "/run");
  TrainFaults fault;
  fault.empty_label_at_step = 3;
  fault.empty_label_task = "depth";
  const std::string msg = stop_after_good_step(f, o, 2, fault);
  EXPECT_TRUE(contains(msg, "step 3, task depth: the loss is not finite (losses: aux=")) << msg;
  EXPECT_TRUE(contains(msg, " depth=nan ")) << msg;
  EXPECT_TRUE(contains(msg, "task depth has no valid label pixel in this batch")) << msg;
  expect_resume_finishes(f, o, clean_run(f, o));
}

}  // namespace
}  // namespace m3vit
