// Task switching: the engine holds every task's routers and heads, so running a different task on
// the next image should cost nothing beyond that task's own work (the paper's zero-overhead task
// switching, M³ViT §3.2). Measured: the same multiset of (task, image) runs in two orders, each task
// twice in a row ("fixed": t0 t0 t1 t1 ...) and round-robin ("interleaved": t0 t1 ... t0 t1 ...),
// alternating the two sequences over several rounds. The ratio of their medians should be 1.00.
// Twice: weights resident (the default), and everything streamed (--experts stream --layers stream,
// where each image reads its task's head convs through the ring whatever the previous task was).
//
//   runtime_task_switch [--config configs/pascal_vits_moe16.yaml] [--threads 2] [--rounds 3] [--scratch DIR]
#include <omp.h>

#include <filesystem>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "core/config_yaml.h"
#include "runtime/engine.h"
#include "runtime/synthetic_export.h"

using namespace m3vit;
using namespace m3vit::bench;

int main(int argc, char** argv) {
  tune_malloc();
  const std::string config = arg(argc, argv, "--config", "configs/pascal_vits_moe16.yaml");
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  const int rounds = std::stoi(arg(argc, argv, "--rounds", "3"));
  const std::string scratch = arg(argc, argv, "--scratch", "/tmp");
  ModelConfig c = load_config_file(config).model;
  c.tam = false;
  const std::string path = scratch + "/task_switch.safetensors";
  rt::write_synthetic_export(c, path, 7);
  rt::EngineOptions opt;
  opt.threads = threads;
  rt::Engine resident(path, opt);
  opt.experts = opt.layers = rt::Residency::stream;
  rt::Engine streamed(path, opt);
  std::filesystem::remove(path);
  const int T = c.num_tasks();
  const std::vector<float> img = rt::synthetic_image(c, 1);
  int cmax = 1;
  for (const auto& t : c.tasks) cmax = std::max(cmax, t.out_channels);
  std::vector<float> out(static_cast<size_t>(cmax) * c.img_h * c.img_w);
  std::vector<int> fixed, inter;
  for (int t = 0; t < T; ++t) fixed.insert(fixed.end(), {t, t});
  for (int r = 0; r < 2; ++r)
    for (int t = 0; t < T; ++t) inter.push_back(t);
  std::printf("## Task switching (%s, %d tasks, %d threads)\n\n", c.name.c_str(), T, threads);
  std::printf("%d images per sequence (every task twice), median of %d rounds, sequences alternated.\n\n",
              2 * T, rounds);
  std::printf("%s\n%s\n", row({"weights", "sequence", "order", "total ms", "ms per image", "interleaved / fixed"}).c_str(),
              rule(6).c_str());
  std::string fo, io;
  for (int t : fixed) fo += std::to_string(t);
  for (int t : inter) io += std::to_string(t);
  std::vector<double> ratios;
  for (rt::Engine* eng : {&resident, &streamed}) {
    auto run_seq = [&](const std::vector<int>& seq) {
      return time_ms([&] {
        for (int t : seq) eng->run(t, img.data(), out.data());
      });
    };
    run_seq(inter);  // warm-up
    std::vector<double> tf, ti;
    for (int r = 0; r < rounds; ++r) {
      tf.push_back(run_seq(fixed));
      ti.push_back(run_seq(inter));
    }
    const double f = median(tf), i = median(ti);
    const std::string w = eng == &resident ? "resident" : "all streamed";
    std::printf("%s\n", row({w, "fixed task", fo, fmt("%.1f", f), fmt("%.1f", f / fixed.size()), ""}).c_str());
    std::printf("%s\n", row({w, "interleaved", io, fmt("%.1f", i), fmt("%.1f", i / inter.size()), fmt("**%.3f×**", i / f)})
                            .c_str());
    ratios.push_back(i / f);
  }
  std::printf("\nInterleaved / fixed: **%.3f×** resident, **%.3f×** all streamed (zero-cost switching: 1.00).\n\n",
              ratios[0], ratios[1]);
  return 0;
}
