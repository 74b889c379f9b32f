// Augmentation and normalisation exactly as the authors' pipeline (utils/common_config.py:407-456,
// data/custom_transforms.py; docs/DATA.md). Training, in order:
//   1. RandomHorizontalFlip (p = 0.5): every map mirrored, normals x (channel 0) negated.
//   2. ScaleNRotate: one (rot, scale) per sample, cv2.getRotationMatrix2D about (w/2, h/2) and
//      cv2.warpAffine to the same size, constant 0 border. PASCAL: rot = 40u - 20 degrees,
//      scale = 0.5u + 0.75 (the authors' formula (max-min)u - (max-min)/2 (+1)); NYUD: rot 0,
//      scale uniform from {1.0, 1.2, 1.5}. Normals: in-plane part rotated first,
//      phi = atan2(nx, ny), nx = r sin(phi + rot), ny = r cos(phi + rot). Depth divided by the scale.
//   3. FixedResize to (out_h, out_w) (squash); normals re-normalised, n / (|n| + float32 eps).
//   4. AddIgnoreRegions: zero normals -> 255 (3 channels), all-zero human_parts -> 255, depth 0 -> 255.
//   5. ToTensor: image cast to uint8 (values truncated; out-of-range cubic values wrap, quirk Q12),
//      then / 255.
//   6. Normalize with ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
// Validation: steps 3-6. Interpolation per key (both steps 2 and 3): image and normals cubic; semseg,
// human_parts, sal, edge, depth nearest (authors' FLAGVALS, utils/config.py:26-91).
// Random draws come from a key (data/rng.h), e.g. hash(seed, epoch, index): deterministic per sample
// and independent of threads; not numpy's stream, so not the authors' exact draws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/imagenet.h"
#include "data/image_ops.h"
#include "data/sample.h"

namespace m3vit {

struct AugmentConfig {
  int out_h = 512, out_w = 512;  // FixedResize target (PASCAL 512x512, NYUD 480x640)
  bool train = false;            // steps 1-2 on (false: validation transform)
  bool flip = true;              // step 1 (train only)
  bool scale_rotate = true;      // step 2 (train only)
  bool discrete = false;         // true: rot/scale drawn from the lists (NYUD); false: ranges (PASCAL)
  double rot_min = -20, rot_max = 20;       // degrees
  double scale_min = 0.75, scale_max = 1.25;
  std::vector<double> rots = {0.0}, scales = {1.0, 1.2, 1.5};
  bool wrap_uint8 = true;   // authors' uint8 cast (wrap); false clamps to 0..255 instead
  bool normalize = true;    // step 6
};

// The authors' recipe for a data set kind ("pascal", "nyud"; "synthetic" uses the PASCAL recipe).
AugmentConfig augment_config(const std::string& kind, bool train, int out_h, int out_w);

// The random decisions for one sample.
struct AugmentDraw {
  bool flip = false;
  double rot = 0;    // degrees, counter-clockwise
  double scale = 1;
};
AugmentDraw draw_augment(const AugmentConfig& cfg, uint64_t key);

// Applies the pipeline to a raw sample (data/sample.h conventions) and returns the transformed one:
// image [3,out_h,out_w] normalised, labels at the same size with the ignore regions set.
Sample transform_sample(Sample s, const AugmentConfig& cfg, const AugmentDraw& draw);
Sample transform_sample(Sample s, const AugmentConfig& cfg, uint64_t key);

// Interpolation the authors use for a key ("image" or a task name) in augmentation and resizing.
Interp augment_interp(const std::string& key);

// The uint8 cast of ToTensor on one value: truncation towards zero, then modulo 256 (wrap) or clamp.
float to_uint8_value(float v, bool wrap);

}  // namespace m3vit
