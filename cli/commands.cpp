#include "cli/commands.h"

#include <CLI/CLI.hpp>

namespace m3vit::cli {

namespace {
int g_exit_code = 0;
}

int exit_code() { return g_exit_code; }
void set_exit_code(int rc) { g_exit_code = rc; }

// The commands that need libtorch (the model, training, the hardware model's tracer) are left out
// of a torch-free build (cli/CMakeLists.txt, docs/TESTING.md "Sanitizers").
void register_all(CLI::App& app) {
#ifdef M3VIT_WITH_TORCH
  register_info(app);
  register_infer(app);
  register_export(app);
  register_train(app);
  register_eval(app);
  register_demo(app);
#endif
  register_run(app);
#ifdef M3VIT_WITH_TORCH
  register_hw(app);
  register_trace(app);
  register_calibrate(app);  // the synthetic scenes are in m3vit_data, which the companion links
#endif
  register_serve(app);
}

}  // namespace m3vit::cli
