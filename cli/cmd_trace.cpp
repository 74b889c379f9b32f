// `m3vit trace`: the per-token expert choices of a model on a set of images, for the hardware model
// (docs/ARCHITECTURE.md "Routing trace"; hw/cost/expert_trace.h).
//
//   m3vit trace --config C [overrides] [--weights W] --task T
//               (--images DIR [--resize] [--limit N] | --synthetic N [--image-seed S])
//               [--seed S] [--threads N] --out trace.safetensors
//
// The libtorch model runs one backbone pass per image with task T's routers (forward_features with
// a ForwardTrace); without --weights it has the authors' random initialisation from --seed.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/config_options.h"
#include "cli/model_trace.h"
#include "common/errors.h"

namespace m3vit::cli {

namespace {

struct TraceArgs {
  ConfigArgs config;
  std::string weights, task, out;
  ImageSource images;
  uint64_t seed = 0;
  int threads = 0;
};

void run_trace(const TraceArgs& a) {
  const TrainConfig f = load_config_args(a.config);
  const ModelConfig& cfg = f.model;
  const int task = cfg.task_index(a.task);
  if (cfg.moe_blocks.empty()) throw ConfigError("config '" + cfg.name + "' has no MoE layers: nothing to trace");
  if (!a.images.dir.empty() && a.images.synthetic > 0) throw ConfigError("give one of --images and --synthetic");
  if (!a.images.given()) throw ConfigError("give --images DIR or --synthetic N");
  check_output_dir(a.out, "--out");
  const auto images = load_images8(a.images, cfg);
  hw::ExpertTrace t = trace_model(cfg, a.weights, a.seed, task, images, a.images.describe(), a.threads);
  hw::write_trace(t, a.out);
  std::printf("wrote %s: %d image(s) x %d MoE layers x %d tokens x top-%d, task %s\n", a.out.c_str(), t.images,
              t.layers, t.tokens, t.k, t.task.c_str());
}

}  // namespace

void register_trace(CLI::App& app) {
  auto* sub = app.add_subcommand("trace", "write per-token expert choices (routing traces) for the hardware model");
  auto a = std::make_shared<TraceArgs>();
  add_config_options(sub, a->config);
  sub->add_option("--weights", a->weights, "checkpoint or export (default: random weights from --seed)");
  sub->add_option("--task", a->task, "task whose routers are used")->required();
  sub->add_option("--images", a->images.dir, "folder of PNG/JPEG images at the model's size");
  sub->add_flag("--resize", a->images.resize, "scale folder images to the model's size");
  sub->add_option("--limit", a->images.limit, "use at most N folder images");
  sub->add_option("--synthetic", a->images.synthetic, "use N synthetic scenes instead of a folder");
  sub->add_option("--image-seed", a->images.seed, "seed of the synthetic scenes");
  sub->add_option("--seed", a->seed, "seed of the random weights (without --weights)");
  sub->add_option("--threads", a->threads, "libtorch threads");
  sub->add_option("--out", a->out, "trace file to write (.safetensors)")->required();
  sub->callback([a] { run_trace(*a); });
}

}  // namespace m3vit::cli
