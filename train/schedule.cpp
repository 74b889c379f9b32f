// Learning-rate schedules (see schedule.h; the authors' adjust_learning_rate, common_config.py:728-748).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

double scheduled_lr(const ScheduleConfig& s, double base_lr, int64_t epoch, int64_t epochs, int64_t step,
                    int64_t total_steps) {
  double progress;
  if (s.per_step) {
    if (total_steps <= 0) throw ConfigError("per-step schedule needs a positive total step count");
    progress = static_cast<double>(step) / static_cast<double>(total_steps);
  } else {
    if (epochs <= 0) throw ConfigError("per-epoch schedule needs a positive epoch count");
    progress = static_cast<double>(epoch) / static_cast<double>(epochs);
  }
  progress = std::clamp(progress, 0.0, 1.0);
  double lr;
  if (s.kind == "poly")
    lr = base_lr * std::pow(1.0 - progress, s.power);  // lambd = pow(1 - epoch/epochs, 0.9)
  else if (s.kind == "constant")
    lr = base_lr;
  else if (s.kind == "cosine")
    lr = base_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  else
    throw ConfigError("unknown scheduler '" + s.kind + "' (poly, constant, cosine)");
  if (s.warmup_steps > 0 && step < s.warmup_steps)
    lr *= static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  return lr;
}

}  // namespace m3vit
