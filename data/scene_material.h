// Surface colour of the synthetic scenes: a material is two colours and a procedural pattern
// (plain with faint noise, checker, stripes, or value noise blending the two), evaluated at a point.
// Colours are linear RGB in [0, 1]; the renderer multiplies the albedo by the light and scales to 8 bits.
#pragma once

#include <cstdint>

#include "data/rng.h"
#include "data/scene_geometry.h"

namespace m3vit::scene {

enum class Pattern { plain, checker, stripes, noise };

struct Material {
  V3 a{0.5f, 0.5f, 0.5f}, b{0.3f, 0.3f, 0.3f};  // base and second colour (checker/stripes)
  Pattern pattern = Pattern::plain;
  float scale = 0.25f;  // pattern period in metres
  uint64_t key = 0;     // noise lattice key
};

// Albedo of `m` at `p`, in metres in the pattern's frame: world coordinates for floor and wall, the
// offset from the primitive's anchor (Shape::c) for objects, so that a texture moves with its object.
V3 albedo(const Material& m, V3 p);

// HSV to RGB, all in [0, 1]; the hue wraps around.
V3 hsv(float h, float s, float v);

// A random material (eight draws from `rng`): hue, saturation and value of both colours, the pattern and
// its period; `key` seeds the noise lattice. Some draws are arguments of one call, whose evaluation
// order C++ leaves to the compiler: the same seed gives the same scenes only with the same compiler.
Material random_material(Rng& rng, uint64_t key);

}  // namespace m3vit::scene
