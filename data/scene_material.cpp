// Materials and procedural textures of the synthetic scenes (data/scene_material.h).
#include "data/scene_material.h"

#include <cmath>

namespace m3vit::scene {

namespace {

// Value noise on a 3-D lattice, smooth-stepped trilinear interpolation, in [0, 1).
float value_noise(V3 p, uint64_t key) {
  const float fx = std::floor(p.x), fy = std::floor(p.y), fz = std::floor(p.z);
  const int64_t ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy), iz = static_cast<int64_t>(fz);
  float tx = p.x - fx, ty = p.y - fy, tz = p.z - fz;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  tz = tz * tz * (3 - 2 * tz);
  // One mixing round per lattice corner (this runs a few times per pixel).
  auto v = [&](int64_t a, int64_t b, int64_t c) {
    const uint64_t h = mix64(key ^ (uint64_t(a) * 0x9E3779B185EBCA87ULL) ^ (uint64_t(b) * 0xC2B2AE3D27D4EB4FULL) ^
                             (uint64_t(c) * 0x165667B19E3779F9ULL));
    return static_cast<float>(h >> 40) * (1.f / 16777216.f);
  };
  auto lerp = [](float a, float b, float t) { return a + (b - a) * t; };
  const float x00 = lerp(v(ix, iy, iz), v(ix + 1, iy, iz), tx), x10 = lerp(v(ix, iy + 1, iz), v(ix + 1, iy + 1, iz), tx);
  const float x01 = lerp(v(ix, iy, iz + 1), v(ix + 1, iy, iz + 1), tx);
  const float x11 = lerp(v(ix, iy + 1, iz + 1), v(ix + 1, iy + 1, iz + 1), tx);
  return lerp(lerp(x00, x10, ty), lerp(x01, x11, ty), tz);
}

}  // namespace

V3 albedo(const Material& m, V3 p) {
  const float s = 1.f / m.scale;
  switch (m.pattern) {
    case Pattern::plain: return m.a * (0.9f + 0.2f * value_noise(p * (4.f * s), m.key));
    case Pattern::checker: {
      const int k = static_cast<int>(std::floor(p.x * s)) + static_cast<int>(std::floor(p.y * s)) +
                    static_cast<int>(std::floor(p.z * s));
      return (k & 1) ? m.b : m.a;
    }
    case Pattern::stripes: return (static_cast<int>(std::floor((p.x + p.y + p.z) * s)) & 1) ? m.b : m.a;
    case Pattern::noise: {
      const float v = 0.65f * value_noise(p * s, m.key) + 0.35f * value_noise(p * (3.1f * s), m.key + 1);
      return m.a + (m.b - m.a) * v;
    }
  }
  return m.a;
}

V3 hsv(float h, float s, float v) {
  h = h - std::floor(h);
  const float i = std::floor(h * 6), f = h * 6 - i;
  const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (static_cast<int>(i) % 6) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

Material random_material(Rng& rng, uint64_t key) {
  Material m;
  const float hue = static_cast<float>(rng.uniform());
  m.a = hsv(hue, static_cast<float>(rng.uniform(0.35, 0.9)), static_cast<float>(rng.uniform(0.45, 0.95)));
  m.b = hsv(hue + static_cast<float>(rng.uniform(0.05, 0.5)), static_cast<float>(rng.uniform(0.2, 0.8)),
            static_cast<float>(rng.uniform(0.25, 0.9)));
  const int pat = rng.below(4);
  m.pattern = pat == 0 ? Pattern::plain : pat == 1 ? Pattern::checker : pat == 2 ? Pattern::stripes : Pattern::noise;
  m.scale = static_cast<float>(rng.uniform(0.08, 0.3));
  m.key = key;
  return m;
}

}  // namespace m3vit::scene
