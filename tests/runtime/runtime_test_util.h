// Shared code of the runtime tests (torch-free): scratch directories, tiny model configs, exports with
// seeded random weights written through io/safetensors, the PyTorch oracle (tests/oracle/run_oracle.py
// under /usr/bin/python3) and a check_close that prints the max error (docs/TESTING.md).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "core/config.h"
#include "runtime/model_file.h"
#include "runtime/synthetic_export.h"
#include "tests/core/io_test_util.h"

namespace m3vit::rt_test {

inline std::string scratch_dir(const std::string& tag) { return test_io::make_scratch_dir(tag); }

// A small model of every kind the engine runs: depth 4 with MoE at the odd blocks, 2 heads of 16
// (the attention's AVX-512 path) unless head_dim says otherwise, 8 experts top-2, head width 16.
inline ModelConfig tiny_config(GateType gate, int img_h = 32, int img_w = 48, int num_tasks = 2) {
  ModelConfig c;
  c.name = "tiny-" + std::string(to_string(gate));
  c.img_h = img_h;
  c.img_w = img_w;
  c.patch = 16;
  c.embed_dim = 32;
  c.depth = 4;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.moe_blocks = odd_blocks(c.depth);
  c.moe_experts = 8;
  c.moe_top_k = 2;
  c.moe_mlp_ratio = 1.0;
  c.gate = gate;
  c.task_emb_dim = 8;
  c.head_channels = 16;
  const char* names[] = {"semseg", "depth", "normals", "sal", "human_parts"};
  const int ch[] = {5, 1, 3, 1, 7};
  for (int t = 0; t < num_tasks; ++t) c.tasks.push_back({names[t], ch[t]});
  return c;
}

// Seeded random exports and images: runtime/synthetic_export.h.
inline void write_random_export(const ModelConfig& cfg, const std::string& path, uint32_t seed,
                                const std::string& poison = "", float poison_value = 0.f) {
  rt::write_synthetic_export(cfg, path, seed, poison, poison_value);
}
inline std::vector<float> random_image(const ModelConfig& cfg, uint32_t seed) { return rt::synthetic_image(cfg, seed); }

// Python with the oracle interpreter (/usr/bin/python3: numpy, torch 1.13).
using test_io::PyResult;
using test_io::run_python;

// Runs the float64 PyTorch oracle on (weights, images [B, 3, H, W]) and returns its output file.
inline std::string run_oracle(const std::string& dir, const std::string& weights, const std::vector<float>& images,
                              const ModelConfig& cfg, int batch = 1) {
  SafeTensorsWriter w;
  w.add("images", DType::F32, {batch, cfg.in_chans, cfg.img_h, cfg.img_w}, images.data(), images.size() * 4);
  const std::string in = dir + "/images.safetensors", out = dir + "/oracle.safetensors";
  w.write(in);
  const test_io::PyResult r =
      test_io::run_command("/usr/bin/python3 " M3VIT_SOURCE_DIR "/tests/oracle/run_oracle.py --weights '" + weights +
                           "' --input '" + in + "' --out '" + out + "' --task-trace --dtype float64");
  if (r.status != 0) throw std::runtime_error("oracle failed (" + std::to_string(r.status) + "): " + r.output);
  return out;
}

struct CloseResult {
  double max_abs = 0, max_ref = 0;
  double rel() const { return max_abs / std::max(max_ref, 1e-30); }
};

// Max |got - want| relative to max |want| (the "relative" of the parity goals); prints it.
inline CloseResult compare(const std::string& name, const float* got, const float* want, size_t n) {
  CloseResult r;
  for (size_t i = 0; i < n; ++i) {
    r.max_abs = std::max(r.max_abs, static_cast<double>(std::fabs(got[i] - want[i])));
    r.max_ref = std::max(r.max_ref, static_cast<double>(std::fabs(want[i])));
    if (!std::isfinite(got[i])) r.max_abs = INFINITY;
  }
  std::printf("  %-40s max|err| %.3e  max|ref| %.3e  rel %.3e\n", name.c_str(), r.max_abs, r.max_ref, r.rel());
  return r;
}

inline void check_close(const std::string& name, const float* got, const float* want, size_t n, double rel_tol) {
  const CloseResult r = compare(name, got, want, n);
  EXPECT_LE(r.rel(), rel_tol) << name << ": max|err| " << r.max_abs << " vs max|ref| " << r.max_ref;
}

}  // namespace m3vit::rt_test
