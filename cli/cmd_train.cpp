// `m3vit train`: train a model. (Placeholder until its implementation lands.)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/errors.h"

namespace m3vit::cli {
void register_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train a model");
  sub->callback([] { throw Error("'train' is not implemented yet"); });
}
}  // namespace m3vit::cli
