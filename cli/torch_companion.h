// The `m3vit` command is two programs. `m3vit` itself links no libtorch: it runs `run` and `serve`
// on the runtime, so the memory a user gets from `m3vit run` is the runtime's (loading libtorch and
// the ~290 libraries it pulls in costs ~160 MB of resident memory and ~0.4 s before any work). The
// subcommands that need libtorch (info, infer, export, train, eval, demo, hw, trace, calibrate, and --version
// for libtorch's line) are handed, with the same arguments, to `m3vit-torch`: found next to `m3vit`
// (the build tree) or in <prefix>/libexec/m3vit (installed). docs/CLI.md, "Two programs".
#pragma once

#include <string>

namespace m3vit::cli {

// True for the subcommands (and flags) that m3vit-torch runs.
bool runs_in_torch_companion(const std::string& first_arg);
// The companion's path, or "" when it is not installed. `tried` lists the places looked at.
std::string find_torch_companion(std::string* tried = nullptr);
// Replaces this process with the companion, same arguments. Returns only on failure, with an error
// message naming what was tried.
std::string exec_torch_companion(char** argv);
// The line of `m3vit --help` that names the libtorch subcommands.
std::string torch_commands_footer();

}  // namespace m3vit::cli
