// The oneDNN objects every runtime op shares: one CPU engine and one in-order stream, plus the
// precision switch (fp32 default, bf16 on AVX512-BF16) and the functions that turn our plain row-major
// buffers into oneDNN memory descriptors. Following oneDNN's examples (primitives/matmul.cpp,
// cnn_inference_f32.cpp): primitives are created once at load, only execute() runs per image.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace m3vit::rt {

// Arithmetic of the matmuls, convolutions and the attention core (runtime/ops/attention.h). Routers,
// LayerNorm, the softmax's max/sum and resizing stay fp32.
enum class Precision {
  fp32,  // default; parity with libtorch within 1e-4 relative
  bf16,  // weights and matmul/conv/attention inputs in bfloat16, fp32 accumulation and outputs (AVX512-BF16)
  // s8 weights (per output channel) and s8/u8 inputs (per tensor, scales from `m3vit calibrate`),
  // s32 accumulation, fp32 outputs (AVX512-VNNI); the attention core runs as in bf16 where the CPU
  // has it. Needs a calibrated file (runtime/int8_format.h).
  int8,
};

// Bytes per weight as the model file stores it: s8 in a calibrated int8 file, fp32 otherwise (bf16
// mode converts fp32 weights when it packs them).
inline size_t file_weight_bytes(Precision p) { return p == Precision::int8 ? 1 : 4; }

struct Calibration;  // runtime/int8_format.h

struct DnnlContext {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  // Set while `m3vit calibrate` runs the fp32 engine: the stores attach an observer to every weight
  // that int8 mode quantises (PackedWeights::observe), which records the largest |input|.
  Calibration* calibration = nullptr;
  dnnl::stream strm{eng};
  // bf16 copies of matmul inputs in bf16 mode. Sized by the plans at load (reserve_bf16) and shared:
  // the ops of one image run one after another, so one buffer serves all of them.
  std::vector<uint16_t> bf16_scratch;
  void reserve_bf16(size_t elems) {
    if (bf16_scratch.size() < elems) bf16_scratch.resize(elems);
  }
};

// True when the CPU runs oneDNN's bf16 kernels natively (AVX512-BF16 or AMX); without it oneDNN
// emulates bf16 slowly, so the engine refuses bf16 mode with a clear error instead.
bool cpu_has_bf16();
// True when the CPU has AVX512-VNNI, where oneDNN's u8/s8 × s8 matmul and conv run at 4× the fp32
// rate (brgemm, vpdpbusd); without it oneDNN falls back to slow reference kernels, so the engine
// refuses int8 mode with a clear error.
bool cpu_has_vnni();

// dnnl data type of a precision's matmul/conv inputs.
// (int8: s8, the matmuls' input; the convs' may be u8, runtime/ops/conv.h.)
inline dnnl::memory::data_type act_type(Precision p) {
  if (p == Precision::int8) return dnnl::memory::data_type::s8;
  return p == Precision::bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}
inline size_t act_size(Precision p) { return p == Precision::int8 ? 1 : p == Precision::bf16 ? 2 : 4; }

// n bytes rounded up to a cache line: offsets of buffers packed one after another (weight slots,
// scratch) stay 64-byte aligned, as oneDNN's packed weights and AVX-512 loads prefer.
inline size_t align64(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace m3vit::rt
