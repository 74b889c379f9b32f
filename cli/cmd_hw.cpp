// `m3vit hw`: FPGA latency/memory/energy model. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_hw(CLI::App& app) {
  auto* sub = app.add_subcommand("hw", "FPGA latency/memory/energy model");
  sub->callback([] { throw Error("'hw' is not implemented yet"); });
}
}  // namespace m3vit::cli
