// The runtime's model file (runtime/model_file.h, what `m3vit run`, `m3vit serve` and libm3vit
// open): the format tag and version, the m3vit_config JSON, the config's validation and
// runnability, and the tensor table against export_tensor_specs; then every tensor's values are
// read (the NaN/Inf check), as an engine does before using them.
#include "core/export.h"
#include "fuzz/fuzz_input.h"
#include "runtime/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::InputFile file(data, size);
  return m3vit::fuzz::expect_typed_errors([&] {
    m3vit::rt::ModelFile m(file.path());
    for (const m3vit::TensorSpec& s : m3vit::export_tensor_specs(m.config())) {
      (void)m.data(s.name);
      (void)m.numel(s.name);
    }
  });
}
