// Benchmark 3: peak resident memory of the runtime with weights streamed from the model file against
// the full model loaded, and its growth with the number of experts E (8, 16, 64, 128 at the same
// top-k). Paper: with computation reordering the on-chip memory is O(1) in E, 2.40× below keeping
// every expert on chip (11.610 vs 4.840 MiB, M³ViT paper §4.4 and Table 4).
//
// The models are the files `m3vit export` writes for a shipped config (scripts/bench.sh exports
// configs/pascal_vits_moe16.yaml, and the other E with --moe-experts): the inference export, without
// the training-only TAM, as a user runs it. This binary links the runtime only (no libtorch), so it
// cannot export; it takes the files.
//
// Three modes: everything resident (full loading); experts streamed (--experts stream); everything
// streamed (--experts stream --layers stream: experts, attention and dense MLP layers and the heads'
// 3×3 convs come through the two ring buffers, as every layer's weights come from DRAM through
// on-chip buffers on the paper's accelerator). Each measurement is a fresh process (this binary
// re-run with --child) that loads the model, runs one image of the first task and reports:
//   - VmHWM, the kernel's peak resident set (anonymous + file-backed + shared memory pages);
//   - its anonymous and file-backed parts at the peak. The kernel keeps no per-kind peak, so a
//     thread samples /proc/self/statm every 0.5 ms (resident and shared pages: file = shared, anon =
//     resident - shared) and keeps the sample with the largest resident set; its total is printed
//     too, and is within a few MB of VmHWM;
//   - the resident set it started with (VmRSS before loading: code and libraries).
// Goals: all-streamed VmHWM flat within 5% over E; full loading >= 2.4× the all-streamed VmHWM for
// the paper configuration (E = 16).
//
//   runtime_memory --models M8.safetensors,M16.safetensors,... [--config configs/pascal_vits_moe16.yaml]
//                  [--threads 2] [--int8 M16_int8.safetensors]
// --config names the shipped config the files were exported from: its E is the paper row.
// --int8: the file `m3vit calibrate` writes from the paper row's export; its resident and all-streamed
// peaks with --precision int8 are the last lines (goal: all streamed below 100 MB).
// M3VIT_MEMORY_SMAPS=1 makes every child print its largest mappings at the end to stderr (where the
// resident pages are).
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "core/config_yaml.h"
#include "core/export.h"
#include "runtime/engine.h"
#include "runtime/synthetic_export.h"

using namespace m3vit;
using namespace m3vit::bench;

namespace {

struct Reading {
  long start_kb = 0, peak_kb = 0;       // VmRSS before loading; VmHWM
  long sampled_kb = 0, anon_kb = 0, file_kb = 0;  // the largest sampled resident set and its two parts
  double weights_mb = 0, buffers_mb = 0;  // every weight byte held; the stream ring's part of it
};

// Samples /proc/self/statm until stopped; keeps the sample with the largest resident set.
class RssSampler {
 public:
  RssSampler() : page_kb_(::sysconf(_SC_PAGESIZE) / 1024), thread_([this] { loop(); }) {}
  ~RssSampler() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    sample();  // the end state too
  }
  long resident_kb() const { return best_res_ * page_kb_; }
  long anon_kb() const { return (best_res_ - best_shared_) * page_kb_; }
  long file_kb() const { return best_shared_ * page_kb_; }

 private:
  void sample() {
    char buf[256];
    const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    long size = 0, res = 0, shared = 0;
    if (std::sscanf(buf, "%ld %ld %ld", &size, &res, &shared) == 3 && res > best_res_) {
      best_res_ = res;
      best_shared_ = shared;
    }
  }
  void loop() {
    while (!stop_) {
      sample();
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  long page_kb_;
  long best_res_ = 0, best_shared_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The largest resident mappings of this process (/proc/self/smaps), for M3VIT_MEMORY_SMAPS.
void print_smaps(const std::string& what) {
  std::ifstream in("/proc/self/smaps");
  std::map<std::string, long> rss;  // mapping name -> resident kB
  std::string line, name;
  while (std::getline(in, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 17) {
      std::istringstream ls(line);
      std::string range, perms, off, dev, inode;
      ls >> range >> perms >> off >> dev >> inode;
      std::getline(ls, name);
      const size_t b = name.find_first_not_of(' ');
      name = b == std::string::npos ? "[anon]" : name.substr(b);
    } else if (line.rfind("Rss:", 0) == 0) {
      rss[name] += std::atol(line.c_str() + 4);
    }
  }
  std::vector<std::pair<long, std::string>> v;
  for (const auto& [n, kb] : rss) v.emplace_back(kb, n);
  std::sort(v.rbegin(), v.rend());
  std::fprintf(stderr, "smaps at the end (%s):\n", what.c_str());
  for (size_t i = 0; i < v.size() && i < 12; ++i) std::fprintf(stderr, "  %8.1f MB  %s\n", v[i].first / 1024.0, v[i].second.c_str());
}

// mode: "resident" (everything), "experts" (experts streamed) or "all" (everything streamed).
int child(const std::string& model, const std::string& mode, int threads, bool winograd, bool int8) {
  tune_malloc();
  const long start = proc_status_kb("VmRSS");
  RssSampler sampler;
  rt::EngineOptions opt;
  opt.experts = mode == "resident" ? rt::Residency::resident : rt::Residency::stream;
  opt.layers = mode == "all" ? rt::Residency::stream : rt::Residency::resident;
  opt.threads = threads;
  opt.winograd = winograd;
  opt.precision = int8 ? rt::Precision::int8 : rt::Precision::fp32;
  rt::Engine eng(model, opt);
  const ModelConfig& c = eng.config();
  std::vector<float> img = rt::synthetic_image(c, 1);
  std::vector<float> out(static_cast<size_t>(eng.out_channels(0)) * c.img_h * c.img_w);
  eng.run(0, img.data(), out.data());
  sampler.stop();
  if (std::getenv("M3VIT_MEMORY_SMAPS"))
    print_smaps(mode + (winograd ? ", Winograd" : ", direct") + (int8 ? ", int8" : ""));
  std::printf("%ld %ld %ld %ld %ld %.3f %.3f\n", start, proc_status_kb("VmHWM"), sampler.resident_kb(),
              sampler.anon_kb(), sampler.file_kb(), eng.weight_bytes() / 1e6, eng.stream_bytes() / 1e6);
  return 0;
}

Reading measure(const std::string& self, const std::string& model, const std::string& mode, int threads,
                bool winograd = false, bool int8 = false) {
  const std::string cmd = "'" + self + "' --child '" + model + "' " + mode + " " + std::to_string(threads) + " " +
                          (winograd ? "winograd" : "direct") + (int8 ? " int8" : " fp32");
  Reading r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p || std::fscanf(p, "%ld %ld %ld %ld %ld %lf %lf", &r.start_kb, &r.peak_kb, &r.sampled_kb, &r.anon_kb,
                        &r.file_kb, &r.weights_mb, &r.buffers_mb) != 7) {
    std::fprintf(stderr, "runtime_memory: child failed: %s\n", cmd.c_str());
    std::exit(1);
  }
  ::pclose(p);
  return r;
}

std::string mb(long kb) { return fmt("%.1f", kb / 1024.0); }
// "VmHWM (anon + file)"
std::string peak(const Reading& r) { return mb(r.peak_kb) + " (" + mb(r.anon_kb) + " + " + mb(r.file_kb) + ")"; }

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 7 && std::string(argv[1]) == "--child")
    return child(argv[2], argv[3], std::stoi(argv[4]), std::string(argv[5]) == "winograd", std::string(argv[6]) == "int8");
  const std::string config = arg(argc, argv, "--config", "configs/pascal_vits_moe16.yaml");
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  const std::string int8_model = arg(argc, argv, "--int8", "");
  std::vector<std::string> models;
  std::stringstream ss(arg(argc, argv, "--models", ""));
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) models.push_back(t);
  if (models.empty()) {
    std::fprintf(stderr, "usage: runtime_memory --models M8.safetensors,M16.safetensors,... [--config C] [--threads N] "
                         "[--int8 M16_int8.safetensors]\n"
                         "  (the files `m3vit export --config C [--moe-experts E]` writes)\n");
    return 2;
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();

  const ModelConfig base = load_config_file(config).model;
  // Every file must be an export of `config` (any E): the table compares E and nothing else.
  std::vector<std::pair<int, std::string>> byE;
  for (const std::string& m : models) {
    ModelConfig c = read_export_config(m);
    const int E = c.moe_experts;
    c.moe_experts = base.moe_experts;
    c.name = base.name;
    if (config_to_json(c) != config_to_json(base)) {
      std::fprintf(stderr, "runtime_memory: %s is not an export of %s (other than its number of experts)\n", m.c_str(),
                   config.c_str());
      return 2;
    }
    byE.emplace_back(E, m);
  }
  std::sort(byE.begin(), byE.end());

  std::printf("## Memory: peak resident set, streamed vs resident weights (%s, top-%d, %d threads)\n\n",
              base.name.c_str(), base.moe_top_k, threads);
  std::printf("The files are what `m3vit export --config %s [--moe-experts E]` writes (the inference export: no "
              "training-only TAM). Each cell is a fresh process: load, run one image of task %s, read VmHWM (MB), the "
              "kernel's peak resident set, anonymous and file-backed pages together. In brackets its anonymous and "
              "file-backed parts at the peak: the kernel keeps no per-kind peak, so a thread samples "
              "/proc/self/statm every 0.5 ms and the parts are those of the largest sample. Modes: **resident** = "
              "the full model loaded (every weight packed in RAM); **experts streamed** = `--experts stream`; **all "
              "streamed** = `--experts stream --layers stream` (experts, attention and dense MLP layers and the "
              "heads' 3×3 convs read from the file through two buffers; routers, norms, embeddings and the 1×1 "
              "convs stay). \"weights\" = the weight bytes each mode holds; \"ring\" = the stream buffers (two slots "
              "of the largest load plus one tensor as the file stores it), included in weights. \"start\" is the "
              "resident set before loading (code and libraries, no libtorch). The rest of a peak is activations "
              "(the same in every mode) and the caller's image and output. The head's convs are direct here "
              "(`--conv direct`); the default Winograd weights are in the last line.\n\n",
              config.c_str(), base.tasks[0].name.c_str());
  std::printf("%s\n%s\n",
              row({"E", "file MB", "resident VmHWM (anon + file)", "experts streamed VmHWM",
                   "all streamed VmHWM (anon + file)", "resident / all streamed", "resident / experts streamed",
                   "weights: resident", "weights: experts streamed", "weights: all streamed (ring)", "start"})
                  .c_str(),
              rule(11).c_str());
  std::vector<long> stream_peaks, expert_peaks;
  double paper_ratio = 0;
  Reading wino_res, wino_all;
  for (const auto& [E, path] : byE) {
    const double file_mb = std::filesystem::file_size(path) / 1e6;
    const Reading res = measure(self, path, "resident", threads);
    const Reading exs = measure(self, path, "experts", threads);
    const Reading all = measure(self, path, "all", threads);
    if (E == base.moe_experts) {
      wino_res = measure(self, path, "resident", threads, true);
      wino_all = measure(self, path, "all", threads, true);
    }
    stream_peaks.push_back(all.peak_kb);
    expert_peaks.push_back(exs.peak_kb);
    const double ratio = static_cast<double>(res.peak_kb) / all.peak_kb;
    if (E == base.moe_experts) paper_ratio = ratio;
    std::printf("%s\n", row({std::to_string(E) + (E == base.moe_experts ? " (paper)" : ""), fmt("%.0f", file_mb),
                             peak(res), peak(exs), peak(all), fmt("**%.2f×**", ratio),
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
  std::printf("\nAll-streamed VmHWM over E = %d..%d: %.1f%% spread; experts streamed: %.1f%% (goal: flat within 5%%, "
              "%s). ",
              byE.front().first, byE.back().first, sp, spread(expert_peaks), sp <= 5 ? "met" : "not met");
  if (paper_ratio > 0)
    std::printf("Full loading / all streamed VmHWM at E = %d, fp32: %.2f× (goal >= 2.4×, %s).", base.moe_experts,
                paper_ratio, paper_ratio >= 2.4 ? "met" : "not met");
  if (wino_res.peak_kb > 0)
    std::printf("\n\nWith the default Winograd head convs at E = %d: resident %s MB, all streamed %s MB (%.2f×).",
                base.moe_experts, peak(wino_res).c_str(), peak(wino_all).c_str(),
                static_cast<double>(wino_res.peak_kb) / wino_all.peak_kb);
  if (!int8_model.empty()) {
    // int8 (s8 weights: experts stream at a quarter of the fp32 bytes), default Winograd head convs
    // and direct ones, against the goal for everything streamed.
    const Reading res = measure(self, int8_model, "resident", threads, true, true);
    const Reading all = measure(self, int8_model, "all", threads, true, true);
    const Reading all_direct = measure(self, int8_model, "all", threads, false, true);
    const long worst = std::max(all.peak_kb, all_direct.peak_kb);
    std::printf("\n\nint8 (`--precision int8`, the file `m3vit calibrate` writes from the E = %d export, %.0f MB): "
                "resident %s MB, all streamed %s MB with the default Winograd head convs and %s MB with direct ones "
                "(goal: all streamed below 100 MB, %s). Weights held all streamed: %.1f MB (ring %.1f).",
                base.moe_experts, std::filesystem::file_size(int8_model) / 1e6, peak(res).c_str(), peak(all).c_str(),
                peak(all_direct).c_str(), worst < 100 * 1024 ? "met" : "not met", all.weights_mb, all.buffers_mb);
  }
  std::printf("\n\n");
  return 0;
}
