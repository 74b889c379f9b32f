// int8 against fp32 and bf16 (`--precision int8`, docs/RUNTIME.md "int8"): single-task latency of
// one image at batch 1, the three precisions side by side in one process on the same weights and
// image, runs interleaved (fp32, bf16, int8, fp32, ...) so that a busy neighbour slows all three
// alike; medians of the whole run and of each stage. The int8 file is calibrated here on
// `--calib N` synthetic images (seeded random weights: this measures speed, not accuracy). Goal
// (issue 11): int8 at least 2.5× faster than fp32 end to end on pascal_vits_moe16.
//
//   runtime_int8 [--config configs/pascal_vits_moe16.yaml] [--threads 2] [--reps 5] [--calib 2] [--scratch DIR]
#include <omp.h>

#include <filesystem>
#include <memory>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "core/config_yaml.h"
#include "runtime/engine.h"
#include "runtime/int8_format.h"
#include "runtime/synthetic_export.h"

using namespace m3vit;
using namespace m3vit::bench;

int main(int argc, char** argv) {
  tune_malloc();
  const std::string config = arg(argc, argv, "--config", "configs/pascal_vits_moe16.yaml");
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  const int reps = std::stoi(arg(argc, argv, "--reps", "5"));
  const int calib = std::stoi(arg(argc, argv, "--calib", "2"));
  const std::string scratch = arg(argc, argv, "--scratch", "/tmp");
  ModelConfig c = load_config_file(config).model;
  c.tam = false;
  const std::string path = scratch + "/int8_bench.safetensors", path8 = scratch + "/int8_bench_int8.safetensors";
  rt::write_synthetic_export(c, path, 7);
  rt::write_int8_export(path,
                        rt::calibrate_model(path, calib, [&](int i, std::vector<float>& x) { x = rt::synthetic_image(c, 100 + i); },
                                            threads),
                        path8, {"bench"});
  struct Row {
    std::string name;
    std::unique_ptr<rt::Engine> eng;
    std::vector<rt::RunTimes> runs;
  };
  std::vector<Row> rows;
  rt::EngineOptions o;
  o.threads = threads;
  rows.push_back({"fp32 (Winograd F(4×4) head)", std::make_unique<rt::Engine>(path, o), {}});
  if (rt::cpu_has_bf16()) {
    o.precision = rt::Precision::bf16;
    rows.push_back({"bf16 (Winograd F(4×4) head)", std::make_unique<rt::Engine>(path, o), {}});
  }
  if (rt::cpu_has_vnni()) {
    o.precision = rt::Precision::int8;
    rows.push_back({"int8 (Winograd F(4×4) head)", std::make_unique<rt::Engine>(path8, o), {}});
    o.winograd_tile = 2;
    rows.push_back({"int8 (Winograd F(2×2) head, `--conv winograd-f2`)", std::make_unique<rt::Engine>(path8, o), {}});
    o.winograd = false;
    rows.push_back({"int8 (direct head convs)", std::make_unique<rt::Engine>(path8, o), {}});
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path8);
  const std::vector<float> img = rt::synthetic_image(c, 1);
  std::vector<float> out(static_cast<size_t>(c.tasks[0].out_channels) * c.img_h * c.img_w);
  for (auto& r : rows) r.eng->run(0, img.data(), out.data());  // warm-up
  for (int i = 0; i < reps; ++i)
    for (auto& r : rows) {
      r.eng->run(0, img.data(), out.data());
      r.runs.push_back(r.eng->last_times());
    }
  std::printf("## int8 (%s, task %s, %d threads)\n\n", c.name.c_str(), c.tasks[0].name.c_str(), threads);
  std::printf("Medians of %d interleaved runs (ms); seeded random weights, int8 calibrated on %d synthetic images.\n\n",
              reps, calib);
  std::printf("%s\n%s\n", row({"precision", "total", "attention", "dense MLP", "MoE", "head", "× fp32"}).c_str(),
              rule(7).c_str());
  auto med = [](const std::vector<rt::RunTimes>& v, double rt::RunTimes::*f) {
    std::vector<double> x;
    for (const auto& t : v) x.push_back(t.*f);
    return median(x);
  };
  const double base = med(rows[0].runs, &rt::RunTimes::total);
  for (const auto& r : rows) {
    const double tot = med(r.runs, &rt::RunTimes::total);
    std::printf("%s\n", row({r.name, fmt("%.1f", tot), fmt("%.1f", med(r.runs, &rt::RunTimes::attention)),
                             fmt("%.1f", med(r.runs, &rt::RunTimes::mlp)), fmt("%.1f", med(r.runs, &rt::RunTimes::moe)),
                             fmt("%.1f", med(r.runs, &rt::RunTimes::head)), fmt("%.2f×", base / tot)})
                            .c_str());
  }
  // Issue goal: int8 with its default head at least 2.5× faster than fp32 with its fastest head.
  for (const auto& r : rows)
    if (r.name == "int8 (Winograd F(4×4) head)") {
      const double x = base / med(r.runs, &rt::RunTimes::total);
      std::printf("\nGoal: int8 at least 2.5× faster than fp32 end to end: **%.2f×** (%s).\n", x,
                  x >= 2.5 ? "met" : "not met");
    }
  return 0;
}
