// PyTorch checkpoints (io/pth_reader.h): the zip container (or the legacy tar-less format), the
// pickle program, storages and views. What `m3vit import` of the authors' checkpoints runs on.
#include "fuzz/fuzz_input.h"
#include "io/pth_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::InputFile file(data, size);
  return m3vit::fuzz::expect_typed_errors([&] {
    for (const auto& [name, t] : m3vit::read_pth_tensors(file.path()))
      if (t.bytes.size() != static_cast<size_t>(t.numel()) * m3vit::dtype_size(t.dtype)) __builtin_trap();
  });
}
