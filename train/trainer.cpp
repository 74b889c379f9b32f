// The training loop (see trainer.h; authors' train_fastmoe.py:395-471, train/train_utils.py:197-278).
#include "common/pch/torch_pch.h"

#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>

#include <unistd.h>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/platform.h"
#include "common/progress.h"
#include "model/batch_sync.h"
#include "model/checkpoint.h"
#include "train/data_setup.h"
#include "train/expert_shards.h"
#include "train/finite_check.h"
#include "train/losses.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/stop_signal.h"

namespace m3vit {

std::string checkpoint_path(const std::string& out_dir) { return out_dir + "/checkpoint.safetensors"; }
std::string best_model_path(const std::string& out_dir) { return out_dir + "/best_model.safetensors"; }
std::string final_model_path(const std::string& out_dir) { return out_dir + "/model.safetensors"; }
std::string train_log_path(const std::string& out_dir) { return out_dir + "/train_log.jsonl"; }

MultiTaskModel build_model(const TrainConfig& f, const TrainOptions& o) {
  torch::manual_seed(o.seed);  // the authors seed 0 on every rank (train_fastmoe.py:86, 241-244)
  MultiTaskModel model(f.model);
  if (o.init == "deit") {
    LoadReport rep = load_deit(*model, o.pretrained, o.split_experts);
    std::fprintf(stderr, "init: DeiT weights from %s: %s\n", o.pretrained.c_str(), rep.summary().c_str());
  }
  return model;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Keeps the records of steps <= `step` (a resumed run rewrites what came after its checkpoint).
void truncate_log(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      if (j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > step) continue;
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut by a kill
    }
    kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

class JsonLog {
 public:
  explicit JsonLog(const std::string& path) : out_(path, std::ios::app) {
    if (!out_) throw IoError("cannot write " + path);
  }
  void write(const nlohmann::json& j) {
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

struct StepLosses {
  double total = 0, aux = 0;
  std::map<std::string, double> parts;
};

std::string join_names(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + v[i];
  return out;
}

// "task depth" / "tasks semseg, normals and depth": who a bad-number message is about.
std::string tasks_phrase(const std::vector<std::string>& tasks) {
  return (tasks.size() == 1 ? "task " : "tasks ") + join_names(tasks);
}

// The task a model output or a loss part belongs to: "depth", "tam_level1_depth" -> depth.
std::string task_of_key(const std::string& key) {
  const std::string tam = "tam_level";
  if (key.rfind(tam, 0) == 0) {
    const auto u = key.find('_', tam.size());
    if (u != std::string::npos) return key.substr(u + 1);
  }
  return key;
}

std::string losses_text(const std::map<std::string, double>& parts) {
  std::string out;
  for (const auto& [k, v] : parts)
    out += (out.empty() ? "" : " ") + k + "=" + (std::isnan(v) ? std::string("nan") : fmt("%g", v));  // not "-nan"
  return out;
}

// Which parameter a fault names ("" = the first one with a gradient, for the gradient fault).
const NamedParameter& faulted_parameter(const std::vector<NamedParameter>& params, const std::string& name,
                                        bool need_grad) {
  for (const auto& p : params)
    if ((name.empty() || p.name == name) && (!need_grad || p.param.grad().defined())) return p;
  throw ConfigError("fault injection: no parameter '" + name + "'" + (need_grad ? " with a gradient" : ""));
}

// One micro-batch: forward, losses, backward with weight `scale` (1 / micro-batches of the step).
// Every stage is guarded (docs/TRAINING.md, "Bad numbers"): a NaN or Inf in the input images, a task's
// prediction, the loss or, right after each backward, a gradient throws NumericError starting with
// `where` ("step N") and naming the task(s) and the tensor. run_training adds the checkpoint to resume from.
// A task whose loss is NaN because its batch has no valid label pixel is not an error where the
// authors zero that loss (nan_to_num in multi_task_loss): such a loss and its gradient are 0.
void train_micro_batch(MultiTaskModelImpl& model, const Batch& b, TensorBatch& tb, const TrainOptions& o,
                       const LossOptions& lo, const std::vector<std::string>& tasks,
                       const std::vector<NamedParameter>& params, double scale, StepLosses& acc,
                       const std::string& where, int64_t step, const TrainFaults* faults,
                       const std::function<void()>& before_last_backward) {
  const ModelConfig& cfg = model.config();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto fail = [&](const std::string& who, const std::string& what) -> void {
    throw NumericError(where + (who.empty() ? "" : ", " + who) + ": " + what);
  };

  // Test faults (TrainFaults), applied where the real fault would arise.
  if (faults && faults->nan_image_at_step == step) tb.images.view({-1})[0].fill_(nan);
  if (faults && faults->empty_label_at_step == step) {
    auto it = tb.labels.find(faults->empty_label_task);
    if (it == tb.labels.end()) throw ConfigError("fault injection: no label of task '" + faults->empty_label_task + "'");
    it->second.fill_(255.0f);
  }
  if (faults && faults->nan_weight_at_step == step)
    faulted_parameter(params, faults->weight, false).param.detach().view({-1})[0].fill_(nan);

  // Bad data first: said as such, it points at the file to fix rather than at the model.
  if (!non_finite_entries({{"images", tb.images}}).empty()) {
    std::vector<std::string> samples;
    for (int64_t i = 0; i < tb.images.size(0); ++i)
      if (!tb.images[i].isfinite().all().item<bool>())
        samples.push_back(static_cast<size_t>(i) < b.ids.size() ? b.ids[i] : "#" + std::to_string(i));
    fail("", "the input images hold NaN or Inf (" + non_finite_summary(tb.images) + "; sample(s) " +
                 join_names(samples) + " of batch " + std::to_string(b.index + 1) + ", epoch " +
                 std::to_string(b.epoch + 1) + "): check the data");
  }

  auto check_predictions = [&](const std::map<std::string, torch::Tensor>& preds) {
    const NamedTensors named(preds.begin(), preds.end());
    const auto bad = non_finite_entries(named);
    if (bad.empty()) return;
    std::vector<std::string> bad_tasks;  // config order
    for (const auto& t : tasks)
      for (size_t i : bad)
        if (task_of_key(named[i].first) == t) {
          bad_tasks.push_back(t);
          break;
        }
    const auto& [name, t] = named[bad.front()];
    fail(tasks_phrase(bad_tasks), "the prediction is not finite (output '" + name + "': " + non_finite_summary(t) +
                                      (bad.size() > 1 ? "; " + std::to_string(bad.size() - 1) + " more outputs" : "") + ")");
  };

  // Gradients right after a backward, so that the task(s) of that backward are the ones named.
  auto check_gradients = [&](const std::string& who, const std::map<std::string, double>& parts) {
    NamedTensors grads;
    grads.reserve(params.size());
    for (const auto& p : params) grads.emplace_back(p.name, p.param.grad());
    const auto bad = non_finite_entries(grads);
    if (bad.empty()) return;
    const auto& [name, g] = grads[bad.front()];
    fail(who, "the gradient of parameter '" + name + "' is not finite (" + non_finite_summary(g) +
                  (bad.size() > 1 ? "; " + std::to_string(bad.size() - 1) + " more parameters" : "") +
                  ") although the loss is (losses: " + losses_text(parts) + ")");
  };

  // Loss of one forward pass + the aux loss of that pass, backward (gradients accumulate), tallied.
  auto backward = [&](const std::map<std::string, torch::Tensor>& preds, const std::vector<std::string>& names,
                      bool tam, bool last) {
    check_predictions(preds);
    LossBreakdown lb = multi_task_loss(preds, tb.labels, names, lo, tam);
    auto aux = model.take_aux_loss() * cfg.aux_weight;
    auto total = lb.total + aux;
    auto parts = lb.parts;
    parts["aux"] = aux.item<double>();
    const double total_v = total.item<double>();
    // One task per backward (one_by_one) is named as such; in the all-task loop, the tasks whose loss
    // is not finite, "aux" for the routers' balance loss.
    std::vector<std::string> culprits;
    if (!std::isfinite(total_v)) {
      for (const auto& t : names)
        for (const auto& [k, v] : lb.parts)
          if (task_of_key(k) == t && !std::isfinite(v)) {
            culprits.push_back(t);
            break;
          }
      const bool aux_bad = !std::isfinite(parts["aux"]);
      std::string why = "the loss is not finite (losses: " + losses_text(parts) + ")";
      if (culprits.empty() && !aux_bad) why += ": the weighted sum of finite losses overflows";
      for (const auto& t : culprits) {
        auto it = tb.labels.find(t);
        if (it != tb.labels.end() && !it->second.ne(255.0f).any().item<bool>())
          why += "; task " + t + " has no valid label pixel in this batch, a NaN loss the authors zero only with TAM "
                 "or for human_parts";
      }
      if (aux_bad) culprits.push_back("aux");
      const std::vector<std::string>& who = names.size() == 1 || culprits.empty() ? names : culprits;
      fail(tasks_phrase(who), why);
    }
    if (last && before_last_backward) before_last_backward();
    (total * scale).backward();
    if (faults && faults->bad_grad_at_step == step) {
      faulted_parameter(params, faults->grad, true).param.mutable_grad().view({-1})[0].fill_(faults->grad_value);
      faults = nullptr;  // once, after the step's first backward
    }
    std::vector<std::string> who = names;
    if (names.size() > 1) who.push_back("aux");
    check_gradients(tasks_phrase(who), parts);
    acc.total += scale * total_v;
    acc.aux += scale * parts["aux"];
    for (const auto& [k, v] : lb.parts) acc.parts[k] += scale * v;
  };
  if (o.task_loop == "all") {
    // Multi-gate / shared: every task each step (train_utils.py:236-262).
    backward(model.forward_all(tb.images), tasks, cfg.tam, /*last=*/true);
  } else {
    // one_by_one (train_utils.py:211-234): per task, its weighted loss + the aux loss of that pass,
    // backward per task, one optimizer step after all tasks.
    for (const std::string& task : tasks)
      backward({{task, model.forward_task(tb.images, cfg.task_index(task))}}, {task}, /*tam=*/false,
               /*last=*/task == tasks.back());
  }
}

// After the update: a weight, a buffer or an optimizer state that overflowed (a learning rate far too
// high) must not reach a checkpoint. Throws NumericError naming the step, its tasks and the tensor.
void check_after_update(const NamedTensors& weights, const Optimizer& opt, const std::string& where,
                        const std::vector<std::string>& tasks, double lr) {
  NamedTensors all = weights;
  for (auto& st : opt.state_tensors()) all.emplace_back("optimizer state " + st.first, st.second);
  const auto bad = non_finite_entries(all);
  if (bad.empty()) return;
  const auto& [name, t] = all[bad.front()];
  throw NumericError(where + ", " + tasks_phrase(tasks) + ": after the update with lr " + fmt("%g", lr) + ", '" +
                     name + "' is not finite (" + non_finite_summary(t) +
                     (bad.size() > 1 ? "; " + std::to_string(bad.size() - 1) + " more tensors" : "") +
                     "), so the learning rate is far too high or the gradients too large for float");
}

}  // namespace

TrainOutcome run_training(const TrainConfig& f, const TrainOptions& o, const TrainRunOptions& r) {
  namespace fs = std::filesystem;
  TrainOutcome out;
  const int threads = o.threads > 0 ? o.threads : default_threads();
  at::set_num_threads(threads);
  const DistributedOptions& dopt = r.distributed;
  if (dopt.active() && o.time_budget_s > 0)
    throw ConfigError("a time budget (the demo) cannot be split over processes: their step times differ");
  check_expert_parallel(o, f.model, dopt.world_size);

  const std::string ckpt = checkpoint_path(o.out_dir), log_path = train_log_path(o.out_dir);
  const bool have_ckpt = file_exists(ckpt);
  // A resumed run takes every weight from its checkpoint; a new one needs its DeiT file now, before
  // the output folder, the data or the model exist, so that a missing file leaves nothing behind.
  const bool resuming = r.resume && have_ckpt;
  if (!resuming) check_init_weights(o, f.model, f.path);
  if (have_ckpt && !r.resume && !r.overwrite)
    throw ConfigError(o.out_dir + " already holds a checkpoint of a run: pass --resume to continue it, "
                      "--overwrite to start again, or choose another output folder");

  // Data parallel: meet the other processes before anything is written (a master that cannot be
  // reached leaves nothing behind). Rank 0 leads: the run folder's files, the bar, validation.
  std::unique_ptr<Distributed> dist;
  if (dopt.active()) dist = std::make_unique<Distributed>(dopt);
  const bool lead = !dist || dist->rank() == 0;
  const int world = dist ? dist->world_size() : 1;

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw IoError("cannot create output folder " + o.out_dir + ": " + ec.message());
  if (!lead) {
    // The other ranks' messages go to a log each; only rank 0 speaks on the terminal.
    const std::string rank_log = o.out_dir + "/rank" + std::to_string(dist->rank()) + ".log";
    std::fflush(stdout);
    std::fflush(stderr);
    if (!std::freopen(rank_log.c_str(), "w", stderr)) throw IoError("cannot write " + rank_log);
    ::dup2(::fileno(stderr), ::fileno(stdout));  // one file, one offset
  }
  const bool progress = o.progress && lead;
  BatchSync sync;
  if (dist) {
    sync.sum_in_place = [&dist](std::vector<torch::Tensor>& t) { dist->sum_in_place(t); };
    sync.global_batch_stats = o.batch_stats == "global";
  }
  BatchSyncScope sync_scope(dist ? &sync : nullptr);

  // Model, data, optimizer.
  TrainOptions build = o;
  if (resuming) build.init = "random";  // overwritten by the checkpoint; its DeiT file need not be there
  MultiTaskModel model = build_model(f, build);
  const std::string config_json = config_to_json(f.model);
  auto train_ds = open_dataset(f, "train");
  auto val_ds = open_dataset(f, "val");
  LoaderOptions train_lo = train_loader_options(f, o.batch_size, o.seed, o.augment, o.same_order_every_epoch, o.workers);
  train_lo.rank = dist ? dist->rank() : 0;
  train_lo.world_size = world;
  if (dist) {
    const int64_t n = static_cast<int64_t>(train_ds->size()), last = n % o.batch_size;
    if (o.batch_size < world || (last > 0 && last < world))
      throw ConfigError("train.batch_size " + std::to_string(o.batch_size) + " over " + std::to_string(n) +
                        " training images leaves a global batch of " +
                        std::to_string(o.batch_size < world ? o.batch_size : last) + " for " + std::to_string(world) +
                        " processes: every process needs at least one image per batch");
  }
  Loader loader(*train_ds, train_lo);
  Optimizer opt(name_parameters(*model, model->expert_parameters()), o.optimizer);
  std::vector<std::string> tasks;
  for (const auto& ts : f.model.tasks) tasks.push_back(ts.name);
  LossOptions lo;
  lo.weights = o.loss_weights;
  lo.edge_pos_weight = o.edge_pos_weight;

  // Run length in optimizer steps; an epoch is ceil(batches / grad_accum) steps, the last one
  // possibly with fewer micro-batches (accumulation never crosses an epoch boundary).
  const int64_t bpe = loader.batches_per_epoch();
  if (bpe <= 0) throw ConfigError("the training split is empty");
  const int64_t steps_per_epoch = (bpe + o.grad_accum - 1) / o.grad_accum;
  int64_t total_steps = o.max_steps > 0 ? o.max_steps : o.epochs * steps_per_epoch;
  int64_t epochs = o.max_steps > 0 ? (total_steps + steps_per_epoch - 1) / steps_per_epoch : o.epochs;

  TrainPosition pos;
  int64_t saved_step = -1;  // step of the checkpoint of this run on disk (-1: none yet)
  if (resuming) {
    LoadedCheckpoint lc = read_train_checkpoint_metadata(ckpt);
    if (lc.config_json != config_json)
      throw ConfigError(ckpt + " was made with a different model config than " + f.path);
    const std::string diff = trajectory_differences(lc.train_options_json, o.trajectory_json());
    if (!diff.empty()) {
      const std::string refused =
          r.allow_changes ? trajectory_differences(lc.train_options_json, o.trajectory_json(), /*changeable=*/false)
                          : diff;
      if (!refused.empty())
        throw ConfigError(ckpt + " was made with other training settings; resuming would not continue the same run" +
                          (r.allow_changes ? " (--allow-changes does not cover these)" : "") + ":\n" + refused);
      std::fprintf(stderr, "resuming with changed settings (--allow-changes):\n%s", diff.c_str());
    }
    lc = load_train_checkpoint(ckpt, *model, &opt);
    pos = lc.position;
    saved_step = pos.step;
    loader.seek({pos.epoch, pos.batch_in_epoch});
    if (lead) truncate_log(log_path, pos.step);
    std::fprintf(stderr, "resuming %s at step %lld (epoch %lld, batch %lld)\n", ckpt.c_str(), (long long)pos.step,
                 (long long)pos.epoch + 1, (long long)pos.batch_in_epoch);
  } else {
    if (r.resume) std::fprintf(stderr, "no checkpoint at %s: starting from scratch\n", ckpt.c_str());
    if (lead) {
      if (file_exists(log_path)) std::remove(log_path.c_str());
      for (const auto& p : {best_model_path(o.out_dir), final_model_path(o.out_dir)})
        if (file_exists(p)) std::remove(p.c_str());
    }
  }
  // A new run leaves no shards of an earlier one behind; a resumed run has just read its own (an
  // expert-parallel checkpoint's experts) and replaces them at its first checkpoint. Rank 0 removes
  // them before the broadcast below, the others write after it.
  const std::string shard_dir = o.out_dir + "/shards";
  if (lead && !resuming) fs::remove_all(shard_dir, ec);
  std::optional<JsonLog> log;
  if (lead) log.emplace(log_path);

  // Expert parallel (set up below): rank 0 holds every expert while it validates or exports (a
  // collective), then keeps its own again. Checkpoints gather nothing: every rank writes its experts
  // as a shard (train/expert_shards.h).
  std::optional<ExpertShards> shards;
  auto gather_experts = [&] {
    if (shards) shards->gather_to_lead(opt);
  };
  auto keep_own_experts = [&] {
    if (shards) shards->keep_own(opt);
  };
  auto save_checkpoint = [&] {
    if (shards) {
      const ExpertShardSet set = shards->shard_set();
      shards->write_checkpoint_shards(shard_dir, opt, pos.step, [&] {
        save_train_checkpoint(ckpt, *model, config_json, opt, pos, o.trajectory_json(), &set);
      });
    } else if (lead) {
      save_train_checkpoint(ckpt, *model, config_json, opt, pos, o.trajectory_json());
      fs::remove_all(shard_dir, ec);  // an expert-parallel checkpoint's shards, now replaced
    }
    saved_step = pos.step;
  };
  // What a bad-number error adds: the step was not saved, and where the run can continue from.
  auto resume_hint = [&] {
    if (saved_step >= 0)
      return "no checkpoint was written for this step; the last good one is " + ckpt + " (step " +
             std::to_string(saved_step) + "): fix the cause, then continue with --resume";
    return std::string("no checkpoint of this run was written yet: fix the cause and start again") +
           (file_exists(ckpt) ? " with --overwrite" : "");
  };
  const NamedTensors weights = model_state(*model);  // parameters and buffers, updated in place

  // Every process starts from rank 0's weights (they agree anyway: one seed, one checkpoint), as DDP
  // does, and averages its gradients with the others' during the backward pass.
  std::optional<GradientBuckets> buckets;
  if (dist) {
    std::vector<torch::Tensor> state;
    for (const auto& [name, t] : weights) state.push_back(t.detach());
    dist->broadcast_from_rank0(state);
    // Expert parallel: this rank keeps its E/N experts, whose gradients stay here; the buckets
    // average the rest.
    if (o.expert_parallel) {
      shards.emplace(*dist, *model);
      shards->keep_own(opt);
      sync.world = world;
      sync.all_to_all = [&dist](const torch::Tensor& in, const std::vector<int64_t>& send,
                                const std::vector<int64_t>& recv) { return dist->all_to_all(in, send, recv); };
    }
    std::vector<torch::Tensor> params;
    for (const auto& p : opt.parameters())
      if (!shards || !p.expert) params.push_back(p.param);
    buckets.emplace(*dist, params);
    std::fprintf(stderr, "rank %d of %d: %lld of every %d images, gradients in %zu buckets%s\n", dist->rank(), world,
                 (long long)(o.batch_size / world), o.batch_size, buckets->buckets(),
                 shards ? (", experts " + std::to_string(shards->first_expert()) + ".." +
                           std::to_string(shards->first_expert() + shards->experts_per_rank() - 1) + " of each MoE layer")
                              .c_str()
                        : "");
  }
  const std::function<void()> arm_buckets = [&] {
    if (buckets) buckets->arm();
  };

  EvalOptions eo;
  eo.batch_size = o.val_batch_size;
  eo.workers = o.workers;
  eo.references = o.delta_m_references;
  eo.progress = progress;
  auto validate = [&] {
    gather_experts();
    if (!lead) {
      keep_own_experts();
      return EvalResult{};
    }  // rank 0 validates; the others meet it at the next collective
    EvalResult ev = evaluate_model(*model, *val_ds, eo);
    model->train();
    model->take_aux_loss();  // nothing accumulates in eval mode; keep the training sum clean anyway
    nlohmann::json j = nlohmann::json::parse(eval_json(ev));
    j["type"] = "eval";
    j["step"] = pos.step;
    j["epoch"] = pos.epoch;
    log->write(j);
    write_file_atomic(o.out_dir + "/eval.json", eval_json(ev) + "\n");
    // Best by Δm (train_fastmoe.py:437-452); without references every validation replaces the last.
    const bool better = std::isnan(ev.delta_m) || ev.delta_m > pos.best_delta_m;
    if (better) {
      if (!std::isnan(ev.delta_m)) pos.best_delta_m = ev.delta_m;
      pos.best_step = pos.step;
      // The run's exports keep the training-only TAM: they are the trained model, which may be trained
      // further or re-exported for inference (`m3vit export --weights`).
      export_model(*model, best_model_path(o.out_dir), /*training_weights=*/true);
    }
    keep_own_experts();
    out.evaluated = true;
    out.last_eval = ev;
    return ev;
  };

  StopSignalScope stop_scope;
  model->train();
  const int64_t start_step = pos.step;
  ProgressBar bar("train", std::max<int64_t>(total_steps - start_step, 1), "step");
  const auto t0 = Clock::now();
  int64_t images_this_run = 0;
  bool evaluated_at_end = false;

  // Time budget (the demo): from step kCalibFirst of this run on, steps are timed; at steps 12, 25, 50,
  // 100, ... the run length is set to what fits the remaining budget at the mean speed so far (never
  // beyond the configured length), and the schedule follows the new length from there on.
  constexpr int64_t kCalibFirst = 2;
  const int64_t configured_steps = total_steps;
  Clock::time_point calib_t0 = t0;
  int64_t next_calib = 12;
  const bool budgeted = o.time_budget_s > 0;

  while (pos.step < total_steps) {
    const int64_t done_here = pos.step - start_step;
    if (budgeted && done_here == kCalibFirst) calib_t0 = Clock::now();
    if (budgeted && done_here == next_calib) {
      next_calib = next_calib == 12 ? 25 : 2 * next_calib;
      const double per_step = seconds_since(calib_t0) / static_cast<double>(done_here - kCalibFirst);
      const double left = o.time_budget_s - seconds_since(t0);
      const int64_t fit =
          std::min(configured_steps, pos.step + std::max<int64_t>(1, static_cast<int64_t>(left / per_step)));
      if (fit != total_steps) {
        total_steps = fit;
        epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;
        if (!progress || done_here == 12)
          std::fprintf(stderr, "%s%.2f s/step: %lld steps fit the %.0f s budget\n", progress ? "\n" : "", per_step,
                       (long long)total_steps, o.time_budget_s);
        bar.set_total(total_steps - start_step);
      }
    }
    const double lr = scheduled_lr(o.schedule, o.lr, pos.epoch, epochs, pos.step, total_steps);
    const int64_t step = pos.step + 1;  // the step being computed, as messages and the log count
    opt.zero_grad();
    const int64_t micro = std::min<int64_t>(o.grad_accum, bpe - pos.batch_in_epoch);
    StepLosses sl;
    int64_t step_images = 0;
    try {
      for (int64_t m = 0; m < micro; ++m) {
        Batch b = loader.next();
        if (b.epoch != pos.epoch || b.index != pos.batch_in_epoch + m)
          throw Error("data loader out of step: got batch " + std::to_string(b.index) + " of epoch " +
                      std::to_string(b.epoch) + ", expected " + std::to_string(pos.batch_in_epoch + m) + " of " +
                      std::to_string(pos.epoch));
        TensorBatch tb = tensor_view(b);
        const std::string where = "step " + std::to_string(step) +
                                  (micro > 1 ? " (micro-batch " + std::to_string(m + 1) + " of " + std::to_string(micro) + ")" : "");
        // This process's share of the global batch's mean loss: the gradients are averaged over the
        // processes, so a part of n_r of n images weighs n_r·world/n (1 in one process).
        const double share = static_cast<double>(b.size) * world / b.global_size;
        sync.share = static_cast<double>(b.size) / b.global_size;
        // Test faults (TrainRunOptions::faults) fire in the first micro-batch of their step.
        train_micro_batch(*model, b, tb, o, lo, tasks, opt.parameters(), share / static_cast<double>(micro), sl, where,
                          step, m == 0 ? &r.faults : nullptr, m + 1 == micro ? arm_buckets : std::function<void()>());
        step_images += b.global_size;
      }
      if (shards) shards->average_expert_gradients();  // experts: Σ over every process's tokens / N
      if (buckets) {
        buckets->finish();  // every process now holds the same averaged dense gradients
        // The logged losses are the global batch's: the processes' shares summed.
        std::vector<double> v{sl.total, sl.aux};
        for (const auto& [k, x] : sl.parts) v.push_back(x);
        std::vector<torch::Tensor> t{torch::tensor(v, torch::kDouble)};
        dist->sum_in_place(t);
        const double* g = t[0].data_ptr<double>();
        sl.total = g[0] / world;
        sl.aux = g[1] / world;
        size_t i = 2;
        for (auto& [k, x] : sl.parts) x = g[i++] / world;
      }
      opt.step(lr);
      check_after_update(weights, opt, "step " + std::to_string(step), tasks, lr);
    } catch (const NumericError& e) {
      // The model in memory is spoilt; the checkpoint on disk is not: nothing below saves it.
      if (progress) bar.finish("stopped at step " + std::to_string(step) + ": NaN or Inf");
      throw NumericError(std::string(e.what()) + "; " + resume_hint());
    }
    ++pos.step;
    pos.images += step_images;
    images_this_run += step_images;
    pos.batch_in_epoch += micro;
    bool epoch_end = false;
    if (pos.batch_in_epoch >= bpe) {
      ++pos.epoch;
      pos.batch_in_epoch = 0;
      epoch_end = true;
    }
    const double elapsed = seconds_since(t0);
    const double ips = elapsed > 0 ? images_this_run / elapsed : 0;
    if (pos.step % o.log_every == 0 || pos.step == total_steps) {
      nlohmann::json j = {{"type", "train"}, {"step", pos.step},   {"epoch", pos.epoch},
                          {"lr", lr},        {"loss", sl.total},   {"aux", sl.aux},
                          {"losses", sl.parts}, {"images", pos.images}, {"img_per_s", ips},
                          {"time_s", elapsed}};
      if (dist) {
        // What the processes exchanged so far: payload bytes handed to collectives by this process
        // and the seconds it waited in them (the communication share of the step).
        j["processes"] = world;
        j["comm_bytes"] = dist->bytes_sent();
        j["comm_wait_s"] = dist->seconds_waiting();
        if (shards) j["a2a_bytes"] = dist->bytes_exchanged();  // token rows sent to other ranks' experts
      }
      if (log) log->write(j);
    }
    if (progress)
      bar.update(pos.step - start_step, "loss " + fmt("%.4f", sl.total) + " lr " + fmt("%.2e", lr) + " " +
                                            fmt("%.1f", ips) + " img/s");

    const bool last = pos.step == total_steps;
    if (epoch_end && !last && val_ds->size() > 0 && validation_due(pos.epoch, epochs, o.eval_every, o.eval_last_epochs))
      validate();
    if (last && val_ds->size() > 0) {
      validate();
      evaluated_at_end = true;
    }
    const bool periodic = o.checkpoint_every > 0 && pos.step % o.checkpoint_every == 0;
    int sig = stop_requested();
    if (!sig && r.faults.signal_at_step == pos.step) sig = SIGTERM;  // test fault
    if (dist) {
      // Stop together: a signal to any process stops every one after this step.
      std::vector<torch::Tensor> any{torch::tensor({sig ? 1.0 : 0.0}, torch::kDouble)};
      dist->sum_in_place(any);
      if (!sig && any[0].item<double>() > 0) sig = SIGTERM;
    }
    if (periodic || epoch_end || last || sig) save_checkpoint();
    if (sig) {
      if (progress) bar.finish("stopped by signal " + std::to_string(sig) + " at step " + std::to_string(pos.step));
      std::fprintf(stderr, "stopped by signal %d; checkpoint %s (step %lld). Continue with --resume.\n", sig,
                   ckpt.c_str(), (long long)pos.step);
      out.signal = sig;
      break;
    }
  }
  out.train_seconds = seconds_since(t0);
  out.images_per_second = out.train_seconds > 0 ? images_this_run / out.train_seconds : 0;
  if (!out.signal) {
    if (progress) bar.finish("done, " + fmt("%.1f", out.images_per_second) + " img/s");
    if (!evaluated_at_end && val_ds->size() > 0 && start_step == total_steps) {
      // Resumed a finished run: nothing to train, evaluate once more.
      validate();
    }
    gather_experts();
    if (lead) export_model(*model, final_model_path(o.out_dir), /*training_weights=*/true);
    keep_own_experts();
  }
  out.position = pos;
  return out;
}

}  // namespace m3vit
