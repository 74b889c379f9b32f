// Rendering a synthetic scene description (data/scene_build.h) into the image and every task's label
// map. One primary ray per pixel centre gives every label exactly; one shadow ray towards the sun
// darkens the image only. Label conventions: data/scene.h and data/sample.h.
#pragma once

#include <cstdint>
#include <string>

#include "data/scene.h"
#include "data/scene_build.h"

namespace m3vit::scene {

// Renders `sc` at H x W pixels (H, W >= 2) into a sample named `id`: image [3,H,W] with sensor noise
// keyed by `noise_key`, the six label maps and the LabelMap [H,W]. `with_annotation` also fills the
// PASCAL-Part struct (one object per foreground instance, part masks for persons).
SyntheticScene render_scene(const Scene& sc, uint64_t noise_key, const std::string& id, int H, int W,
                            bool with_annotation);

}  // namespace m3vit::scene
