// What a caller chooses about the engine (runtime/engine.h), and the parsers of the command-line words
// for it: where each kind of weight lives (Residency), the arithmetic (Precision, runtime/ops), the
// memory budget of the stream buffers, threads and the head's conv algorithm.
#pragma once

#include <cstddef>
#include <string>

#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

// Where a kind of weight lives while the engine runs (runtime/expert_store.h, dense_store.h,
// head_store.h):
// - resident: packed into RAM at load;
// - stream: left in the model file and brought in through the weight ring (runtime/weight_stream.h)
//   as the forward pass needs it: the paper's ping-pong buffers, memory that does not grow with the
//   number of experts, layers or tasks.
// Both run the same kernels on the same packed bytes, so the outputs are identical.
enum class Residency { resident, stream };

struct EngineOptions {
  Precision precision = Precision::fp32;
  Residency experts = Residency::resident;
  // The attention and dense MLP layers and the heads' 3×3 convs. Streamed, they go through the same
  // buffers as streamed experts.
  Residency layers = Residency::resident;
  // Stream modes: bytes for the weight buffers (0 = two buffers of the largest streamed load).
  size_t memory_budget = 0;
  int threads = 0;           // OpenMP threads for every op; 0 = all hardware threads
  // Head 3×3 convs as Winograd (runtime/ops/conv.h). fp32: oneDNN's F(4×4, 3×3), 2.7× faster than
  // direct, but its transformed weights take 4× the memory of the heads' 3×3 weights (+160 MB for the
  // five PASCAL heads). bf16: our F(4×4, 3×3) (runtime/ops/winograd.h), weights 4× the 3×3's in
  // bf16 (2× fp32 direct), or F(2×2) with winograd_tile = 2 (16/9 of them, a quarter of the rounding
  // error, slower). int8: our F(4×4, 3×3) in s8 (runtime/ops/winograd_int8.h; weights 4× the 3×3's
  // in s8), or F(2×2) with winograd_tile = 2 (16/9, less than half the error, slower). false: direct
  // convs (int8: oneDNN's int8 direct conv with the calibrated input steps).
  bool winograd = true;
  int winograd_tile = 4;  // 4 or 2 (`m3vit run --conv winograd-f2`), for bf16 and int8
  // `m3vit calibrate`: where the fp32 engine records the input range of every layer that int8 mode
  // quantises (runtime/int8_format.h). fp32 and resident weights only; null otherwise.
  Calibration* calibration = nullptr;
};

// The command line's words. Each parser throws ConfigError naming the word and the accepted ones.
const char* to_string(Residency r);
Residency residency_from_string(const std::string& s);  // "resident" | "stream"
const char* to_string(Precision p);
Precision precision_from_string(const std::string& s);  // "fp32" | "bf16" | "int8"
// "512K", "64M", "1.5G" (powers of 1024) or plain bytes.
size_t parse_bytes(const std::string& s);

}  // namespace m3vit::rt
