// Benchmark 3: peak resident memory of the runtime, experts streamed from the model file against
// all experts loaded, and its growth with the number of experts E (8, 16, 64, 128 at the same
// top-k). Paper: with computation reordering the on-chip memory is O(1) in E, 2.40× below keeping
// every expert on chip (11.610 vs 4.840 MiB, anchors.md §1.6).
//
// Each measurement is a fresh process (this binary re-run with --child) that loads the model, runs
// one image of the first task and reports its peak resident set (VmHWM) and the resident set it
// started with (VmRSS before loading: code and libraries). The binary links the runtime only, no
// libtorch. Goals: stream-mode peak flat within 5% over E; full loading >= 2.4× the stream peak for
// the paper configuration (E = 16).
//
//   runtime_memory [--config configs/pascal_vits_moe16.yaml] [--experts 8,16,64,128] [--threads 2]
//                  [--scratch DIR]
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "model/config_yaml.h"
#include "runtime/engine.h"
#include "runtime/synthetic_export.h"

using namespace m3vit;
using namespace m3vit::bench;

namespace {

struct Reading {
  long start_kb = 0, peak_kb = 0;
  double weights_mb = 0, experts_mb = 0;
};

int child(const std::string& model, const std::string& mode, int threads, bool winograd) {
  tune_malloc();
  const long start = proc_status_kb("VmRSS");
  rt::EngineOptions opt;
  opt.experts = rt::expert_mode_from_string(mode);
  opt.threads = threads;
  opt.winograd = winograd;
  rt::Engine eng(model, opt);
  const ModelConfig& c = eng.config();
  std::vector<float> img = rt::synthetic_image(c, 1);
  std::vector<float> out(static_cast<size_t>(eng.out_channels(0)) * c.img_h * c.img_w);
  eng.run(0, img.data(), out.data());
  std::printf("%ld %ld %.3f %.3f\n", start, proc_status_kb("VmHWM"), eng.weight_bytes() / 1e6, eng.expert_bytes() / 1e6);
  return 0;
}

Reading measure(const std::string& self, const std::string& model, const std::string& mode, int threads,
                bool winograd = false) {
  const std::string cmd = "'" + self + "' --child '" + model + "' " + mode + " " + std::to_string(threads) + " " +
                          (winograd ? "winograd" : "direct");
  Reading r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p || std::fscanf(p, "%ld %ld %lf %lf", &r.start_kb, &r.peak_kb, &r.weights_mb, &r.experts_mb) != 4) {
    std::fprintf(stderr, "runtime_memory: child failed: %s\n", cmd.c_str());
    std::exit(1);
  }
  ::pclose(p);
  return r;
}

std::string mb(long kb) { return fmt("%.1f", kb / 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 6 && std::string(argv[1]) == "--child")
    return child(argv[2], argv[3], std::stoi(argv[4]), std::string(argv[5]) == "winograd");
  const std::string config = arg(argc, argv, "--config", "configs/pascal_vits_moe16.yaml");
  const std::string scratch = arg(argc, argv, "--scratch", "/tmp");
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  std::vector<int> Es;
  std::stringstream ss(arg(argc, argv, "--experts", "8,16,64,128"));
  for (std::string t; std::getline(ss, t, ',');) Es.push_back(std::stoi(t));
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();

  ModelConfig base = load_config_file(config).model;
  base.tam = false;  // training-only; not part of an inference export
  std::printf("## Memory: peak resident set, streamed vs resident experts (%s, top-%d, %d threads)\n\n",
              base.name.c_str(), base.moe_top_k, threads);
  std::printf("Each cell is a fresh process: load, run one image of task %s, read VmHWM. \"start\" is the "
              "resident set before loading (code and libraries, no libtorch). Expert buffers: every expert "
              "(resident) or the two streaming buffers plus one expert's fp32 rows as read (stream). The head's "
              "convs are direct here (`--conv direct`), so that only the experts differ between the columns; "
              "the Winograd weights of the default would add the same amount to both (last line).\n\n",
              base.tasks[0].name.c_str());
  std::printf("%s\n%s\n", row({"E", "file MB", "resident peak MB", "stream peak MB", "resident / stream",
                               "resident expert buffers MB", "stream expert buffers MB", "start MB"}).c_str(),
              rule(8).c_str());
  std::vector<long> stream_peaks;
  double paper_ratio = 0;
  Reading wino_res, wino_str;
  for (int E : Es) {
    ModelConfig c = base;
    c.moe_experts = E;
    const std::string path = scratch + "/memory_E" + std::to_string(E) + ".safetensors";
    rt::write_synthetic_export(c, path, 3);
    const double file_mb = std::filesystem::file_size(path) / 1e6;
    const Reading res = measure(self, path, "resident", threads);
    const Reading str = measure(self, path, "stream", threads);
    if (E == base.moe_experts) {
      wino_res = measure(self, path, "resident", threads, true);
      wino_str = measure(self, path, "stream", threads, true);
    }
    std::filesystem::remove(path);
    stream_peaks.push_back(str.peak_kb);
    const double ratio = static_cast<double>(res.peak_kb) / str.peak_kb;
    if (E == base.moe_experts) paper_ratio = ratio;
    std::printf("%s\n", row({std::to_string(E) + (E == base.moe_experts ? " (paper)" : ""), fmt("%.0f", file_mb),
                             mb(res.peak_kb), mb(str.peak_kb), fmt("**%.2f×**", ratio), fmt("%.1f", res.experts_mb),
                             fmt("%.1f", str.experts_mb), mb(str.start_kb)})
                        .c_str());
    std::fflush(stdout);
  }
  const long lo = *std::min_element(stream_peaks.begin(), stream_peaks.end());
  const long hi = *std::max_element(stream_peaks.begin(), stream_peaks.end());
  const double spread = 100.0 * (hi - lo) / lo;
  std::printf("\nStream-mode peak over E = %d..%d: %.1f%% spread (goal: flat within 5%%, %s). ", Es.front(), Es.back(),
              spread, spread <= 5 ? "met" : "not met");
  if (paper_ratio > 0)
    std::printf("Full loading / stream at E = %d: %.2f× (goal >= 2.4×, %s).", base.moe_experts, paper_ratio,
                paper_ratio >= 2.4 ? "met" : "not met");
  if (wino_res.peak_kb > 0)
    std::printf("\n\nWith the default Winograd head convs at E = %d: resident %s MB, stream %s MB (%.2f×).",
                base.moe_experts, mb(wino_res.peak_kb).c_str(), mb(wino_str.peak_kb).c_str(),
                static_cast<double>(wino_res.peak_kb) / wino_str.peak_kb);
  std::printf("\n\n");
  return 0;
}
