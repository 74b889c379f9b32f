// .npy (io/npy.h): magic, version, the header's Python dict literal, dtype, shape against the data.
// npy_from_bytes is what read_npy, `m3vit run --input-npy` and `m3vit serve` call.
#include "fuzz/fuzz_input.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::OwnedTensor t = m3vit::npy_from_bytes(std::string(reinterpret_cast<const char*>(data), size), "input.npy");
    if (t.bytes.size() != static_cast<size_t>(t.numel()) * m3vit::dtype_size(t.dtype))
      __builtin_trap();  // the reader's tensor must hold exactly its shape's bytes
  });
}
