#include <CLI/CLI.hpp>
#include "cli/commands.h"
namespace m3vit::cli {
void register_info(CLI::App& app) { app.add_subcommand("info", "print a model's MAC and parameter table"); }
}
