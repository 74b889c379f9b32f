// `m3vit`: subcommands info, infer, export (model), train, eval, demo (training), run, bench
// (runtime), hw (hardware model). Each lives in cli/cmd_<name>.cpp and registers itself here.
// Library code throws typed errors (common/errors.h); this is the one place that turns them into a
// message and exit code 2.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "common/errors.h"
#include "common/platform.h"

int main(int argc, char** argv) {
  m3vit::tune_malloc();
  CLI::App app{"m3vit: Mixture-of-Experts ViT for multi-task dense prediction (M³ViT)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return m3vit::cli::version_text(); }, "print the version and this build's features");
  m3vit::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const m3vit::Error& e) {
    std::fprintf(stderr, "m3vit: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "m3vit: error: %s\n", e.what());
    return 2;
  }
  return m3vit::cli::exit_code();
}
