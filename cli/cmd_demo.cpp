// `m3vit demo`: generate data, train, evaluate and write an HTML report. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_demo(CLI::App& app) {
  auto* sub = app.add_subcommand("demo", "generate data, train, evaluate and write an HTML report");
  sub->callback([] { throw Error("'demo' is not implemented yet"); });
}
}  // namespace m3vit::cli
