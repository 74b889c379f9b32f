// Helpers shared by the training tests: a fresh scratch directory under the build tree, the Python
// oracle runner (/usr/bin/python3 has torch and numpy; the python3 on PATH may not), and tensor checks
// that print the largest error.
#pragma once

#include <gtest/gtest.h>

#include "common/pch/torch_pch.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace m3vit::test {

// A new empty directory M3VIT_BINARY_DIR/tmp-train/<name>-<pid>, removed first if it exists.
inline std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(M3VIT_BINARY_DIR) / "tmp-train" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Runs `/usr/bin/python3 <source>/<script> <args>`; returns the exit status (0 on success).
inline int run_oracle(const std::string& script, const std::string& args) {
  const std::string cmd = std::string("/usr/bin/python3 ") + M3VIT_SOURCE_DIR + "/" + script + " " + args;
  return std::system(cmd.c_str());
}

// Max |got - want| and whether every element is within atol + rtol·|want|.
inline ::testing::AssertionResult tensors_close(const std::string& name, const torch::Tensor& got,
                                                const torch::Tensor& want, double rtol, double atol) {
  if (got.sizes() != want.sizes())
    return ::testing::AssertionFailure() << name << ": shape " << got.sizes() << " vs " << want.sizes();
  auto g = got.detach().to(torch::kFloat64), w = want.detach().to(torch::kFloat64);
  auto err = (g - w).abs();
  double max_err = err.numel() ? err.max().item<double>() : 0.0;
  bool ok = err.numel() == 0 || (err <= atol + rtol * w.abs()).all().item<bool>();
  if (!ok) return ::testing::AssertionFailure() << name << ": max abs error " << max_err;
  return ::testing::AssertionSuccess() << name << ": max abs error " << max_err;
}

}  // namespace m3vit::test
