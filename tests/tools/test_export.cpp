// m3vit_test_export CONFIG SEED OUT: a model export with seeded random weights
// (runtime/synthetic_export.h) for CONFIG (a YAML file), for the CLI tests of a torch-free build,
// which has no `m3vit export` (tests/cli/run_torch_free.sh).
#include <cstdio>
#include <cstdlib>

#include "common/errors.h"
#include "core/config.h"
#include "runtime/synthetic_export.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: m3vit_test_export CONFIG SEED OUT\n");
    return 2;
  }
  try {
    const m3vit::ModelConfig cfg = m3vit::load_config(argv[1]);
    m3vit::rt::write_synthetic_export(cfg, argv[3], static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)));
  } catch (const m3vit::Error& e) {
    std::fprintf(stderr, "m3vit_test_export: %s\n", e.what());
    return 2;
  }
  return 0;
}
