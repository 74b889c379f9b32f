// Everything `m3vit train` needs beyond the model: the config file's `train:` section (TrainSection,
// also filled from the authors' format) plus the training-only keys that section may also carry
// (TrainOptions), both read here and nowhere else (docs/TRAINING.md lists them all):
//   schedule_per: epoch|step    poly/cosine progress per epoch (the authors) or per optimizer step
//   warmup_steps: N             linear warm-up steps (0, the authors have none)
//   nesterov: bool              SGD (false)
//   betas: [b1, b2], eps: x     Adam/AdamW (0.9, 0.999, 1e-8)
//   grad_accum: N               micro-batches per optimizer step (1)
//   task_loop: auto|all|one_by_one   all tasks per forward (multi-gate) or one task per backward
//                               (the authors' one_by_one, forced by the task-conditioned gate); auto
//                               picks one_by_one for gate task_cond, else all
//   expert_lr_scale: x          experts' learning rate multiplier (1)
//   checkpoint_every: N         optimizer steps between checkpoints (0: at every epoch end only)
//   log_every: N                steps between JSON-lines records (1)
//   threads: N                  torch intra-op threads (0: all cores)
//   init: random|deit           initialisation; deit needs `pretrained: <file>` (timm/DeiT weights),
//                               which must exist before a run starts (check_init_weights)
//   split_experts: bool         deit only: initialise experts from the dense MLP (false, the authors)
//   same_order_every_epoch: bool  the authors' sampler quirk Q14 (false)
//   delta_m_references: {task: value}  single-task references of Δm (default: the authors' numbers)
//   batch_stats: process|global   with several processes: the routers' balance loss and the masked
//                               losses' normalisers from each process's batch (the authors' DDP
//                               runs) or from the global batch (= the one-process run)
//   expert_parallel: bool       with several processes: each holds E/N of every MoE layer's experts
//                               and tokens travel to them by all-to-all (FastMoE's scheme; false)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/config_yaml.h"
#include "data/data_config.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace m3vit {

// `train:` keys that ours and the authors' format share (docs/TRAINING.md; the authors' values
// are the defaults).
struct TrainSection {
  int batch_size = 8;                 // images per step (authors: trBatch 8 per GPU, 2 GPUs)
  int val_batch_size = 8;             // images per evaluation batch (valBatch)
  int epochs = 100;                   // passes over the training split
  int64_t steps = 0;                  // > 0: stop after this many optimizer steps instead
  std::string optimizer = "sgd";      // sgd | adam | adamw
  double lr = 0.002;                  // base learning rate
  double momentum = 0.9;              // SGD momentum
  double weight_decay = 1e-4;         // applied to every parameter, as the authors do
  std::string scheduler = "poly";     // poly | constant | cosine
  double poly_power = 0.9;            // lr_e = lr * (1 - e/epochs)^power, set per epoch
  // task -> w_t. A task the config does not list takes the authors' weight of the data set
  // (default_loss_weights: PASCAL 1/2/5/50/10, NYUD 1/1); data sets without authors' weights
  // (synthetic, cityscapes) give an unlisted task 1.
  std::map<std::string, double> loss_weights;
  double edge_pos_weight = 0.95;      // balanced BCE weight of edge pixels (edge_w)
  double expert_grad_scale = 1.0;     // 2 reproduces the authors' 2-GPU expert gradients (quirk Q13)
  uint64_t seed = 0;                  // model init and data order
  int eval_every = 1;                 // epochs between validations (0 = only at the end)
  int eval_last_epochs = 0;           // > 0: validate after each of the last N epochs too (the
                                      // authors' eval_final_10_epochs_only is N = 10, eval_every 0)
  std::string out_dir = "out/train";  // checkpoints, logs, reports

  double loss_weight(const std::string& task) const;
};

// Our `train:` section or the authors' keys (trBatch, valBatch, epochs, optimizer_kwargs,
// loss_kwargs, task_dictionary.edge_w). ConfigError naming the file, the key and its line.
TrainSection read_train_section(const ConfigFile& f);

// A config file read whole, as training and evaluation need it: the model (ConfigFile), `data:`
// (data/data_config.h) and `train:`.
struct TrainConfig : ConfigFile {
  DataSection data;
  TrainSection train;
};
TrainConfig load_train_config(const std::string& path, const ConfigOverrides& overrides = {});
TrainConfig train_config_from(ConfigFile f);  // reads the two sections of an already loaded file

struct TrainOptions {
  // --- what the run computes (stored in checkpoints; a resume must agree) ---
  int batch_size = 8;
  int grad_accum = 1;
  int64_t epochs = 100;
  int64_t max_steps = 0;           // > 0: the run is this many optimizer steps long
  double lr = 0.002;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  std::map<std::string, double> loss_weights;  // task -> w_t (missing: 1)
  double edge_pos_weight = 0.95;
  std::string task_loop = "all";   // all | one_by_one (resolved from auto)
  uint64_t seed = 0;
  bool same_order_every_epoch = false;
  bool augment = true;
  std::string init = "random";     // random | deit
  std::string pretrained;          // DeiT weights for init: deit
  bool split_experts = false;

  // --- how it is run (free to change between a run and its resume) ---
  int val_batch_size = 8;
  int eval_every = 1;              // epochs between validations (0: at the end only)
  int eval_last_epochs = 0;        // > 0: also after each of the last N epochs (validation_due)
  int64_t checkpoint_every = 0;    // steps (0: at epoch ends)
  int log_every = 1;
  int threads = 0;                 // 0: all cores
  int workers = 2;
  std::string out_dir = "out/train";
  std::map<std::string, double> delta_m_references;  // empty: the data set's defaults
  bool progress = true;            // draw the progress bar
  double time_budget_s = 0;        // > 0: after a few timed steps, shorten the run to end training
                                   // within this many seconds (the demo); not resumable exactly
  // Data parallel only (train/distributed.h): "process" (the authors) or "global" (= one process).
  std::string batch_stats = "process";
  // Several processes only (train/expert_shards.h): shard every MoE layer's experts over them.
  bool expert_parallel = false;

  // The part that decides the trajectory, as JSON (compared on resume).
  std::string trajectory_json() const;
};

// Reads f.train and the extra keys of f.doc["train"]; validates. Throws ConfigError naming the key.
TrainOptions train_options_from(const TrainConfig& f);

// Whether a run of `epochs` epochs validates after its epoch number `epochs_done` (1-based, counted
// at the epoch's end): every `eval_every` epochs, and each of the last `eval_last_epochs` epochs.
// The run's last step always validates besides (run_training).
bool validation_due(int64_t epochs_done, int64_t epochs, int eval_every, int eval_last_epochs);

// init: deit needs its weights file. Throws IoError (one line) when `o.pretrained` does not exist:
// which file (the DeiT that fits model.embed_dim, with its URL, for the user to fetch), where it goes
// (the configured path) and that `m3vit train --from-scratch` starts from random weights instead.
// Nothing for init: random. `config_path` names the file whose train.pretrained it is.
void check_init_weights(const TrainOptions& o, const ModelConfig& m, const std::string& config_path);

// The DeiT ImageNet checkpoint timm loads for a ViT of this width (patch 16, 224 px):
// {timm model name, file name, URL}; empty strings for a width DeiT does not have.
struct DeitWeights {
  std::string model, file, url;
};
DeitWeights deit_weights_for(int embed_dim);

// train.expert_parallel over `processes` processes: every MoE layer's E experts must split evenly
// (E/N per process). Throws ConfigError naming both numbers; nothing for a data-parallel run.
void check_expert_parallel(const TrainOptions& o, const ModelConfig& m, int processes);

// Differences between two trajectory_json() strings, "key: a -> b" per line (empty when equal).
// With `changeable` false, only those a resume with --allow-changes still refuses: all but lr,
// schedule, epochs, max_steps, loss_weights, edge_pos_weight and the optimizer's hyper-parameters
// (its type stays), which the checkpoint's state does not depend on.
std::string trajectory_differences(const std::string& saved, const std::string& now, bool changeable = true);

}  // namespace m3vit
