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
#include "common/fileutil.h"
#include "train/launch.h"
#include "train/trainer.h"

namespace m3vit::cli {

namespace {

struct TrainArgs {
  ConfigArgs config;
  bool resume = false, allow_changes = false, overwrite = false, dense = false, no_progress = false;
  bool from_scratch = false, expert_parallel = false;
  std::string out_dir;
  int threads = 0;
  int64_t steps = 0, epochs = 0, checkpoint_every = -1;
  int64_t seed = -1;
  int eval_every = -1, eval_last_epochs = -1;
  // Several processes (train/distributed.h, train/launch.h).
  int nproc = 1, rank = -1, world_size = -1;
  std::string master, batch_stats;
  double dist_timeout = -1;
  double lr = -1;
};

// "host:port" -> the two parts, or ConfigError naming the option.
void parse_master(const std::string& s, DistributedOptions& d) {
  const auto colon = s.rfind(':');
  const std::string host = colon == std::string::npos ? "" : s.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : s.substr(colon + 1);
  const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  const int p = digits ? std::stoi(port) : 0;
  if (host.empty() || p < 1 || p > 65535) throw ConfigError("--master " + s + ": expected HOST:PORT with a port in 1..65535");
  d.master_addr = host;
  d.master_port = p;
}

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
  sub->add_option("--lr", a->lr, "base learning rate (overrides train.lr)")->check(CLI::PositiveNumber);
  sub->add_option("--seed", a->seed, "seed of the initialisation and the data order")->check(CLI::NonNegativeNumber);
  sub->add_flag("--dense", a->dense, "train the dense M-ViT baseline: every MoE layer replaced by the dense MLP");
  sub->add_flag("--from-scratch", a->from_scratch,
                "random initialisation even where the config loads DeiT weights (train.init: deit)");
  sub->add_flag("--no-progress", a->no_progress, "no progress bar");
  sub->add_option("--nproc", a->nproc, "data-parallel training in N processes on this host (as torchrun --nproc_per_node)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--rank", a->rank, "this process's rank in a multi-host run (default: $RANK)")->check(CLI::NonNegativeNumber);
  sub->add_option("--world-size", a->world_size, "processes in a multi-host run (default: $WORLD_SIZE)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--master", a->master, "HOST:PORT of rank 0's rendezvous (default: $MASTER_ADDR:$MASTER_PORT)");
  sub->add_option("--dist-timeout", a->dist_timeout,
                  "seconds to wait for the master and for any collective before giving up (default 1800)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--batch-stats", a->batch_stats,
                  "with several processes: the routers' balance loss and the losses' normalisers from each "
                  "process's batch (process, the authors) or the global batch (global: the one-process run)")
      ->check(CLI::IsMember({"process", "global"}));
  sub->add_flag("--expert-parallel", a->expert_parallel,
                "with several processes: each holds E/N of every MoE layer's experts and tokens travel to them "
                "(FastMoE's expert parallelism; train.expert_parallel)");
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
    if (a->lr > 0) o.lr = a->lr;
    if (a->seed >= 0) o.seed = static_cast<uint64_t>(a->seed);
    if (a->no_progress) o.progress = false;
    if (a->resume && a->overwrite) throw ConfigError("--resume and --overwrite exclude each other");
    if (a->allow_changes && !a->resume) throw ConfigError("--allow-changes only goes with --resume");

    if (!a->batch_stats.empty()) o.batch_stats = a->batch_stats;
    if (a->expert_parallel) o.expert_parallel = true;

    // Who this process is: torchrun's environment, then the flags.
    DistributedOptions d = distributed_options_from_env();
    if (a->world_size > 0) d.world_size = a->world_size;
    if (a->rank >= 0) d.rank = a->rank;
    if (!a->master.empty()) parse_master(a->master, d);
    if (a->dist_timeout > 0) d.timeout_s = a->dist_timeout;
    if (d.rank >= d.world_size)
      throw ConfigError("rank " + std::to_string(d.rank) + " is outside a world of " + std::to_string(d.world_size) +
                        " processes (--rank, --world-size or RANK, WORLD_SIZE)");
    check_expert_parallel(o, f.model, a->nproc > 1 ? a->nproc : d.world_size);
    if (a->nproc > 1) {
      if (d.active())
        throw ConfigError("--nproc starts the processes of a run itself: not with --rank/--world-size or a "
                          "WORLD_SIZE above 1 in the environment");
      // A missing DeiT file is said once, here, rather than by every process.
      if (!(a->resume && file_exists(checkpoint_path(o.out_dir)))) check_init_weights(o, f.model, f.path);
      set_exit_code(launch_local_processes(a->nproc));
      return;
    }

    TrainRunOptions r;
    r.distributed = d;
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
