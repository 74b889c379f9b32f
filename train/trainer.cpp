// The training loop (see trainer.h; authors' train_fastmoe.py:395-471, train/train_utils.py:197-278).
#include "common/pch/torch_pch.h"

#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/platform.h"
#include "common/progress.h"
#include "model/checkpoint.h"
#include "train/data_setup.h"
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

// One micro-batch: forward, losses, backward with weight `scale` (1 / micro-batches of the step).
void train_micro_batch(MultiTaskModelImpl& model, const TensorBatch& tb, const TrainOptions& o,
                       const LossOptions& lo, const std::vector<std::string>& tasks, double scale,
                       StepLosses& acc, int64_t step) {
  const ModelConfig& cfg = model.config();
  auto check_finite = [&](const torch::Tensor& loss, const std::map<std::string, double>& parts) {
    if (std::isfinite(loss.item<double>())) return;
    std::string what;
    for (const auto& [k, v] : parts) what += " " + k + "=" + fmt("%g", v);
    throw NumericError("step " + std::to_string(step + 1) + ": training loss is not finite (losses:" + what + ")");
  };
  // Loss of one forward pass + the aux loss of that pass, backward (gradients accumulate), tallied.
  auto backward = [&](const std::map<std::string, torch::Tensor>& preds, const std::vector<std::string>& names,
                      bool tam) {
    LossBreakdown lb = multi_task_loss(preds, tb.labels, names, lo, tam);
    auto aux = model.take_aux_loss() * cfg.aux_weight;
    auto total = lb.total + aux;
    auto parts = lb.parts;
    parts["aux"] = aux.item<double>();
    check_finite(total, parts);
    (total * scale).backward();
    acc.total += scale * total.item<double>();
    acc.aux += scale * parts["aux"];
    for (const auto& [k, v] : lb.parts) acc.parts[k] += scale * v;
  };
  if (o.task_loop == "all") {
    // Multi-gate / shared: every task each step (train_utils.py:236-262).
    backward(model.forward_all(tb.images), tasks, cfg.tam);
  } else {
    // one_by_one (train_utils.py:211-234): per task, its weighted loss + the aux loss of that pass,
    // backward per task, one optimizer step after all tasks.
    for (const std::string& task : tasks)
      backward({{task, model.forward_task(tb.images, cfg.task_index(task))}}, {task}, /*tam=*/false);
  }
}

}  // namespace

TrainOutcome run_training(const TrainConfig& f, const TrainOptions& o, const TrainRunOptions& r) {
  namespace fs = std::filesystem;
  TrainOutcome out;
  const int threads = o.threads > 0 ? o.threads : default_threads();
  at::set_num_threads(threads);

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw IoError("cannot create output folder " + o.out_dir + ": " + ec.message());
  const std::string ckpt = checkpoint_path(o.out_dir), log_path = train_log_path(o.out_dir);
  const bool have_ckpt = file_exists(ckpt);
  if (have_ckpt && !r.resume && !r.overwrite)
    throw ConfigError(o.out_dir + " already holds a checkpoint of a run: pass --resume to continue it, "
                      "--overwrite to start again, or choose another output folder");

  // Model, data, optimizer.
  MultiTaskModel model = build_model(f, o);
  const std::string config_json = config_to_json(f.model);
  auto train_ds = open_dataset(f, "train");
  auto val_ds = open_dataset(f, "val");
  Loader loader(*train_ds, train_loader_options(f, o.batch_size, o.seed, o.augment, o.same_order_every_epoch, o.workers));
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
  if (r.resume && have_ckpt) {
    LoadedCheckpoint lc = read_train_checkpoint_metadata(ckpt);
    if (lc.config_json != config_json)
      throw ConfigError(ckpt + " was made with a different model config than " + f.path);
    const std::string diff = trajectory_differences(lc.train_options_json, o.trajectory_json());
    if (!diff.empty())
      throw ConfigError(ckpt + " was made with other training settings; resuming would not continue the same run:\n" + diff);
    lc = load_train_checkpoint(ckpt, *model, &opt);
    pos = lc.position;
    loader.seek({pos.epoch, pos.batch_in_epoch});
    truncate_log(log_path, pos.step);
    std::fprintf(stderr, "resuming %s at step %lld (epoch %lld, batch %lld)\n", ckpt.c_str(), (long long)pos.step,
                 (long long)pos.epoch + 1, (long long)pos.batch_in_epoch);
  } else {
    if (r.resume) std::fprintf(stderr, "no checkpoint at %s: starting from scratch\n", ckpt.c_str());
    if (file_exists(log_path)) std::remove(log_path.c_str());
    for (const auto& p : {best_model_path(o.out_dir), final_model_path(o.out_dir)})
      if (file_exists(p)) std::remove(p.c_str());
  }
  JsonLog log(log_path);

  auto save_checkpoint = [&] { save_train_checkpoint(ckpt, *model, config_json, opt, pos, o.trajectory_json()); };

  EvalOptions eo;
  eo.batch_size = o.val_batch_size;
  eo.workers = o.workers;
  eo.references = o.delta_m_references;
  eo.progress = o.progress;
  auto validate = [&] {
    EvalResult ev = evaluate_model(*model, *val_ds, eo);
    model->train();
    model->take_aux_loss();  // nothing accumulates in eval mode; keep the training sum clean anyway
    nlohmann::json j = nlohmann::json::parse(eval_json(ev));
    j["type"] = "eval";
    j["step"] = pos.step;
    j["epoch"] = pos.epoch;
    log.write(j);
    write_file_atomic(o.out_dir + "/eval.json", eval_json(ev) + "\n");
    // Best by Δm (train_fastmoe.py:437-452); without references every validation replaces the last.
    const bool better = std::isnan(ev.delta_m) || ev.delta_m > pos.best_delta_m;
    if (better) {
      if (!std::isnan(ev.delta_m)) pos.best_delta_m = ev.delta_m;
      pos.best_step = pos.step;
      export_model(*model, best_model_path(o.out_dir));
    }
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
        if (!o.progress || done_here == 12)
          std::fprintf(stderr, "%s%.2f s/step: %lld steps fit the %.0f s budget\n", o.progress ? "\n" : "", per_step,
                       (long long)total_steps, o.time_budget_s);
        bar.set_total(total_steps - start_step);
      }
    }
    const double lr = scheduled_lr(o.schedule, o.lr, pos.epoch, epochs, pos.step, total_steps);
    opt.zero_grad();
    const int64_t micro = std::min<int64_t>(o.grad_accum, bpe - pos.batch_in_epoch);
    StepLosses sl;
    int64_t step_images = 0;
    for (int64_t m = 0; m < micro; ++m) {
      Batch b = loader.next();
      if (b.epoch != pos.epoch || b.index != pos.batch_in_epoch + m)
        throw Error("data loader out of step: got batch " + std::to_string(b.index) + " of epoch " +
                    std::to_string(b.epoch) + ", expected " + std::to_string(pos.batch_in_epoch + m) + " of " +
                    std::to_string(pos.epoch));
      TensorBatch tb = tensor_view(b);
      train_micro_batch(*model, tb, o, lo, tasks, 1.0 / static_cast<double>(micro), sl, pos.step);
      step_images += b.size;
    }
    opt.step(lr);
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
      log.write(j);
    }
    if (o.progress)
      bar.update(pos.step - start_step, "loss " + fmt("%.4f", sl.total) + " lr " + fmt("%.2e", lr) + " " +
                                            fmt("%.1f", ips) + " img/s");

    const bool last = pos.step == total_steps;
    if (epoch_end && o.eval_every > 0 && pos.epoch % o.eval_every == 0 && !last && val_ds->size() > 0) validate();
    if (last && val_ds->size() > 0) {
      validate();
      evaluated_at_end = true;
    }
    const bool periodic = o.checkpoint_every > 0 && pos.step % o.checkpoint_every == 0;
    const int sig = stop_requested();
    if (periodic || epoch_end || last || sig) save_checkpoint();
    if (sig) {
      if (o.progress) bar.finish("stopped by signal " + std::to_string(sig) + " at step " + std::to_string(pos.step));
      std::fprintf(stderr, "stopped by signal %d; checkpoint %s (step %lld). Continue with --resume.\n", sig,
                   ckpt.c_str(), (long long)pos.step);
      out.signal = sig;
      break;
    }
  }
  out.train_seconds = seconds_since(t0);
  out.images_per_second = out.train_seconds > 0 ? images_this_run / out.train_seconds : 0;
  if (!out.signal) {
    if (o.progress) bar.finish("done, " + fmt("%.1f", out.images_per_second) + " img/s");
    if (!evaluated_at_end && val_ds->size() > 0 && start_step == total_steps) {
      // Resumed a finished run: nothing to train, evaluate once more.
      validate();
    }
    export_model(*model, final_model_path(o.out_dir));
  }
  out.position = pos;
  return out;
}

}  // namespace m3vit
