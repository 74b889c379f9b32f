// `m3vit demo`: train a small M³ViT on the synthetic scenes for a few minutes, score every task,
// run single-task inference, trace the routers, and write out/demo/report.html (train/demo.h).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "train/demo.h"

namespace m3vit::cli {

void register_demo(CLI::App& app) {
  auto* sub = app.add_subcommand("demo", "train a small M³ViT on synthetic scenes and write an HTML report");
  auto o = std::make_shared<DemoOptions>();
  auto minutes = std::make_shared<double>(5.0);
  sub->add_option("--config,-c", o->config, "model and training config")->capture_default_str();
  sub->add_option("--out", o->out_dir, "output folder")->capture_default_str();
  sub->add_option("--minutes", *minutes, "training time budget (the step count is set after timing the first steps)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--steps", o->steps, "train exactly this many steps instead of a time budget")
      ->check(CLI::PositiveNumber);
  sub->add_option("--threads", o->threads, "torch threads")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--pictures", o->pictures, "validation images shown per task")->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--dense", o->dense, "train the dense M-ViT baseline instead of the MoE model");
  sub->add_flag("--no-progress", [o](int64_t) { o->progress = false; }, "no progress bars");
  sub->callback([o, minutes] {
    o->train_seconds = *minutes * 60.0;
    DemoOutcome r = run_demo(*o);
    std::printf("%s", eval_table(r.after).c_str());
    std::printf("demo finished in %.0f s (%lld training steps, %.1f img/s)\n", r.total_seconds, (long long)r.steps,
                r.images_per_second);
    std::printf("report: %s\n", r.report_path.c_str());
  });
}

}  // namespace m3vit::cli
