#include "common/platform.h"

#include <malloc.h>

#include <cstdlib>
#include <fstream>
#include <thread>

namespace m3vit {

void tune_malloc() {
  // 256 MiB: above the largest activation of the paper configuration (a 512x512 head map).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

std::string machine_description() {
  std::string model = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) model = line.substr(p + 2);
      break;
    }
  }
  const char* ct = std::getenv("OPENBLAS_CORETYPE");
  return model + ", " + std::to_string(default_threads()) + " hardware threads, OPENBLAS_CORETYPE=" +
         (ct ? ct : "(unset)");
}

}  // namespace m3vit
