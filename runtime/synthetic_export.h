// Model exports with seeded random weights, for benchmarks at sizes no trained model exists for
// (the paper's ViT-S with E = 8..128 experts) and for the torch-free tests. The weights are
// variance-preserving (linears U(±√(3/fan_in)), head convs U(±√(6/fan_in)), norms near 1, BN
// variances in [0.5, 1.5], routers U(±1)), so activations stay O(1) through the whole model and
// routing is as spread out as an untrained router's. The file is a normal m3vit-export-v1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace m3vit::rt {

// Writes the export atomically. If `poison` names a tensor, its middle element is set to
// poison_value (for tests of the load-time checks).
void write_synthetic_export(const ModelConfig& cfg, const std::string& path, uint32_t seed,
                            const std::string& poison = "", float poison_value = 0.f);

// A normalised-looking input image [3, H, W]: N(0, 1) values.
std::vector<float> synthetic_image(const ModelConfig& cfg, uint32_t seed);

}  // namespace m3vit::rt
