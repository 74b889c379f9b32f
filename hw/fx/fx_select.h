// The fixed-point encoder with its number format, overflow mode and order of operations chosen at
// run time (`m3vit hw --fixed-point --fx-format F --saturate --fx-arith A`): one of the eight
// compiled encoders FxEncoder<Ovf, FxFormat> (hw/fx/fx_encoder.h), with its weights converted once,
// behind one function.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "hw/fx/encoder_weights.h"
#include "hw/fx/fx_encoder.h"

namespace m3vit::hw {

struct FxOptions {
  FxFormat format = FxFormat::a32w16;
  bool saturate = false;       // Ovf::saturate instead of the vendor default wrap-around
  bool round_weights = false;  // round weights to nearest when converting (default: truncate)
  FxArith arith = FxArith::ours;
};

struct FxSelected {
  // Runs one 8-bit RGB image [3, H, W]; returns the encoder output [N, d]. One encoder (one set of
  // on-chip memories) serves all calls, so call it from one thread at a time.
  std::function<std::vector<float>(const uint8_t* image, FxRunInfo* info)> run;
  uint64_t conversion_overflows = 0;                                 // weights outside their format
  std::vector<std::pair<std::string, uint64_t>> overflow_by_tensor;  // only tensors with overflows
};

// Converts the weights of task `task` to the chosen format and builds the encoder.
FxSelected select_fx_encoder(const EncoderWeights& w, int task, const FxOptions& o);

}  // namespace m3vit::hw
