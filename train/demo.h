// `m3vit demo`: the whole method on a laptop CPU in under ten minutes. On the built-in synthetic scenes
// (data/synthetic.h, rendered on the fly: six dense tasks with exact labels) it
//   1. scores the freshly initialised model (chance level),
//   2. trains a small M³ViT (configs/tiny_synthetic.yaml: d 192, 6 blocks, 8 experts top-2, multi-gate)
//      for a time budget (5 minutes by default; the step count is fixed after timing the first steps),
//   3. scores every task again as the authors do (train/evaluate.h),
//   4. runs single-task inference per task on a few validation images and traces the routers over the
//      whole validation split,
//   5. writes out/demo/report.html: metrics, loss curves, pictures, expert-usage heat maps.
#pragma once

#include <string>

#include "train/evaluate.h"

namespace m3vit {

struct DemoOptions {
  std::string config = "configs/tiny_synthetic.yaml";
  std::string out_dir = "out/demo";
  double train_seconds = 300;  // training budget; ignored when steps > 0
  int64_t steps = 0;           // > 0: exactly this many optimizer steps
  int threads = 2;             // torch threads
  int pictures = 4;            // validation images shown per task
  bool dense = false;          // train the dense M-ViT baseline instead (no expert heat maps)
  bool evaluate_init = true;   // score the model at initialisation too
  bool progress = true;
};

struct DemoOutcome {
  std::string report_path;
  EvalResult before, after;
  bool has_before = false;
  int64_t steps = 0;
  double train_seconds = 0, total_seconds = 0, images_per_second = 0;
};

DemoOutcome run_demo(const DemoOptions& opt);

}  // namespace m3vit
