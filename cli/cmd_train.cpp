// `m3vit train --config C [--resume]`: train a model (train/trainer.h; the authors' train_fastmoe.py).
// The config's `train:` section sets the recipe (docs/TRAINING.md); the options below override the
// parts that are about running it. Ctrl-C / SIGTERM write a checkpoint at the next step and exit with
// 130 / 143; `--resume` continues from it exactly. A NaN or Inf stops the run with exit code 2 and one
// line naming the step, the task and the checkpoint to resume from (docs/TRAINING.md, "Bad numbers").
// The paper configs start from DeiT weights (`init: deit`); without that file the run stops before
// anything is made, naming it, and `--from-scratch` trains from random initialisation instead.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/config_options.h"
#include "common/errors.h"
#include "train/trainer.h"

namespace m3vit::cli {

namespace {

struct TrainArgs {
  ConfigArgs config;
  bool resume = false, allow_changes = false, overwrite = false, dense = false, no_progress = false;
  bool from_scratch = false;
  std::string out_dir;
  int threads = 0;
  int64_t steps = 0, epochs = 0, checkpoint_every = -1;
  int64_t seed = -1;
  int eval_every = -1, eval_last_epochs = -1;
};

}  // namespace

void register_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train a model (SGD/AdamW, poly schedule, checkpoints, --resume)");
  auto a = std::make_shared<TrainArgs>();
  add_config_options(sub, a->config);
  sub->add_flag("--resume", a->resume, "continue the run in the output folder from its last checkpoint");
  sub->add_flag("--allow-changes", a->allow_changes,
                "with --resume: accept a changed lr, schedule, run length, loss weights or optimizer settings "
                "(e.g. a lower lr after a NaN); the run is then no longer the one the checkpoint began");
  sub->add_flag("--overwrite", a->overwrite, "start again even if the output folder holds a checkpoint");
  sub->add_option("--out", a->out_dir, "output folder (default: train.out_dir of the config)");
  sub->add_option("--threads", a->threads, "torch threads (default: train.threads, else all cores)")->check(CLI::NonNegativeNumber);
  sub->add_option("--steps", a->steps, "run length in optimizer steps (overrides train.epochs/steps)")->check(CLI::PositiveNumber);
  sub->add_option("--epochs", a->epochs, "run length in epochs")->check(CLI::PositiveNumber);
  sub->add_option("--checkpoint-every", a->checkpoint_every, "steps between checkpoints (0: at epoch ends)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--eval-every", a->eval_every, "epochs between validations (0: at the end only)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--eval-last-epochs", a->eval_last_epochs,
                  "also validate after each of the last N epochs (0: off; the paper configs: 10)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", a->seed, "seed of the initialisation and the data order")->check(CLI::NonNegativeNumber);
  sub->add_flag("--dense", a->dense, "train the dense M-ViT baseline: every MoE layer replaced by the dense MLP");
  sub->add_flag("--from-scratch", a->from_scratch,
                "random initialisation even where the config loads DeiT weights (train.init: deit)");
  sub->add_flag("--no-progress", a->no_progress, "no progress bar");
  sub->callback([a] {
    TrainConfig f = load_config_args(a->config);
    if (a->dense) f.model = dense_baseline(f.model);
    TrainOptions o = train_options_from(f);
    if (!a->out_dir.empty()) o.out_dir = a->out_dir;
    if (a->threads > 0) o.threads = a->threads;
    if (a->steps > 0) o.max_steps = a->steps;
    if (a->epochs > 0) o.epochs = a->epochs, o.max_steps = 0;
    if (a->checkpoint_every >= 0) o.checkpoint_every = a->checkpoint_every;
    if (a->eval_every >= 0) o.eval_every = a->eval_every;
    if (a->eval_last_epochs >= 0) o.eval_last_epochs = a->eval_last_epochs;
    if (a->from_scratch) {
      if (o.init == "deit")
        std::fprintf(stderr, "init: --from-scratch: random initialisation instead of the config's DeiT weights (%s)\n",
                     o.pretrained.c_str());
      else
        std::fprintf(stderr, "init: --from-scratch: random initialisation (the config's init is %s already)\n",
                     o.init.c_str());
      o.init = "random";
      o.pretrained.clear();
    }
    if (a->seed >= 0) o.seed = static_cast<uint64_t>(a->seed);
    if (a->no_progress) o.progress = false;
    if (a->resume && a->overwrite) throw ConfigError("--resume and --overwrite exclude each other");
    if (a->allow_changes && !a->resume) throw ConfigError("--allow-changes only goes with --resume");

    TrainRunOptions r;
    r.resume = a->resume;
    r.overwrite = a->overwrite;
    r.allow_changes = a->allow_changes;
    TrainOutcome res = run_training(f, o, r);
    if (res.signal) {
      set_exit_code(128 + res.signal);  // 130 for SIGINT, 143 for SIGTERM, as a shell reports them
      return;
    }
    if (res.evaluated) std::printf("%s", eval_table(res.last_eval).c_str());
    std::printf("trained %lld steps (%lld images, %.1f img/s)\n", (long long)res.position.step,
                (long long)res.position.images, res.images_per_second);
    std::printf("checkpoint: %s\nmodel:      %s\n", checkpoint_path(o.out_dir).c_str(), final_model_path(o.out_dir).c_str());
    if (res.position.best_step >= 0)
      std::printf("best:       %s (step %lld)\n", best_model_path(o.out_dir).c_str(), (long long)res.position.best_step);
    std::printf("log:        %s\n", train_log_path(o.out_dir).c_str());
  });
}

}  // namespace m3vit::cli
