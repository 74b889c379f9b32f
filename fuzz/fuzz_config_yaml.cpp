// Our config files (core/config_yaml.h: `model:` / `data:` / `train:` sections, configs/*.yaml):
// the YAML parse, every key's type and range, the model's validation, and the `data:` section
// (data/data_config.h). The JSON form inside model exports is fuzzed by fuzz_model_file.
#include "core/config_yaml.h"
#include "data/data_config.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::ConfigFile f = m3vit::load_config_text(std::string(reinterpret_cast<const char*>(data), size), "input.yaml");
    (void)m3vit::read_data_section(f);
    (void)m3vit::config_from_json(m3vit::config_to_json(f.model));  // what an export carries reads back
  });
}
