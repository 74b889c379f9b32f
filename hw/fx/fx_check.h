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

namespace m3vit::hw {

struct FxCheckOptions {
  int task = 0;
  bool saturate = false;  // Ovf::saturate instead of the vendor default wrap-around
  bool round_weights = false;  // round weights to nearest when converting (default: truncate)
  bool progress = true;   // progress bar on stderr
};

struct FxCheckResult {
  std::string model;
  std::string mode;  // "wrap" | "saturate", + ", weights rounded"
  int images = 0;
  double mse = 0, mae = 0, max_abs = 0;
  double ref_mean_square = 0;      // mean of the reference output squared (scale of the signal)
  double routing_agreement = 1;    // fraction of (image, layer, token, choice) with the same expert
  FxOverflows overflows;  // [1 + depth], summed over images
  uint64_t conversion_overflows = 0;
  std::vector<std::pair<std::string, uint64_t>> conversion_by_tensor;
  double seconds_fx = 0, seconds_ref = 0;
  double rel_mse() const { return ref_mean_square > 0 ? mse / ref_mean_square : 0; }
  uint64_t total_overflows() const { return hw::total_overflows(overflows); }
};

// Images are 8-bit RGB [3, H, W] at the config's input size.
FxCheckResult fx_check(const EncoderWeights& w, const std::vector<std::vector<uint8_t>>& images,
                       const FxCheckOptions& opt);

std::string fx_check_text(const FxCheckResult& r);
std::string fx_check_json(const FxCheckResult& r);

// Smooth pseudo-random test images (sums of random gradients and blobs), [3, H, W], for runs
// without a data set.
std::vector<std::vector<uint8_t>> random_images(int count, int h, int w, uint64_t seed);

}  // namespace m3vit::hw
