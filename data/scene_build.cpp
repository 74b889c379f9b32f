// Building a random synthetic scene (data/scene_build.h): camera, room, light, then people and
// primitives placed on the floor without overlapping footprints.
#include "data/scene_build.h"

#include <algorithm>
#include <cmath>

#include "data/rng.h"

namespace m3vit::scene {

namespace {

// A jointed person of 16 capsules in a walking pose, standing on the floor at (px, pz), facing `yaw`,
// `s` metres tall, labelled as instance `inst`; `key` seeds the noise of its materials.
Group make_person(Rng& rng, float px, float pz, float yaw, float s, int inst, uint64_t key) {
  Group g;
  const float cyaw = std::cos(yaw), syaw = std::sin(yaw);
  auto world = [&](V3 l) { return V3{px + cyaw * l.x + syaw * l.z, l.y, pz - syaw * l.x + cyaw * l.z}; };
  Material skin, shirt, pants;
  skin.a = hsv(static_cast<float>(rng.uniform(0.02, 0.1)), static_cast<float>(rng.uniform(0.25, 0.6)),
               static_cast<float>(rng.uniform(0.35, 0.95)));
  skin.pattern = Pattern::plain;
  skin.scale = 0.1f;
  skin.key = key + 11;
  shirt = random_material(rng, key + 12);
  pants = random_material(rng, key + 13);
  pants.a = pants.a * 0.6f;
  std::vector<Prim> caps;
  auto capsule = [&](V3 a, V3 b, float r, int part, const Material& m) {
    Prim p;
    p.kind = Kind::capsule;
    p.cls = kPersonCls;
    p.inst = inst;
    p.fine_part = part;
    p.c = a;
    p.e = b;
    p.r = r;
    p.mat = m;
    caps.push_back(p);
  };
  const float leg = static_cast<float>(rng.uniform(-0.45, 0.45));  // swing (rad), walking gait
  const float leg_r = -leg * static_cast<float>(rng.uniform(0.5, 1.0));
  const float knee_l = static_cast<float>(rng.uniform(0.0, 0.6)), knee_r = static_cast<float>(rng.uniform(0.0, 0.6));
  const float arm_l = -leg * static_cast<float>(rng.uniform(0.5, 1.2)), arm_r = -leg_r * static_cast<float>(rng.uniform(0.5, 1.2));
  const float abd_l = static_cast<float>(rng.uniform(0.08, 0.5)), abd_r = static_cast<float>(rng.uniform(0.08, 0.5));
  const float elb_l = static_cast<float>(rng.uniform(0.0, 1.2)), elb_r = static_cast<float>(rng.uniform(0.0, 1.2));
  for (int side = 0; side < 2; ++side) {  // 0 = left (+x), 1 = right (-x)
    const float sx = side == 0 ? 1.f : -1.f;
    // Legs: swing about the lateral axis; the knee bends backwards.
    const float a = side == 0 ? leg : leg_r, k = side == 0 ? knee_l : knee_r;
    const V3 hip{sx * 0.085f * s, 0.52f * s, 0};
    const V3 knee = hip + V3{0, -std::cos(a), std::sin(a)} * (0.245f * s);
    const V3 ankle = knee + V3{0, -std::cos(a - k), std::sin(a - k)} * (0.235f * s);
    capsule(hip, knee, 0.06f * s, side == 0 ? 7 : 8, pants);
    capsule(knee, ankle, 0.045f * s, side == 0 ? 9 : 10, pants);
    capsule(ankle, ankle + V3{0, -0.01f * s, 0.09f * s}, 0.035f * s, side == 0 ? 9 : 10, pants);  // foot
    // Arms: swing opposite to the leg, abducted sideways; the elbow bends forwards.
    const float g = side == 0 ? arm_l : arm_r, ab = side == 0 ? abd_l : abd_r, el = side == 0 ? elb_l : elb_r;
    const V3 sh{sx * 0.2f * s, 0.79f * s, 0};
    const V3 d1 = normalize({sx * std::sin(ab), -std::cos(ab) * std::cos(g), std::cos(ab) * std::sin(g)});
    const V3 elbow = sh + d1 * (0.18f * s);
    const V3 d2 = normalize({sx * std::sin(ab), -std::cos(ab) * std::cos(g + el), std::cos(ab) * std::sin(g + el)});
    const V3 wrist = elbow + d2 * (0.17f * s);
    capsule(sh, elbow, 0.042f * s, side == 0 ? 3 : 4, shirt);
    capsule(elbow, wrist, 0.034f * s, side == 0 ? 5 : 6, skin);
    capsule(wrist, wrist + d2 * (0.06f * s), 0.03f * s, side == 0 ? 5 : 6, skin);  // hand
  }
  capsule({0, 0.55f * s, 0}, {0, 0.74f * s, 0}, 0.105f * s, 2, shirt);                 // torso
  capsule({-0.17f * s, 0.79f * s, 0}, {0.17f * s, 0.79f * s, 0}, 0.055f * s, 2, shirt);  // shoulders
  capsule({0, 0.8f * s, 0}, {0, 0.865f * s, 0}, 0.04f * s, 2, skin);                     // neck
  capsule({0, 0.925f * s, 0.005f * s}, {0, 0.935f * s, 0}, 0.07f * s, 1, skin);          // head
  // Stand on the floor: lift so that the lowest point touches y = 0.
  float low = INFINITY;
  for (const Prim& p : caps) low = std::min({low, p.c.y - p.r, p.e.y - p.r});
  V3 lo{INFINITY, INFINITY, INFINITY}, hi{-INFINITY, -INFINITY, -INFINITY};
  for (Prim& p : caps) {
    p.c.y -= low;
    p.e.y -= low;
    p.c = world(p.c);
    p.e = world(p.e);
    for (V3 q : {p.c, p.e}) {
      lo = {std::min(lo.x, q.x - p.r), std::min(lo.y, q.y - p.r), std::min(lo.z, q.z - p.r)};
      hi = {std::max(hi.x, q.x + p.r), std::max(hi.y, q.y + p.r), std::max(hi.z, q.z + p.r)};
    }
  }
  g.bc = (lo + hi) * 0.5f;
  g.br = std::sqrt(dot(hi - lo, hi - lo)) * 0.5f + 1e-3f;
  g.prims = std::move(caps);
  return g;
}

}  // namespace

Scene make_scene(uint64_t key) {
  Rng rng(key);
  Scene sc;
  // Camera: 1.2-1.8 m high, pitched 3-15 degrees down, yawed up to 8 degrees, 50-65 degree field of view.
  const float height = static_cast<float>(rng.uniform(1.2, 1.8));
  const float pitch = static_cast<float>(rng.uniform(3, 15) * M_PI / 180);
  const float yaw = static_cast<float>(rng.uniform(-8, 8) * M_PI / 180);
  sc.hfov = static_cast<float>(rng.uniform(50, 65) * M_PI / 180);
  sc.cam = {0, height, 0};
  sc.fwd = {std::sin(yaw) * std::cos(pitch), -std::sin(pitch), std::cos(yaw) * std::cos(pitch)};
  sc.right = {std::cos(yaw), 0, -std::sin(yaw)};
  sc.down = {-std::sin(yaw) * std::sin(pitch), -std::cos(pitch), -std::cos(yaw) * std::sin(pitch)};
  // Room.
  sc.wall_z = static_cast<float>(rng.uniform(6, 10));
  sc.wall_h = static_cast<float>(rng.uniform(2.5, 4));
  sc.floor_mat = random_material(rng, key + 1);
  sc.floor_mat.pattern = rng.chance(0.6) ? Pattern::checker : Pattern::noise;
  sc.floor_mat.scale = static_cast<float>(rng.uniform(0.4, 1.0));
  sc.wall_mat = random_material(rng, key + 2);
  sc.wall_mat.pattern = rng.chance(0.5) ? Pattern::noise : Pattern::stripes;
  sc.wall_mat.scale = static_cast<float>(rng.uniform(0.3, 1.2));
  const float tint = static_cast<float>(rng.uniform(-0.05, 0.05));
  sc.sky_lo = {0.78f + tint, 0.84f, 0.93f - tint};
  sc.sky_hi = {0.32f + tint, 0.52f, 0.86f - tint};
  // Sun from above, anywhere in azimuth; ambient share 0.25-0.45; sensor noise 1.5-4 levels.
  const float az = static_cast<float>(rng.uniform(0, 2 * M_PI)), el = static_cast<float>(rng.uniform(30, 70) * M_PI / 180);
  sc.sun = {std::cos(el) * std::cos(az), std::sin(el), std::cos(el) * std::sin(az)};
  sc.ambient = static_cast<float>(rng.uniform(0.25, 0.45));
  sc.noise_sigma = static_cast<float>(rng.uniform(1.5, 4));

  // Objects on the floor, without overlapping footprints, inside the view.
  const int n_objects = 2 + rng.below(4);
  const int n_persons = rng.chance(0.65) ? (rng.chance(0.2) ? 2 : 1) : 0;
  struct Foot {
    float x, z, r;
  };
  std::vector<Foot> feet;
  const float tan_half = std::tan(sc.hfov / 2);
  // A free spot on the floor for a footprint of `radius` (up to 40 tries): in view, clear of the wall and
  // of every footprint placed so far. Without one the instance is left out.
  auto place = [&](float radius, float& x, float& z) {
    for (int attempt = 0; attempt < 40; ++attempt) {
      const float zc = static_cast<float>(rng.uniform(2.5, std::max(2.6, sc.wall_z - 0.6 - radius)));
      const float u = static_cast<float>(rng.uniform(-0.8, 0.8)) * zc * tan_half;
      x = u * std::cos(yaw) + zc * std::sin(yaw);
      z = -u * std::sin(yaw) + zc * std::cos(yaw);
      if (z + radius > sc.wall_z - 0.05f) continue;
      bool ok = true;
      for (const Foot& f : feet)
        if (std::hypot(f.x - x, f.z - z) < f.r + radius + 0.05f) ok = false;
      if (ok) {
        feet.push_back({x, z, radius});
        return true;
      }
    }
    return false;
  };
  for (int i = 0; i < n_persons; ++i) {
    const float s = static_cast<float>(rng.uniform(1.55, 1.9));
    const float face = static_cast<float>(rng.uniform(-M_PI, M_PI));
    float x, z;
    const uint64_t pkey = hash_key({key, 100, uint64_t(i)});
    if (!place(0.38f * s, x, z)) continue;
    sc.groups.push_back(make_person(rng, x, z, face, s, sc.instances, pkey));
    sc.inst_class.push_back(kPersonCls);
    ++sc.instances;
  }
  for (int i = 0; i < n_objects; ++i) {
    Prim p;
    const int kind = rng.below(4);
    p.mat = random_material(rng, hash_key({key, 200, uint64_t(i)}));
    float foot = 0;
    if (kind == 0) {
      p.kind = Kind::sphere;
      p.cls = kSphere;
      p.r = static_cast<float>(rng.uniform(0.25, 0.7));
      foot = p.r;
    } else if (kind == 1) {
      p.kind = Kind::box;
      p.cls = kBox;
      p.half = {static_cast<float>(rng.uniform(0.2, 0.6)), static_cast<float>(rng.uniform(0.2, 0.7)),
                static_cast<float>(rng.uniform(0.2, 0.6))};
      const float a = static_cast<float>(rng.uniform(0, M_PI / 2));
      p.cy = std::cos(a);
      p.sy = std::sin(a);
      foot = std::hypot(p.half.x, p.half.z);
    } else if (kind == 2) {
      p.kind = Kind::cylinder;
      p.cls = kCylinder;
      p.r = static_cast<float>(rng.uniform(0.15, 0.45));
      p.h = static_cast<float>(rng.uniform(0.4, 1.6));
      foot = p.r;
    } else {
      p.kind = Kind::cone;
      p.cls = kCone;
      p.r = static_cast<float>(rng.uniform(0.2, 0.5));
      p.h = static_cast<float>(rng.uniform(0.5, 1.4));
      foot = p.r;
    }
    float x, z;
    if (!place(foot, x, z)) continue;
    if (p.kind == Kind::sphere) p.c = {x, p.r, z};
    else if (p.kind == Kind::box) p.c = {x, p.half.y, z};
    else p.c = {x, 0, z};
    p.inst = sc.instances++;
    sc.inst_class.push_back(p.cls);
    Group g;
    g.bc = p.kind == Kind::box ? p.c : V3{p.c.x, p.kind == Kind::sphere ? p.c.y : p.h * 0.5f, p.c.z};
    g.br = p.kind == Kind::box ? std::sqrt(dot(p.half, p.half)) : (p.kind == Kind::sphere ? p.r : std::hypot(p.r, p.h));
    g.br += 1e-3f;
    g.prims.push_back(p);
    sc.groups.push_back(std::move(g));
  }
  return sc;
}

}  // namespace m3vit::scene
