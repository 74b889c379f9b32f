// The synthetic scenes' public entry points (data/scene.h): names and ids, and the one call that turns
// (seed, split, index) into a scene key, builds that scene (data/scene_build.h) and renders it
// (data/scene_render.h).
#include "data/scene.h"

#include <cstdio>

#include "common/errors.h"
#include "data/rng.h"
#include "data/scene_build.h"
#include "data/scene_render.h"

namespace m3vit {

const std::vector<std::string>& synthetic_class_names() {
  static const std::vector<std::string> n = {"background", "floor", "wall", "sphere", "box", "cylinder", "person", "cone"};
  return n;
}

std::string synthetic_id(const std::string& split, uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06llu", static_cast<unsigned long long>(index));
  return "syn_" + split + "_" + buf;
}

std::vector<int> synthetic_normals_valid_classes() {
  std::vector<int> v;
  for (int c = 1; c < kSyntheticClasses; ++c) v.push_back(c);
  for (int p = 1; p <= 6; ++p) v.push_back(scene::kPersonCls + 8 * p);
  return v;
}

SyntheticScene render_synthetic_scene(uint64_t seed, const std::string& split, uint64_t index, int H, int W,
                                      bool with_annotation) {
  if (H < 2 || W < 2) throw ConfigError("synthetic scene size " + std::to_string(H) + "x" + std::to_string(W) + " is too small");
  uint64_t split_key = 0;
  for (char ch : split) split_key = mix64(split_key ^ static_cast<unsigned char>(ch));
  const uint64_t key = hash_key({seed, split_key, index});
  // The key drives every random draw of the scene and its sensor noise.
  return scene::render_scene(scene::make_scene(key), key, synthetic_id(split, index), H, W, with_annotation);
}

}  // namespace m3vit
