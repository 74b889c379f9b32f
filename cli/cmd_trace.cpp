// `m3vit trace`: write per-token expert choices (routing traces) for the hardware model. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_trace(CLI::App& app) {
  auto* sub = app.add_subcommand("trace", "write per-token expert choices (routing traces) for the hardware model");
  sub->callback([] { throw Error("'trace' is not implemented yet"); });
}
}  // namespace m3vit::cli
