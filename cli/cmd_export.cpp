// `m3vit export --config C [--weights W] --out model.safetensors [--seed S] [--with-training-weights]
// [overrides]`: builds the model, loads W (any format load_checkpoint reads: an authors' .pth or shard
// directory, our checkpoint, an earlier export) or seeded random weights, and writes the
// self-describing safetensors file the runtime reads (docs/ARCHITECTURE.md "Model export",
// model/checkpoint.h). The training-only tensors (the TAM) are left out unless
// --with-training-weights: no inference path reads them (the paper model's export shrinks from 416
// to 227 MB), and the metadata says they are missing so a loader that needs them can say so.
#include "common/pch/torch_pch.h"

#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/config_options.h"
#include "cli/model_weights.h"
#include "common/errors.h"
#include "model/checkpoint.h"
#include "core/flops.h"
#include "model/multitask_model.h"

namespace m3vit::cli {

namespace {

struct ExportArgs {
  ConfigArgs config;
  std::string weights, out;
  uint64_t seed = 0;
  bool training_weights = false;
};

void run_export(const ExportArgs& a) {
  const TrainConfig f = load_config_args(a.config);
  check_output_dir(a.out, "--out");
  torch::manual_seed(a.seed);
  MultiTaskModel model(f.model);
  std::string source = "random (seed " + std::to_string(a.seed) + ")";
  // Writing the TAM needs a trained one: an inference export given as --weights is refused then
  // (it would write the TAM's random initialisation as if it were trained).
  if (!a.weights.empty()) source = load_model_weights(*model, a.weights, /*need_training_weights=*/a.training_weights);
  model->eval();
  export_model(*model, a.out, a.training_weights);
  std::printf("model    %s, %.3f M parameters\n", f.model.name.c_str(), count_flops(f.model).params.total() / 1e6);
  std::printf("weights  %s\n", source.c_str());
  std::printf("wrote    %s (%s)\n", a.out.c_str(),
              a.training_weights ? "with the training-only weights"
              : f.model.tam      ? "inference export: the training-only TAM left out"
                                 : "inference export");
}

}  // namespace

void register_export(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "write a self-describing safetensors file for the runtime");
  auto a = std::make_shared<ExportArgs>();
  add_config_options(sub, a->config);
  sub->add_option("--weights,-w", a->weights, "checkpoint to convert (default: random weights)");
  sub->add_option("--out,-o", a->out, "output .safetensors")->required();
  sub->add_option("--seed", a->seed, "seed of the random weights when no --weights is given");
  sub->add_flag("--with-training-weights", a->training_weights,
                "also write the training-only tensors (the TAM), which inference never reads; needed to train the "
                "export further or load it as a full checkpoint");
  sub->callback([a] { run_export(*a); });
}

}  // namespace m3vit::cli
