#include "common/pch/torch_pch.h"

// Benchmark 1: single-task latency at batch 1 for the paper's configurations (ViT-S, 16 experts,
// top-4, expert ratio 1): PASCAL-Context 5 tasks at 512×512 and NYUD-v2 2 tasks at 480×640.
// Side by side in one process, on the same weights and image, repetitions interleaved:
//   - the runtime (runtime/engine.h), fp32 and bf16;
//   - libtorch eager forward_task (one backbone pass with the task's routers, then its head);
//   - libtorch forward_all, the authors' multi-gate inference (a backbone pass per task, every head).
// Goals (issue "Runtime"): runtime >= 2.5× faster than libtorch eager single-task; end to end >= 65% of
// the fp32 peak for the counted FLOPs (core/flops.h: matmuls and convs, the k chosen experts only).
//
//   bench_latency [--configs configs/pascal_vits_moe16.yaml,configs/nyud_vits_moe16.yaml] [--task-index 0]
//                 [--threads 2] [--reps 3] [--scratch DIR] [--peak-table]
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "model/checkpoint.h"
#include "core/config_yaml.h"
#include "core/flops.h"
#include "model/multitask_model.h"
#include "runtime/engine.h"

using namespace m3vit;
using namespace m3vit::bench;

namespace {

struct Row {
  std::string name;
  std::vector<double> ms;
  double flops = 0;  // counted FLOPs of what this row computes
  bool bf16 = false;
};

void bench_config(const std::string& path, int task, int threads, int reps, const std::string& scratch,
                  std::vector<std::string>& goals) {
  ModelConfig cfg = load_config_file(path).model;
  cfg.tam = false;  // training-only; eval forward_all never runs it
  const std::string weights = scratch + "/latency_" + cfg.name + ".safetensors";
  torch::manual_seed(0);
  MultiTaskModel model(cfg);
  model->eval();
  export_model(*model, weights);
  torch::NoGradGuard no_grad;
  at::set_num_threads(threads);

  rt::EngineOptions o32;
  o32.threads = threads;
  rt::Engine e32(weights, o32);
  rt::EngineOptions odirect = o32;
  odirect.winograd = false;
  rt::Engine edirect(weights, odirect);
  rt::EngineOptions ostream = o32;
  ostream.experts = rt::Residency::stream;  // two expert buffers (the default budget)
  rt::Engine estream(weights, ostream);
  rt::EngineOptions oall = ostream;  // everything streamed, direct head convs (the memory benchmark's mode)
  oall.layers = rt::Residency::stream;
  oall.winograd = false;
  rt::Engine eall(weights, oall);
  std::unique_ptr<rt::Engine> e16;
  if (rt::cpu_has_bf16()) {
    rt::EngineOptions o16 = o32;
    o16.precision = rt::Precision::bf16;
    e16 = std::make_unique<rt::Engine>(weights, o16);
  }
  std::filesystem::remove(weights);
  at::set_num_threads(threads);  // the engines set OpenMP's count; torch keeps its own

  const torch::Tensor x = torch::randn({1, 3, cfg.img_h, cfg.img_w});
  const std::vector<float> img(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
  const int C = cfg.tasks[task].out_channels;
  std::vector<float> y32(static_cast<size_t>(C) * cfg.img_h * cfg.img_w), y16(y32.size()), ydirect(y32.size()),
      ystream(y32.size()), yall(y32.size());
  const FlopsReport fr = count_flops(cfg);
  const double single = 2 * fr.single_task(task).macs, all = 2 * fr.all_tasks().macs;

  Row r32{std::string("m3vit runtime, fp32") + (e32.head_winograd() ? " (Winograd head convs)" : ""), {}, single, false},
      rdirect{"m3vit runtime, fp32, direct head convs", {}, single, false},
      rstream{"m3vit runtime, fp32, experts streamed (2 buffers)", {}, single, false},
      rall{"m3vit runtime, fp32, all weights streamed (2 buffers), direct head convs", {}, single, false},
      r16{std::string("m3vit runtime, bf16") + (e16 && e16->head_winograd() ? " (bf16 Winograd F(4×4) head convs)" : ""),
          {}, single, true},
      eager{"libtorch eager forward_task", {}, single, false}, fall{"libtorch forward_all (every task)", {}, all, false};
  torch::Tensor yt;
  rt::RunTimes stages, stages16;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
    const double a = time_ms([&] { e32.run(task, img.data(), y32.data()); });
    stages = e32.last_times();
    const double b = e16 ? time_ms([&] { e16->run(task, img.data(), y16.data()); }) : 0;
    if (e16) stages16 = e16->last_times();
    const double bd = time_ms([&] { edirect.run(task, img.data(), ydirect.data()); });
    const double bs = time_ms([&] { estream.run(task, img.data(), ystream.data()); });
    const double ba = time_ms([&] { eall.run(task, img.data(), yall.data()); });
    const double c = time_ms([&] { yt = model->forward_task(x, task); });
    const double d = time_ms([&] { model->forward_all(x); });
    if (r < 0) continue;
    r32.ms.push_back(a);
    rdirect.ms.push_back(bd);
    rstream.ms.push_back(bs);
    rall.ms.push_back(ba);
    if (e16) r16.ms.push_back(b);
    eager.ms.push_back(c);
    fall.ms.push_back(d);
  }
  // Agreement with libtorch on this image (the parity test checks it on tiny models).
  const torch::Tensor yc = yt.contiguous();
  double e32max = 0, edmax = 0, e16max = 0, ref = 0, streamed_vs_resident = 0;
  for (size_t i = 0; i < y32.size(); ++i) {
    const float w = yc.data_ptr<float>()[i];
    ref = std::max(ref, static_cast<double>(std::fabs(w)));
    e32max = std::max(e32max, static_cast<double>(std::fabs(y32[i] - w)));
    edmax = std::max(edmax, static_cast<double>(std::fabs(ydirect[i] - w)));
    streamed_vs_resident = std::max({streamed_vs_resident, static_cast<double>(std::fabs(ystream[i] - y32[i])),
                                     static_cast<double>(std::fabs(yall[i] - ydirect[i]))});
    if (e16) e16max = std::max(e16max, static_cast<double>(std::fabs(y16[i] - w)));
  }

  std::printf("### %s: %s, %d×%d, %d tasks, task %s (%d channels)\n\n", cfg.name.c_str(), path.c_str(), cfg.img_h,
              cfg.img_w, cfg.num_tasks(), cfg.tasks[task].name.c_str(), C);
  std::printf("Median of %d interleaved repetitions after one warm-up, %d threads. Counted FLOPs: single task %.1f "
              "GFLOP, every task (forward_all) %.1f GFLOP. Peak %.0f GFLOP/s fp32, %.0f bf16. With Winograd head "
              "convs the runtime does fewer multiplies than it is credited with, so its \"%% of peak\" can exceed "
              "100%%; the direct-conv row computes every counted FLOP.\n\n",
              reps, threads, single / 1e9, all / 1e9, peak_gflops(false, threads), peak_gflops(true, threads));
  std::printf("%s\n%s\n", row({"engine", "ms", "GFLOP/s", "% of peak", "vs libtorch eager forward_task"}).c_str(),
              rule(5).c_str());
  const double eager_ms = median(eager.ms);
  for (const Row* rw : {&r32, &rdirect, &rstream, &rall, &r16, &eager, &fall}) {
    if (rw->ms.empty()) continue;
    const double ms = median(rw->ms), gf = rw->flops / ms / 1e6;
    std::printf("%s\n", row({rw->name, fmt("%.1f", ms), fmt("%.1f", gf), fmt("%.0f%%", 100 * gf / peak_gflops(rw->bf16, threads)),
                             fmt("%.2f×", eager_ms / ms)})
                            .c_str());
  }
  const double ms32 = median(r32.ms);
  std::printf("\nRuntime fp32 stages (last run, ms): patch embed %.1f, attention %.1f, dense MLP %.1f, MoE %.1f "
              "(%d non-empty expert queues), head %.1f.\n",
              stages.embed, stages.attention, stages.mlp, stages.moe, stages.experts_computed, stages.head);
  if (e16)
    std::printf("Runtime bf16 stages (last run, ms): patch embed %.1f, attention %.1f, dense MLP %.1f, MoE %.1f, head %.1f.\n",
                stages16.embed, stages16.attention, stages16.mlp, stages16.moe, stages16.head);
  std::printf("Output vs libtorch forward_task: fp32 max|diff| %.1e (%.1e of max|output|), direct convs %.1e (%.1e)",
              e32max, e32max / ref, edmax, edmax / ref);
  if (e16) std::printf("; bf16 max|diff| %.1e (%.1e of max|output|)", e16max, e16max / ref);
  std::printf("; streamed vs resident weights max|diff| %.1e (the same kernels on the same packed weights: 0)",
              streamed_vs_resident);
  std::printf(".\n\n");
  const double speedup = eager_ms / ms32, frac = single / ms32 / 1e6 / peak_gflops(false, threads);
  const double frac_direct = single / median(rdirect.ms) / 1e6 / peak_gflops(false, threads);
  goals.push_back(cfg.name + ": runtime fp32 " + fmt("%.2f×", speedup) + " faster than libtorch eager (goal >= 2.5×, " +
                  (speedup >= 2.5 ? "met" : "not met") + "); " + fmt("%.0f%%", 100 * frac) +
                  " of the fp32 peak for the counted FLOPs, " + fmt("%.0f%%", 100 * frac_direct) +
                  " with direct convs, i.e. with every counted FLOP computed (goal >= 65%, " +
                  (frac_direct >= 0.65 ? "met" : "not met") + ").");
  // bf16 against fp32 with its fastest head (Winograd), measured side by side above.
  if (e16) {
    const double x16 = ms32 / median(r16.ms);
    goals.push_back(cfg.name + ": runtime bf16 " + fmt("%.2f×", x16) + " faster than fp32 with the Winograd head (goal >= 1.6×, " +
                    (x16 >= 1.6 ? "met" : "not met") + ").");
  }
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc();
  const std::string configs = arg(argc, argv, "--configs", "configs/pascal_vits_moe16.yaml,configs/nyud_vits_moe16.yaml");
  const int task = std::stoi(arg(argc, argv, "--task-index", "0"));
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  const int reps = std::stoi(arg(argc, argv, "--reps", "3"));
  const std::string scratch = arg(argc, argv, "--scratch", "/tmp");
  if (flag(argc, argv, "--peak-table")) {  // the report's opening paragraph (scripts/bench.sh)
    print_peak_table(threads);
    return 0;
  }
  std::printf("## Single-task latency at batch 1: runtime vs libtorch\n\n");
  std::printf("libtorch: Debian's libtorch %s, eval mode, no-grad, at::set_num_threads(%d); its matmuls go to "
              "OpenBLAS (capped at AVX2 by OPENBLAS_CORETYPE, set machine-wide), its convolutions to oneDNN.\n\n",
              TORCH_VERSION, threads);
  std::printf("FMA microbenchmark at the start of this run: %.0f GFLOP/s on %d threads (documented fp32 peak %.0f; "
              "above it when the clock boosts, below it when other work shares the cores).\n\n",
              measured_fma_gflops(threads), threads, peak_gflops(false, threads));
  std::vector<std::string> goals;
  std::stringstream ss(configs);
  for (std::string p; std::getline(ss, p, ',');) bench_config(p, task, threads, reps, scratch, goals);
  std::printf("Goals:\n");
  for (const auto& g : goals) std::printf("- %s\n", g.c_str());
  std::printf("\n");
  return 0;
}
