// safetensors (io/safetensors.h): the header JSON, dtypes, shapes against byte ranges, offsets,
// metadata; then every tensor's bytes are read, so a range the reader let through that lies outside
// the mapping shows up as an ASan report.
#include "fuzz/fuzz_input.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::InputFile file(data, size);
  return m3vit::fuzz::expect_typed_errors([&] {
    m3vit::SafeTensorsFile st(file.path());
    unsigned sum = 0;
    for (const std::string& name : st.names()) {
      const m3vit::TensorView& t = st.get(name);
      const auto* p = static_cast<const uint8_t*>(t.data);
      for (size_t i = 0; i < t.nbytes; ++i) sum += p[i];
      (void)st.file_offset(name);
    }
    for (const auto& [k, v] : st.metadata()) sum += static_cast<unsigned>(k.size() + v.size());
    (void)sum;
  });
}
