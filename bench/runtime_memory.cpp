// Benchmark 3: peak resident memory of the runtime with weights streamed from the model file against
// the full model loaded, and its growth with the number of experts E (8, 16, 64, 128 at the same
// top-k). Paper: with computation reordering the on-chip memory is O(1) in E, 2.40× below keeping
// every expert on chip (11.610 vs 4.840 MiB, M³ViT paper §4.4 and Table 4).
//
// Three modes: everything resident (full loading); experts streamed (--experts stream); everything
// streamed (--experts stream --layers stream: experts, attention and dense MLP layers and the heads'
// 3×3 convs come through the two ring buffers, as every layer's weights come from DRAM through
// on-chip buffers on the paper's accelerator). Each measurement is a fresh process (this binary
// re-run with --child) that loads the model, runs one image of the first task and reports its peak
// resident set (VmHWM) and the resident set it started with (VmRSS before loading: code and
// libraries). The binary links the runtime only, no libtorch. Goals: stream-mode peak flat within 5%
// over E; full loading >= 2.4× the stream peak for the paper configuration (E = 16).
//
//   runtime_memory [--config configs/pascal_vits_moe16.yaml] [--experts 8,16,64,128] [--threads 2]
//                  [--scratch DIR]
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "core/config_yaml.h"
#include "runtime/engine.h"
#include "runtime/synthetic_export.h"

using namespace m3vit;
using namespace m3vit::bench;

namespace {

struct Reading {
  long start_kb = 0, peak_kb = 0;
  double weights_mb = 0, buffers_mb = 0;  // every weight byte held; the stream ring's part of it
};

// mode: "resident" (everything), "experts" (experts streamed) or "all" (everything streamed).
int child(const std::string& model, const std::string& mode, int threads, bool winograd) {
  tune_malloc();
  const long start = proc_status_kb("VmRSS");
  rt::EngineOptions opt;
  opt.experts = mode == "resident" ? rt::Residency::resident : rt::Residency::stream;
  opt.layers = mode == "all" ? rt::Residency::stream : rt::Residency::resident;
  opt.threads = threads;
  opt.winograd = winograd;
  rt::Engine eng(model, opt);
  const ModelConfig& c = eng.config();
  std::vector<float> img = rt::synthetic_image(c, 1);
  std::vector<float> out(static_cast<size_t>(eng.out_channels(0)) * c.img_h * c.img_w);
  eng.run(0, img.data(), out.data());
  std::printf("%ld %ld %.3f %.3f\n", start, proc_status_kb("VmHWM"), eng.weight_bytes() / 1e6, eng.stream_bytes() / 1e6);
  return 0;
}

Reading measure(const std::string& self, const std::string& model, const std::string& mode, int threads,
                bool winograd = false) {
  const std::string cmd = "'" + self + "' --child '" + model + "' " + mode + " " + std::to_string(threads) + " " +
                          (winograd ? "winograd" : "direct");
  Reading r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p || std::fscanf(p, "%ld %ld %lf %lf", &r.start_kb, &r.peak_kb, &r.weights_mb, &r.buffers_mb) != 4) {
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
  std::printf("## Memory: peak resident set, streamed vs resident weights (%s, top-%d, %d threads)\n\n",
              base.name.c_str(), base.moe_top_k, threads);
  std::printf("Each cell is a fresh process: load, run one image of task %s, read VmHWM (MB). Modes: **resident** "
              "= the full model loaded (every weight packed in RAM); **experts streamed** = `--experts stream`; "
              "**all streamed** = `--experts stream --layers stream` (experts, attention and dense MLP layers and the "
              "heads' 3×3 convs read from the file through two buffers; routers, norms, embeddings and the 1×1 "
              "convs stay). \"weights\" = the weight bytes each mode holds; \"ring\" = the stream buffers "
              "(two slots of the largest load plus one tensor's fp32 rows as read), included in weights. "
              "\"start\" is the resident set before loading (code and libraries, no libtorch). The rest of a peak "
              "is activations (the same in every mode) and the caller's image and output. The head's convs are direct "
              "here (`--conv direct`); the default Winograd weights are in the last line.\n\n",
              base.tasks[0].name.c_str());
  std::printf("%s\n%s\n",
              row({"E", "file MB", "resident peak", "experts streamed peak", "all streamed peak",
                   "resident / all streamed", "resident / experts streamed", "weights: resident",
                   "weights: experts streamed", "weights: all streamed (ring)", "start"})
                  .c_str(),
              rule(11).c_str());
  std::vector<long> stream_peaks, expert_peaks;
  double paper_ratio = 0;
  Reading wino_res, wino_all;
  for (int E : Es) {
    ModelConfig c = base;
    c.moe_experts = E;
    const std::string path = scratch + "/memory_E" + std::to_string(E) + ".safetensors";
    rt::write_synthetic_export(c, path, 3);
    const double file_mb = std::filesystem::file_size(path) / 1e6;
    const Reading res = measure(self, path, "resident", threads);
    const Reading exs = measure(self, path, "experts", threads);
    const Reading all = measure(self, path, "all", threads);
    if (E == base.moe_experts) {
      wino_res = measure(self, path, "resident", threads, true);
      wino_all = measure(self, path, "all", threads, true);
    }
    std::filesystem::remove(path);
    stream_peaks.push_back(all.peak_kb);
    expert_peaks.push_back(exs.peak_kb);
    const double ratio = static_cast<double>(res.peak_kb) / all.peak_kb;
    if (E == base.moe_experts) paper_ratio = ratio;
    std::printf("%s\n", row({std::to_string(E) + (E == base.moe_experts ? " (paper)" : ""), fmt("%.0f", file_mb),
                             mb(res.peak_kb), mb(exs.peak_kb), mb(all.peak_kb), fmt("**%.2f×**", ratio),
                             fmt("%.2f×", static_cast<double>(res.peak_kb) / exs.peak_kb), fmt("%.1f", res.weights_mb),
                             fmt("%.1f", exs.weights_mb), fmt("%.1f", all.weights_mb) + " (" + fmt("%.1f", all.buffers_mb) + ")",
                             mb(all.start_kb)})
                        .c_str());
    std::fflush(stdout);
  }
  auto spread = [](const std::vector<long>& v) {
    const long lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    return 100.0 * (hi - lo) / lo;
  };
  const double sp = spread(stream_peaks);
  std::printf("\nAll-streamed peak over E = %d..%d: %.1f%% spread; experts streamed: %.1f%% (goal: flat within 5%%, "
              "%s). ",
              Es.front(), Es.back(), sp, spread(expert_peaks), sp <= 5 ? "met" : "not met");
  if (paper_ratio > 0)
    std::printf("Full loading / all streamed at E = %d: %.2f× (goal >= 2.4×, %s).", base.moe_experts, paper_ratio,
                paper_ratio >= 2.4 ? "met" : "not met");
  if (wino_res.peak_kb > 0)
    std::printf("\n\nWith the default Winograd head convs at E = %d: resident %s MB, all streamed %s MB (%.2f×).",
                base.moe_experts, mb(wino_res.peak_kb).c_str(), mb(wino_all.peak_kb).c_str(),
                static_cast<double>(wino_res.peak_kb) / wino_all.peak_kb);
  std::printf("\n\n");
  return 0;
}
