// Helpers for the data and metric tests: fresh scratch directories under the build tree, and running
// the numpy/scipy oracles with Debian's /usr/bin/python3.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace m3vit_test {

// A new empty directory M3VIT_BINARY_DIR/tmp-<name>-<pid>, removed first if it exists.
inline std::string scratch_dir(const std::string& name) {
  const std::string d = std::string(M3VIT_BINARY_DIR) + "/tmp-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Runs /usr/bin/python3 <M3VIT_SOURCE_DIR>/<script> <args>; returns the exit status.
inline int run_oracle(const std::string& script, const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " + std::string(M3VIT_SOURCE_DIR) + "/" + script + " " + args;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace m3vit_test
