// `m3vit info`: print a model's MAC and parameter table. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "print a model's MAC and parameter table");
  sub->callback([] { throw Error("'info' is not implemented yet"); });
}
}  // namespace m3vit::cli
