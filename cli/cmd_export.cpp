#include <CLI/CLI.hpp>
#include "cli/commands.h"
namespace m3vit::cli {
void register_export(CLI::App& app) { app.add_subcommand("export", "write a self-describing safetensors file"); }
}
