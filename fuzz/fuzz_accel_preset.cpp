// Accelerator presets (hw/cost/accel_config.h: configs/hw/*.yaml, `m3vit hw --accel FILE`): every
// field's {value, source} mapping, types, ranges and the consistency checks.
#include "fuzz/fuzz_input.h"
#include "hw/cost/accel_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::hw::AccelConfig a =
        m3vit::hw::accel_config_from_yaml_text(std::string(reinterpret_cast<const char*>(data), size), "input.yaml");
    (void)m3vit::hw::accel_config_to_yaml(a);
  });
}
