// `m3vit`: subcommands info, infer, export (model), train, eval, demo (training), run, bench
// (runtime), hw (hardware model). Each lives in cli/cmd_<name>.cpp and registers itself here.
// Library code throws typed errors (common/errors.h); this is the one place that turns them into a
// message and exit code 2.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/torch_companion.h"
#include "common/errors.h"
#include "common/platform.h"

int main(int argc, char** argv) {
#ifdef M3VIT_TORCH_COMPANION
  // The torch-free front (cli/torch_companion.h): libtorch subcommands run in m3vit-torch.
  if (argc >= 2 && m3vit::cli::runs_in_torch_companion(argv[1])) {
    const std::string why = m3vit::cli::exec_torch_companion(argv);  // returns only on failure
    if (std::string(argv[1]) != "--version") {
      std::fprintf(stderr, "m3vit: error: %s\n", why.c_str());
      return 2;
    }
    // --version without the companion: this program's own lines (no libtorch).
  }
#endif
  m3vit::tune_malloc();
  CLI::App app{"m3vit: Mixture-of-Experts ViT for multi-task dense prediction (M³ViT)"};
  app.require_subcommand(1);
#ifdef M3VIT_TORCH_COMPANION
  app.footer(m3vit::cli::torch_commands_footer());
#endif
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
