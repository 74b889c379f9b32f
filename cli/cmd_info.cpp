// `m3vit info --config C [overrides]`: a model's configuration, its MACs per module for one backbone
// pass and one head, the three inference modes (single task, the authors' all-task forward, the
// dense M-ViT baseline) with the part thop would see, and the parameter counts (core/flops.h).
// Needs no weights.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/config_options.h"
#include "core/flops.h"

namespace m3vit::cli {

void register_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "print a model's configuration, MAC and parameter table (no weights needed)");
  auto args = std::make_shared<ConfigArgs>();
  add_config_options(sub, *args);
  sub->callback([args] {
    const TrainConfig f = load_config_args(*args);
    std::printf("%s\n%s", describe_config(f).c_str(), format_flops_report(count_flops(f.model)).c_str());
  });
}

}  // namespace m3vit::cli
