// Label maps (data/label_png.h read_label_png: gray and palette PNGs decoded to their stored values,
// our chunk walk and PNG filters over stb's zlib), the PASCAL-Context, PASCAL-Part and NYUD loaders'
// path for every label file.
#include "data/label_png.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::InputFile file(data, size);
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::ImageF labels = m3vit::read_label_png(file.path());
    if (labels.c != 1 || labels.data.size() != static_cast<size_t>(labels.h) * labels.w) __builtin_trap();
  });
}
