// MATLAB files (data/mat_file.h, through Debian's libmatio): PASCAL-Context's LabelMap matrix and
// PASCAL-Part's `anno` struct, the two the PASCAL loader reads.
#include "data/mat_file.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::InputFile file(data, size);
  m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::MatMatrix m = m3vit::read_mat_matrix(file.path(), "LabelMap");
    if (m.v.size() != static_cast<size_t>(m.h) * m.w) __builtin_trap();
  });
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::PartsAnnotation a = m3vit::read_parts_annotation(file.path());
    for (const auto& o : a.objects)
      if (o.mask.size() != static_cast<size_t>(o.h) * o.w) __builtin_trap();
  });
}
