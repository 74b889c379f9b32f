// Image warps used by augmentation and by prediction resizing, written to match OpenCV's behaviour on
// float images (the authors call cv2.resize / cv2.warpAffine / cv2.flip on float32 arrays:
// data/custom_transforms.py:47-80, 174-194, utils/helpers.py:65-90, evaluation/evaluate_utils.py:307).
// The project has no OpenCV; these are our own implementations of the same sampling rules:
//   resize       half-pixel centres, src = (dst + 0.5) * in/out - 0.5, replicated border;
//                nearest uses src = floor(dst * in/out) (OpenCV's INTER_NEAREST, not NEAREST_EXACT);
//                equal sizes copy the input unchanged.
//   warp_affine  inverse-maps every destination pixel through the inverted 2x3 matrix with OpenCV's
//                fixed-point coordinates (1/1024 steps, rounded to 1/32 of a pixel for linear/cubic,
//                to the nearest pixel for nearest) and a constant 0 border: taps outside the source
//                read 0.
//   cubic        Keys kernel with a = -0.75 (OpenCV's interpolateCubic), 4x4 taps.
// Known differences from OpenCV: we sum taps in float in our own order (last-bit differences), and
// resize never switches to INTER_AREA (OpenCV does for an exact 2x linear shrink, which gives the same
// values up to rounding).
#pragma once

#include "data/sample.h"

namespace m3vit {

enum class Interp { nearest, linear, cubic };
const char* to_string(Interp interp);

// cv2.resize(src, (out_w, out_h), interpolation=interp), each channel independently.
ImageF resize(const ImageF& src, int out_h, int out_w, Interp interp);

// A forward 2x3 affine map in OpenCV's layout: [x'; y'] = [m0 m1 m2; m3 m4 m5] * [x; y; 1].
struct Affine2x3 {
  double m[6] = {1, 0, 0, 0, 1, 0};
};

// cv2.getRotationMatrix2D(center, angle, scale): rotation by angle_deg counter-clockwise on screen
// (image y axis pointing down) and isotropic scaling about (cx, cy).
Affine2x3 rotation_matrix_2d(double cx, double cy, double angle_deg, double scale);

// cv2.warpAffine(src, M, (out_w, out_h), flags=interp), border constant 0.
ImageF warp_affine(const ImageF& src, const Affine2x3& M, int out_h, int out_w, Interp interp);

// cv2.flip(src, 1): mirror left-right, in place.
void flip_horizontal(ImageF& im);

}  // namespace m3vit
