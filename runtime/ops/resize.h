// Bilinear resizing with align_corners = false, as F.interpolate(mode='bilinear') computes it
// (vit_up_head.py:149-224; ATen's area_pixel_compute_source_index): an output pixel o samples the input at
// s = max((o + 0.5)·in/out − 0.5, 0), between floor(s) and min(floor(s) + 1, in − 1).
// For the head's ×2 steps in/out = 0.5 exactly, so the weights are 0.25/0.75 (and 0/1 at the edges).
#pragma once

#include <cstdint>
#include <vector>

namespace m3vit::rt {

// Sampling table of one axis: output o reads i0[o] with weight 1 − l[o] and i1[o] with weight l[o].
struct ResizeAxis {
  std::vector<int> i0, i1;
  std::vector<float> l;
};
ResizeAxis resize_axis(int in, int out);

// Rows [y0, y1) of the ×2-upsampled map of in [C, H, W] in the blocked layout nChw16c
// ([ceil(C/16)][H][W][16], fp32), written to out as the blocked [C, y1 − y0, 2W] in type T (float, or
// uint16_t = bf16 bits). Rows outside [0, 2H) are written as zeros: they are the zero padding of the
// 3×3 conv that reads the band. The 16 channels of a block share one interpolation: one vector.
// The map `in` is fp32 or, where it is kept in bf16 to save memory (int8 mode, runtime/pup_head.h),
// uint16_t = bf16 bits.
template <typename In, typename T>
void upsample2x_rows_blocked(const In* in, int H, int W, int C, int y0, int y1, T* out);

// Copies a blocked band [C, rows, W] into rows [r0, r0 + rows) of a blocked map [C, H, W] of type T
// (float, or uint16_t = bf16 bits: rounded to nearest even).
template <typename T>
void copy_rows_blocked(const float* band, int C, int rows, int W, T* map, int H, int r0);

// in [C, H, W] blocked (nChw16c) -> out [C, Ho, Wo] (planar), bilinear.
void resize_blocked_to_chw(const float* in, int C, int H, int W, float* out, int Ho, int Wo);
// The same for output rows [y0, y1) only, from a window of the input: `in` holds input rows
// [in_row0, in_row0 + in_rows) (blocked, planes of in_rows rows), which must cover every row those
// output rows sample. The head resizes its last map band by band with it (runtime/pup_head.cpp).
void resize_blocked_rows_to_chw(const float* in, int C, int in_row0, int in_rows, int H, int W, float* out, int Ho,
                                int Wo, int y0, int y1);
// in [C, H, W] -> out [C, Ho, Wo], bilinear.
void resize_chw(const float* in, int C, int H, int W, float* out, int Ho, int Wo);

}  // namespace m3vit::rt
