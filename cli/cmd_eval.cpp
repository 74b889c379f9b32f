// `m3vit eval --config C --weights W [--task T]`: score a model on the validation split as the authors
// do (docs/TRAINING.md; train/evaluate.h): predictions resized to each image's original resolution, the metrics
// of eval/, Δm against single-task references (the authors' numbers unless --reference is given).
// Prints a table, writes a JSON file, and with --png-dir the per-image predictions (PNG, depth .mat).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/config_options.h"
#include "common/errors.h"
#include "common/fileutil.h"
#include "common/platform.h"
#include "eval/delta_m.h"
#include "train/data_setup.h"
#include "train/evaluate.h"
#include "train/train_options.h"

namespace m3vit::cli {

namespace {

struct EvalArgs {
  ConfigArgs config;
  std::string weights, json_path, png_dir, references;
  std::vector<std::string> tasks;
  int threads = 0, batch_size = 0;
  int64_t max_images = 0;
  bool dense = false, no_progress = false;
};

}  // namespace

void register_eval(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "evaluate a model on the validation split (metrics, Δm)");
  auto a = std::make_shared<EvalArgs>();
  add_config_options(sub, a->config);
  sub->add_option("--weights,-w", a->weights, "training checkpoint, model export or the authors' checkpoint")->required();
  sub->add_option("--task,-t", a->tasks, "evaluate only these tasks (repeatable; default: all)");
  sub->add_option("--json", a->json_path, "JSON result file (default: <weights>.eval.json)");
  sub->add_option("--png-dir", a->png_dir, "write every stored prediction as <dir>/<task>/<id>.png (depth .mat)");
  sub->add_option("--reference", a->references,
                  "single-task references for Δm, e.g. semseg=0.662,normals=13.9 (default: the authors' values)");
  sub->add_option("--max-images", a->max_images, "score only the first N validation images")->check(CLI::PositiveNumber);
  sub->add_option("--batch-size", a->batch_size, "images per forward pass (default: train.val_batch_size)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--threads", a->threads, "torch threads (default: all cores)")->check(CLI::NonNegativeNumber);
  sub->add_flag("--dense", a->dense, "the weights are a dense M-ViT baseline (trained with train --dense)");
  sub->add_flag("--no-progress", a->no_progress, "no progress bar");
  sub->callback([a] {
    TrainConfig f = load_config_args(a->config);
    if (a->dense) f.model = dense_baseline(f.model);
    const TrainOptions to = train_options_from(f);
    at::set_num_threads(a->threads > 0 ? a->threads : (to.threads > 0 ? to.threads : default_threads()));
    MultiTaskModel model = load_model_for_eval(f.model, a->weights);
    auto val = open_dataset(f, "val");

    EvalOptions eo;
    eo.batch_size = a->batch_size > 0 ? a->batch_size : to.val_batch_size;
    eo.workers = to.workers;
    eo.tasks = a->tasks;
    eo.references = a->references.empty() ? to.delta_m_references : parse_delta_m_references(a->references);
    eo.png_dir = a->png_dir;
    eo.max_images = a->max_images;
    eo.progress = !a->no_progress;
    EvalResult r = evaluate_model(*model, *val, eo);

    const std::string json_path = a->json_path.empty() ? a->weights + ".eval.json" : a->json_path;
    write_file_atomic(json_path, eval_json(r) + "\n");
    std::printf("%s", eval_table(r).c_str());
    std::printf("results: %s\n", json_path.c_str());
    if (!a->png_dir.empty()) std::printf("predictions: %s/<task>/<id>\n", a->png_dir.c_str());
  });
}

}  // namespace m3vit::cli
