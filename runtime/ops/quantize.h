// int8 quantisation for `--precision int8` (runtime/int8_format.h has the file side): symmetric s8
// weights with one scale per output channel, activations with one scale per tensor (from the
// calibration pass, `m3vit calibrate`), and the calibration observer.
//
//   weights      w ≈ q_w[o, i] · s_w[o],   s_w[o] = max_i |w[o, i]| / 127,  q_w ∈ [−127, 127]
//   activations  x ≈ q_x · s_x,            s8: s_x = absmax / 127, q_x ∈ [−127, 127]
//                                          u8: s_x = absmax / 255, q_x ∈ [0, 255] (inputs ≥ 0: after ReLU)
//   y[n] = Σ_k x[k]·w[n, k] + b[n] ≈ (s_x·s_w[n]) · Σ_k q_x[k]·q_w[n, k] + b[n]
// The integer sum runs in oneDNN (s32 accumulation, VNNI); the scale s_x·s_w[n] and the bias are
// applied by its post-ops (runtime/ops/matmul.h, conv.h). Symmetric (no zero points) because the
// s8 × s8 case is compensated inside oneDNN's packed weights: no zero point is needed for signed
// inputs (LayerNorm outputs, the attention output), and u8 is used where the input is ≥ 0.
// q_x = clamp(round(x · (1/s_x))), the product in fp32, rounded to nearest with ties to even (the
// CPU's default, _mm512_cvtps_epi32 / std::nearbyint).
#pragma once

#include <cstdint>

namespace m3vit::rt {

inline constexpr float kS8Max = 127.f;
inline constexpr float kU8Max = 255.f;

// The symmetric s8 step of values whose largest |x| is absmax: absmax / 127, or 1 for all zeros (any
// step represents them exactly). Steps taken at run time (the Winograd's V, the attention core).
inline float s8_step(float absmax) { return absmax > 0.f ? absmax / kS8Max : 1.f; }

// Per-output-channel symmetric s8: w [out, per_out] -> q [out, per_out], scale [out]. A row of
// zeros gets scale 1 (any scale represents it exactly).
void quantize_weights_s8(const float* w, int64_t out, int64_t per_out, int8_t* q, float* scale);

// q[i] = clamp(round(x[i] / step), −127, 127). parallel: split over OpenMP threads (not from
// inside a parallel region, e.g. an expert's matmul).
void quantize_s8(const float* x, int8_t* q, int64_t n, float step, bool parallel);

// A [c, rows, w] map in nChw16c fp32 (runtime/ops/conv.h) -> [rows, w, c] channels-last 8-bit, the
// layout of oneDNN's int8 convolutions: u8 = clamp(round(x / step), 0, 255), else s8 as above.
void quantize_blocked_to_nhwc(const float* src, int c, int rows, int w, float step, bool u8, void* dst);

// max |x[i]| of n values (calibration).
float absmax(const float* x, int64_t n);
// *slot = max(*slot, v) for v ≥ 0, atomically (several threads observe one expert's inputs).
void observe_max(float* slot, float v);

}  // namespace m3vit::rt
