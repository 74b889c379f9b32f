// Hand-off from the torch-free `m3vit` to `m3vit-torch` (cli/torch_companion.h).
#include "cli/torch_companion.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#ifndef M3VIT_LIBEXEC_FROM_BIN
#define M3VIT_LIBEXEC_FROM_BIN "../libexec/m3vit"
#endif

namespace m3vit::cli {

namespace {
namespace fs = std::filesystem;
const char* const kTorchCommands[] = {"info", "infer", "export", "train", "eval", "demo", "hw", "trace", "calibrate", "--version"};
}  // namespace

bool runs_in_torch_companion(const std::string& first_arg) {
  for (const char* c : kTorchCommands)
    if (first_arg == c) return true;
  return false;
}

std::string find_torch_companion(std::string* tried) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  // The build tree keeps both programs in one folder; an install puts the companion in libexec.
  const fs::path candidates[] = {self.parent_path() / "m3vit-torch",
                                 (self.parent_path() / M3VIT_LIBEXEC_FROM_BIN / "m3vit-torch").lexically_normal()};
  for (const fs::path& p : candidates) {
    if (tried) *tried += (tried->empty() ? "" : ", ") + p.string();
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

std::string exec_torch_companion(char** argv) {
  std::string tried;
  const std::string path = find_torch_companion(&tried);
  if (path.empty())
    return std::string("`") + argv[1] + "` needs the libtorch part of m3vit (m3vit-torch), which is not installed: looked at " +
           tried + " (install the m3vit-tools package, or build with libtorch)";
  ::execv(path.c_str(), argv);  // argv[0] stays "m3vit": messages name the command the user typed
  return "could not start " + path + ": " + std::strerror(errno);
}

std::string torch_commands_footer() {
  return "Subcommands that use libtorch, run by m3vit-torch with the same arguments: info, infer, export, train, "
         "eval, demo, hw, trace (m3vit <command> --help).";
}

}  // namespace m3vit::cli
