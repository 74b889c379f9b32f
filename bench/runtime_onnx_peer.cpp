// Benchmark 4: ONNX Runtime, the peer a deployer would pick, beside the runtime on the same weights
// and the same image. The graph is our PyTorch oracle's forward_task (tests/oracle/m3vit_ref.py)
// exported to ONNX by bench/onnx/export_onnx.py (Debian's python3-torch and python3-onnx) with a
// sparse MoE (each expert on its own tokens, the same multiply-adds as the runtime); it runs in
// npm's onnxruntime-node (bench/onnx/run_ort.js) with 2 intra-op threads and spinning off. Both
// outputs are compared, so the table also shows that the two compute the same function.
//
//   runtime_onnx_peer [--config configs/pascal_vits_moe16.yaml] [--task semseg] [--threads 2] [--reps 3]
//                     [--scratch DIR] [--node-modules DIR] [--source-dir .]
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "core/config_yaml.h"
#include "runtime/engine.h"
#include "runtime/synthetic_export.h"

using namespace m3vit;
using namespace m3vit::bench;

namespace {

std::string run_cmd(const std::string& cmd, int& rc) {
  std::string out;
  std::FILE* p = ::popen(("( " + cmd + " ) 2>&1").c_str(), "r");
  if (!p) {
    rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  rc = ::pclose(p);
  return out;
}

std::string json_string(const std::string& js, const std::string& key) {
  const auto p = js.find("\"" + key + "\":\"");
  if (p == std::string::npos) return "?";
  const auto b = p + key.size() + 4;
  return js.substr(b, js.find('"', b) - b);
}

double json_number(const std::string& js, const std::string& key) {
  const auto p = js.find("\"" + key + "\":");
  return p == std::string::npos ? -1 : std::atof(js.c_str() + p + key.size() + 3);
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc();
  const std::string config = arg(argc, argv, "--config", "configs/pascal_vits_moe16.yaml");
  const std::string task = arg(argc, argv, "--task", "semseg");
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  const int reps = std::stoi(arg(argc, argv, "--reps", "3"));
  const std::string scratch = arg(argc, argv, "--scratch", "/tmp");
  const std::string modules = arg(argc, argv, "--node-modules", "node_modules");
  const std::string src = arg(argc, argv, "--source-dir", ".");

  ModelConfig c = load_config_file(config).model;
  c.tam = false;
  const int t = c.task_index(task);
  std::printf("## ONNX Runtime beside the runtime (%s, task %s, batch 1, %d threads)\n\n", c.name.c_str(),
              task.c_str(), threads);
  const std::string weights = scratch + "/onnx_peer_" + c.name + ".safetensors";
  const std::string onnx = scratch + "/onnx_peer_" + c.name + "_" + task + ".onnx";
  rt::write_synthetic_export(c, weights, 21);
  int rc = 0;
  // The export depends only on (config, task, seed 21): reuse one from an earlier run.
  if (!std::filesystem::exists(onnx)) {
    const std::string log = run_cmd("/usr/bin/python3 '" + src + "/bench/onnx/export_onnx.py' --weights '" + weights +
                                        "' --task " + task + " --out '" + onnx + ".tmp' && mv '" + onnx + ".tmp' '" +
                                        onnx + "'",
                                    rc);
    if (rc != 0) {
      std::printf("ONNX export failed (exit %d); section skipped.\n\n```\n%s\n```\n\n", rc,
                  log.substr(log.size() > 2000 ? log.size() - 2000 : 0).c_str());
      return 0;
    }
  }
  const std::vector<float> img = rt::synthetic_image(c, 2);
  const std::string in_bin = scratch + "/onnx_peer_input.bin", out_bin = scratch + "/onnx_peer_output.bin";
  {
    std::ofstream f(in_bin, std::ios::binary);
    f.write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size() * 4));
  }
  const std::string js = run_cmd("M3VIT_H=" + std::to_string(c.img_h) + " M3VIT_W=" + std::to_string(c.img_w) +
                                     " NODE_PATH='" + modules + "' node '" + src + "/bench/onnx/run_ort.js' '" + onnx +
                                     "' '" + in_bin + "' '" + out_bin + "' " + std::to_string(reps),
                                 rc);
  if (rc != 0 || json_number(js, "median_ms") < 0) {
    std::printf("ONNX Runtime run failed (exit %d); section skipped. Install it with "
                "`ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (scripts/bench.sh does).\n\n```\n%s\n```\n\n",
                rc, js.c_str());
    return 0;
  }
  const double ort_ms = json_number(js, "median_ms"), ort_load = json_number(js, "load_ms");

  rt::EngineOptions opt;
  opt.threads = threads;
  auto t0 = clock_type::now();
  rt::Engine eng(weights, opt);
  const double rt_load = ms_since(t0);
  std::vector<float> y(static_cast<size_t>(eng.out_channels(t)) * c.img_h * c.img_w);
  eng.run(t, img.data(), y.data());  // warm-up, as ORT's first run
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) ms.push_back(time_ms([&] { eng.run(t, img.data(), y.data()); }));
  const double rt_ms = median(ms);

  std::vector<float> yo(y.size());
  {
    std::ifstream f(out_bin, std::ios::binary);
    f.read(reinterpret_cast<char*>(yo.data()), static_cast<std::streamsize>(yo.size() * 4));
  }
  double err = 0, ref = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(y[i] - yo[i])));
    ref = std::max(ref, static_cast<double>(std::fabs(yo[i])));
  }
  const double gflop = eng.counted_flops(t) / 1e9;
  std::printf("ONNX Runtime: npm onnxruntime-node, CPU provider, intraOpNumThreads 2, allow_spinning 0, all graph "
              "optimisations; the graph is tests/oracle's forward_task exported with a sparse MoE (%s). Median of %d "
              "runs after one warm-up run each. GFLOP/s over the same counted FLOPs (%.1f GFLOP); peak %.0f GFLOP/s "
              "fp32 on %d threads.\n\n",
              std::filesystem::path(onnx).filename().c_str(), reps, gflop, peak_gflops(false, threads), threads);
  std::printf("%s\n%s\n", row({"engine", "load ms", "latency ms", "GFLOP/s", "% of peak", "vs ONNX Runtime"}).c_str(),
              rule(6).c_str());
  std::printf("%s\n", row({"ONNX Runtime " + json_string(js, "version") + " (fp32)", fmt("%.0f", ort_load), fmt("%.1f", ort_ms),
                           fmt("%.1f", gflop / ort_ms * 1e3), fmt("%.0f%%", 100 * gflop / ort_ms * 1e3 / peak_gflops(false, threads)),
                           "1.00×"})
                          .c_str());
  std::printf("%s\n", row({"m3vit runtime (fp32)", fmt("%.0f", rt_load), fmt("%.1f", rt_ms), fmt("%.1f", gflop / rt_ms * 1e3),
                           fmt("%.0f%%", 100 * gflop / rt_ms * 1e3 / peak_gflops(false, threads)),
                           fmt("**%.2f× faster**", ort_ms / rt_ms)})
                          .c_str());
  std::printf("\nOutputs agree: max |runtime − ORT| = %.2e (%.1e of max |output|).\n\n", err, err / std::max(ref, 1e-30));
  std::filesystem::remove(weights);
  std::filesystem::remove(in_bin);
  std::filesystem::remove(out_bin);
  return 0;
}
