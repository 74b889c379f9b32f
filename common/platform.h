// Process start-up settings that decide speed on the development machine (malloc churn, thread count).
#pragma once

#include <string>

namespace m3vit {

// Raises glibc's mmap and trim thresholds so large buffers are reused instead of being returned to
// the OS after every op (the page faults halved libtorch's speed here). Call once, first in main().
void tune_malloc();

// Number of hardware threads (the default of every --threads option).
int default_threads();

// Describes the machine for benchmark reports: CPU model, cores, OPENBLAS_CORETYPE.
std::string machine_description();

}  // namespace m3vit
