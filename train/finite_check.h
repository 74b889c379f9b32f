// NaN / Inf checks shared by the trainer's guards and the checkpoint loader (docs/TRAINING.md, "Bad
// numbers"). Each check is one fused isfinite().all() per tensor and a single synchronisation for the
// whole list, so guarding every step costs a pass over the tensors and nothing more.
#pragma once

#include "common/pch/torch_pch.h"

#include <string>
#include <utility>
#include <vector>

namespace m3vit {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Positions in `named` of the tensors that hold a NaN or an Inf, in order (empty: all finite).
// Undefined and non-floating tensors are skipped: they cannot hold NaN.
std::vector<size_t> non_finite_entries(const NamedTensors& named);

// "2 NaN, 0 Inf of 4096 values": what a message says about a tensor found non-finite.
std::string non_finite_summary(const torch::Tensor& t);

}  // namespace m3vit
