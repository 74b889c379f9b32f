// `m3vit export`: write a self-describing safetensors file for the runtime. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_export(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "write a self-describing safetensors file for the runtime");
  sub->callback([] { throw Error("'export' is not implemented yet"); });
}
}  // namespace m3vit::cli
