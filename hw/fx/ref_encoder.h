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

struct EncoderOutput {
  std::vector<float> out;                        // [N, d]
  std::vector<std::vector<float>> block_out;     // per block [N, d] (when requested)
  std::vector<std::vector<int32_t>> topk_idx;    // per MoE layer (block order) [N, k]
  std::vector<std::vector<float>> topk_w;        // per MoE layer [N, k]
};

// `task` selects the routers (multi-gate) or the task embedding (task_cond).
EncoderOutput ref_encoder(const EncoderWeights& w, const uint8_t* image, int task, bool keep_blocks = false);

// Exact GELU, x·Φ(x).
double gelu_exact(double x);

}  // namespace m3vit::hw
