#include "cli/commands.h"

#include <CLI/CLI.hpp>

namespace m3vit::cli {

namespace {
int g_exit_code = 0;
}

int exit_code() { return g_exit_code; }
void set_exit_code(int rc) { g_exit_code = rc; }

void register_all(CLI::App& app) {
  register_info(app);
  register_infer(app);
  register_export(app);
  register_train(app);
  register_eval(app);
  register_demo(app);
  register_run(app);
  register_hw(app);
  register_trace(app);
  register_serve(app);
}

}  // namespace m3vit::cli
