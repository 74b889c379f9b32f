// `m3vit eval`: evaluate a model on a data set. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_eval(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "evaluate a model on a data set");
  sub->callback([] { throw Error("'eval' is not implemented yet"); });
}
}  // namespace m3vit::cli
