// The training loop of M³ViT (docs/TRAINING.md; authors' train_fastmoe.py:395-471 and
// train/train_utils.py:197-278): per optimizer step, forward every task (multi-gate: one backbone pass
// per task with its routers) or one task at a time (task-conditioned, the authors' one_by_one),
// weighted task losses + TAM deep supervision + aux_weight · Σ router cv² losses, backward, one
// optimizer step with the scheduled learning rate. Validation every `eval_every` epochs and at the
// end; the best model by Δm is kept.
//
// Files in out_dir:
//   checkpoint.safetensors   the last training checkpoint (train/train_checkpoint.h), written every
//                            `checkpoint_every` steps, at epoch ends, at the end and on SIGINT/SIGTERM
//   best_model.safetensors   model export (model/checkpoint.h) of the best validation Δm
//   model.safetensors        model export at the end of the run
//   train_log.jsonl          one JSON object per line: {"type":"train", step, epoch, lr, loss, aux,
//                            losses{...}, img_per_s, ...} and {"type":"eval", step, metrics, delta_m}
//   eval.json                the last validation
//   shards/                  expert parallel: each rank's experts and their optimizer state, which
//                            the checkpoint leaves out (train/expert_shards.h)
// Exact resume: the data order and augmentation are functions of (seed, epoch, index), the checkpoint
// holds weights, optimizer state, torch's RNG and the position, so a run killed at any point and
// resumed from its last checkpoint ends with the same weights, bit for bit, as one never stopped
// (with the same thread count).
// Several processes (data parallel, docs/TRAINING.md): each takes its part of every global batch and
// the gradients are averaged (train/distributed.h), so the run follows the one-process run of the
// same global batch; the checkpoint is the same file, resumable with any number of processes.
#pragma once

#include "common/pch/torch_pch.h"

#include <limits>
#include <string>

#include "train/distributed.h"
#include "train/evaluate.h"
#include "train/train_checkpoint.h"
#include "train/train_options.h"

namespace m3vit {

// Faults injected into a run, for the tests of the bad-number guards (tests/train/test_bad_numbers.cpp)
// and nothing else: the command line cannot set them. Steps count from 1, as the error messages and
// the log do; 0 leaves a fault off. Each fires in the first micro-batch of its step.
struct TrainFaults {
  int64_t nan_image_at_step = 0;    // one value of the step's input images becomes NaN (bad data)
  int64_t nan_weight_at_step = 0;   // one value of parameter `weight` becomes NaN before the forward
  std::string weight;
  int64_t bad_grad_at_step = 0;     // one value of parameter `grad`'s gradient becomes `grad_value`
  std::string grad;                 // after the first backward of the step (the loss stays finite);
  double grad_value = std::numeric_limits<double>::quiet_NaN();  // a huge finite value overflows Adam's state
  int64_t empty_label_at_step = 0;  // every label pixel of task `empty_label_task` becomes 255
  std::string empty_label_task;     // (ignore): that task's loss is 0/0 = NaN
  int64_t signal_at_step = 0;       // behaves as if SIGTERM arrived during that step
};

struct TrainRunOptions {
  bool resume = false;     // continue from out_dir/checkpoint.safetensors (start fresh if there is none)
  bool overwrite = false;  // start fresh even if out_dir holds a checkpoint
  // With `resume`: accept a checkpoint made with another learning rate, schedule, run length, loss
  // weights or optimizer hyper-parameters (not another optimizer type, batch, data order or task loop),
  // e.g. a lower lr after the loss went NaN. The run is then no longer the one the checkpoint began.
  bool allow_changes = false;
  TrainFaults faults;      // tests only
  // Data parallel when world_size > 1 (train/distributed.h): rank 0 writes the run folder, draws the
  // progress bar and validates; the other ranks write their stderr to out_dir/rank<R>.log.
  DistributedOptions distributed;
};

struct TrainOutcome {
  TrainPosition position;
  int signal = 0;          // SIGINT/SIGTERM that stopped the run (0: it ran to the end)
  bool evaluated = false;  // `last_eval` holds a validation
  EvalResult last_eval;
  double train_seconds = 0;
  double images_per_second = 0;
};

// File names inside out_dir.
std::string checkpoint_path(const std::string& out_dir);
std::string best_model_path(const std::string& out_dir);
std::string final_model_path(const std::string& out_dir);
std::string train_log_path(const std::string& out_dir);

// Runs (or resumes) a training run. Throws ConfigError on inconsistent options or a checkpoint made
// with other settings. Throws NumericError, and writes no checkpoint for that step, when a step meets a
// NaN or Inf (docs/TRAINING.md, "Bad numbers"): in the input images, a task's prediction, a loss, a
// gradient (checked before the optimizer step) or, after the update, a weight or an optimizer state.
// The message names the step, the task(s) or the tensor, and the checkpoint to resume from.
TrainOutcome run_training(const TrainConfig& f, const TrainOptions& o, const TrainRunOptions& r);

// Builds the model of `f` with torch::manual_seed(seed) and the configured initialisation.
MultiTaskModel build_model(const TrainConfig& f, const TrainOptions& o);

}  // namespace m3vit
