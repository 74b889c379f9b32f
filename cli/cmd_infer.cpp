#include "common/pch/torch_pch.h"
#include <CLI/CLI.hpp>
#include "cli/commands.h"
namespace m3vit::cli {
void register_infer(CLI::App& app) { app.add_subcommand("infer", "single-task inference"); (void)torch::ones({1}); }
}
