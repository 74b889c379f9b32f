// Error of the fixed-point encoder against the fp32 reference on the same weights and images:
// MSE / MAE / max error of the encoder output (Edge-MoE's testbench accepts MSE <= 0.1 and its
// C simulation reached 0.00151, sharc-lab/Edge-MoE issue #5), the agreement of the top-k routing decisions,
// and the overflow events per layer and unit (wrap-around or saturation).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "hw/fx/encoder_weights.h"
#include "hw/fx/fx_encoder.h"
#include "hw/fx/fx_select.h"
#include "hw/fx/ref_encoder.h"

namespace m3vit::hw {

struct FxCheckOptions {
  int task = 0;
  bool saturate = false;  // Ovf::saturate instead of the vendor default wrap-around
  bool round_weights = false;  // round weights to nearest when converting (default: truncate)
  FxFormat format = FxFormat::a32w16;  // stored activation and weight widths
  FxArith arith = FxArith::ours;       // order of operations: ours or Edge-MoE's
  bool progress = true;   // progress bar on stderr
};

struct FxCheckResult {
  std::string model;
  std::string mode;  // "wrap" | "saturate", + ", weights rounded"
  std::string format = "a32w16", arith = "ours";
  int images = 0;
  double mse = 0, mae = 0, max_abs = 0;
  double ref_mean_square = 0;      // mean of the reference output squared (scale of the signal)
  double routing_agreement = 1;    // fraction of (image, layer, token, choice) with the same expert
  FxOverflows overflows;  // [1 + depth], summed over images
  uint64_t conversion_overflows = 0;
  std::vector<std::pair<std::string, uint64_t>> conversion_by_tensor;
  double seconds_fx = 0, seconds_ref = 0;
  // Measured ranges (fp32 reference, over all images): what the formats' integer bits must hold.
  ActivationRanges ranges;
  double weight_max_abs = 0;  // linear, expert and router weights (the ones W8 narrows)
  double rel_mse() const { return ref_mean_square > 0 ? mse / ref_mean_square : 0; }
  uint64_t total_overflows() const { return hw::total_overflows(overflows); }
};

// Integer bits (sign included, ap_fixed's I) a signed fixed-point type needs to hold |x| <= max_abs:
// the smallest I with 2^(I-1) > max_abs. 11.3 -> 5 ([-16, 16)), 16 -> 6, 0.5 -> 1, 0.3 -> 0.
int signed_int_bits(double max_abs);
// Largest |value| of the weights a W8 format narrows (linear, expert and router weights).
double linear_weight_max_abs(const EncoderWeights& w);

// Images are 8-bit RGB [3, H, W] at the config's input size.
FxCheckResult fx_check(const EncoderWeights& w, const std::vector<std::vector<uint8_t>>& images,
                       const FxCheckOptions& opt);

std::string fx_check_text(const FxCheckResult& r);
std::string fx_check_json(const FxCheckResult& r);

// Smooth pseudo-random test images (sums of random gradients and blobs), [3, H, W], for runs
// without a data set.
std::vector<std::vector<uint8_t>> random_images(int count, int h, int w, uint64_t seed);

}  // namespace m3vit::hw
