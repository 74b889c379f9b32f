// The fp32 reference of the accelerator's encoder: the M³ViT backbone (the authors'
// vision_transformer_moe.py:350-566) written as plain loops, torch-free, so that the fixed-point
// encoder (hw/fx/fx_encoder.h) has a float twin with the same inputs, weights and dataflow. fp32
// values, double accumulators, exact GELU (erf), two-pass softmax; router = softmax over all E, top-k
// probabilities kept without renormalising (noisy_vmoe, noisy_gate_vmoe.py:258-268), ties to the
// lower expert id.
//
// Input: 8-bit RGB pixels [C, H, W] (the camera format of the accelerator); the reference applies
// p/255 and the ImageNet normalisation of the authors' pipeline before the patch embedding.
// Output: block `depth-1`'s tokens [N, d] (no final LayerNorm; the heads have their own).
#pragma once

#include <cstdint>
#include <vector>

#include "hw/fx/encoder_weights.h"

namespace m3vit::hw {

// The largest |value| of each kind of activation the accelerator stores between units, over one
// image: what the integer bits of a stored activation format must hold (docs/HW_MODEL.md "Widths").
struct ActivationRanges {
  double tokens = 0;      // the residual stream: patch embedding + pos, and after each add
  double normed = 0;      // LayerNorm outputs
  double qkv = 0;         // Q, K, V
  double attention = 0;   // A·V, the input of proj
  double hidden = 0;      // GELU outputs of the dense MLP and of the experts (fc2's input)
  double linear_out = 0;  // proj, dense MLP and gate-weighted expert sums before the add
  double largest() const;
  void merge(const ActivationRanges& o);  // the larger of each
};

struct EncoderOutput {
  std::vector<float> out;                        // [N, d]
  std::vector<std::vector<float>> block_out;     // per block [N, d] (when requested)
  std::vector<std::vector<int32_t>> topk_idx;    // per MoE layer (block order) [N, k]
  std::vector<std::vector<float>> topk_w;        // per MoE layer [N, k]
  ActivationRanges ranges;                       // max |value| per stored activation kind
};

// `task` selects the routers (multi-gate) or the task embedding (task_cond).
EncoderOutput ref_encoder(const EncoderWeights& w, const uint8_t* image, int task, bool keep_blocks = false);

// Exact GELU, x·Φ(x).
double gelu_exact(double x);

}  // namespace m3vit::hw
