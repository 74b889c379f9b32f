// `m3vit infer`: single-task inference with the libtorch model. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_infer(CLI::App& app) {
  auto* sub = app.add_subcommand("infer", "single-task inference with the libtorch model");
  sub->callback([] { throw Error("'infer' is not implemented yet"); });
}
}  // namespace m3vit::cli
