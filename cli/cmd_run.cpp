// `m3vit run`: single-task inference with the libtorch-free runtime. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_run(CLI::App& app) {
  auto* sub = app.add_subcommand("run", "single-task inference with the libtorch-free runtime");
  sub->callback([] { throw Error("'run' is not implemented yet"); });
}
}  // namespace m3vit::cli
