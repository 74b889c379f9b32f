// Routing traces (hw/cost/expert_trace.h: the safetensors file `m3vit trace` writes and `m3vit hw`
// reads): the config it carries, its counts against the index and weight tensors, expert ids.
#include "fuzz/fuzz_input.h"
#include "hw/cost/expert_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::InputFile file(data, size);
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::hw::ExpertTrace t = m3vit::hw::read_trace(file.path());
    m3vit::hw::check_trace_matches(t, t.cfg);
    const size_t n = static_cast<size_t>(t.images) * t.layers * t.tokens * t.k;
    if (t.idx.size() != n || t.w.size() != n) __builtin_trap();
  });
}
