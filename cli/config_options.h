// The config options every model subcommand shares: `--config FILE` plus the switches the authors
// pass on their command line (--moe-experts, --moe-top-k, --moe-mlp-ratio, --gate-type, --multi-gate,
// --task-one-hot, --task-emb-dim, --noise-std), see core/config.h ConfigOverrides and docs/CLI.md.
#pragma once

#include <string>

#include "train/train_options.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace m3vit::cli {

struct ConfigArgs {
  std::string path;
  int moe_experts = 0, moe_top_k = 0, task_emb_dim = 0;
  double moe_mlp_ratio = 0, noise_std = 0;
  std::string gate_type, multi_gate, task_one_hot;
  // Set by add_config_options; an option given on the command line has count() > 0.
  CLI::Option *o_experts = nullptr, *o_top_k = nullptr, *o_ratio = nullptr, *o_gate = nullptr, *o_multi = nullptr,
              *o_one_hot = nullptr, *o_emb = nullptr, *o_noise = nullptr;
};

// Adds --config (required) and the override options to a subcommand.
void add_config_options(CLI::App* sub, ConfigArgs& args);

// The overrides given on the command line.
ConfigOverrides config_overrides(const ConfigArgs& args);

// Loads the config file with the command-line overrides (throws ConfigError / IoError).
TrainConfig load_config_args(const ConfigArgs& args);

// One-paragraph description of a model for the terminal.
std::string describe_config(const TrainConfig& f);

}  // namespace m3vit::cli
