// Learning-rate schedules (utils/common_config.py:728-748, called once per epoch at
// train_fastmoe.py:412). The authors set lr_e = lr·(1 − e/epochs)^0.9 at the start of epoch e
// (0-based) and keep it for the whole epoch, with no warm-up. Per-step poly (progress = step/total)
// and cosine are options for short runs such as the demo, where a few epochs would make the per-epoch
// staircase coarse. An optional linear warm-up scales the first steps.
#pragma once

#include <cstdint>
#include <string>

namespace m3vit {

struct ScheduleConfig {
  std::string kind = "poly";  // poly | constant | cosine
  bool per_step = false;      // false: progress = epoch / epochs (the authors); true: step / total steps
  double power = 0.9;         // poly exponent
  int64_t warmup_steps = 0;   // linear warm-up from lr/warmup_steps to lr over these optimizer steps
};

// The learning rate of optimizer step `step` (0-based, global) in epoch `epoch` (0-based).
// `epochs` and `total_steps` are the run's length; total_steps is used when per_step is set or when
// the run is bounded by steps rather than epochs. Throws ConfigError for an unknown kind.
double scheduled_lr(const ScheduleConfig& s, double base_lr, int64_t epoch, int64_t epochs, int64_t step,
                    int64_t total_steps);

}  // namespace m3vit
