// Ray caster for the synthetic multi-task scenes (data/scene.h).
// World frame: X right, Y up, Z away from the camera's rest direction; the floor is Y = 0, the back
// wall the plane Z = wall_z up to wall_h. One primary ray per pixel centre gives every label exactly;
// one shadow ray towards the sun darkens the image only.
#include "data/scene.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/errors.h"
#include "data/edge_maps.h"
#include "data/rng.h"

namespace m3vit {

namespace {

struct V3 {
  float x = 0, y = 0, z = 0;
};
V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
V3 operator*(V3 a, float s) { return {a.x * s, a.y * s, a.z * s}; }
float dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
V3 normalize(V3 a) {
  const float n = std::sqrt(dot(a, a));
  return n > 0 ? a * (1.f / n) : a;
}

enum SynClass { kSky = 0, kFloor = 1, kWall = 2, kSphere = 3, kBox = 4, kCylinder = 5, kPersonCls = 6, kCone = 7 };

// Fine person parts (left/right kept apart for the PASCAL-Part struct) and their 6-part ids.
constexpr int kFineParts = 10;
const char* kFinePartName[kFineParts + 1] = {"",      "head",  "torso", "luarm", "ruarm", "llarm",
                                             "rlarm", "luleg", "ruleg", "llleg", "rlleg"};
constexpr int kCoarseOfFine[kFineParts + 1] = {0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6};

enum class Pattern { plain, checker, stripes, noise };

struct Material {
  V3 a{0.5f, 0.5f, 0.5f}, b{0.3f, 0.3f, 0.3f};  // base and second colour (checker/stripes)
  Pattern pattern = Pattern::plain;
  float scale = 0.25f;  // pattern period in metres
  uint64_t key = 0;     // noise lattice key
};

enum class Kind { sphere, box, cylinder, cone, capsule };

struct Prim {
  Kind kind = Kind::sphere;
  int cls = kSphere;
  int inst = -1;       // foreground instance (object or person) index
  int fine_part = 0;   // person capsules only
  V3 c;                // sphere centre / box centre / cylinder & cone base centre / capsule end a
  V3 e;                // capsule end b
  float r = 0.5f;      // radius (sphere, cylinder, cone base, capsule)
  float h = 1.f;       // cylinder / cone height
  V3 half;             // box half extents in its own frame
  float cy = 1, sy = 0;  // box yaw (cos, sin) about Y
  Material mat;
};

struct Hit {
  float t = INFINITY;
  V3 n;
  const Prim* prim = nullptr;
};

constexpr float kEps = 1e-4f;

bool hit_sphere(V3 o, V3 d, V3 c, float r, float tmax, float& t, V3* n) {
  const V3 oc = o - c;
  const float b = dot(oc, d), cc = dot(oc, oc) - r * r, disc = b * b - cc;
  if (disc < 0) return false;
  const float s = std::sqrt(disc);
  float tt = -b - s;
  if (tt < kEps) tt = -b + s;
  if (tt < kEps || tt >= tmax) return false;
  t = tt;
  if (n) *n = (o + d * tt - c) * (1.f / r);
  return true;
}

bool hit_box(V3 o, V3 d, const Prim& p, float tmax, float& t, V3* n) {
  // Into the box frame (rotation about Y by -yaw).
  const V3 q = o - p.c;
  const V3 lo{p.cy * q.x - p.sy * q.z, q.y, p.sy * q.x + p.cy * q.z};
  const V3 ld{p.cy * d.x - p.sy * d.z, d.y, p.sy * d.x + p.cy * d.z};
  float t0 = -INFINITY, t1 = INFINITY;
  int axis = -1;
  float sign = 0;
  const float oo[3] = {lo.x, lo.y, lo.z}, dd[3] = {ld.x, ld.y, ld.z}, hh[3] = {p.half.x, p.half.y, p.half.z};
  for (int k = 0; k < 3; ++k) {
    if (std::fabs(dd[k]) < 1e-12f) {
      if (std::fabs(oo[k]) > hh[k]) return false;
      continue;
    }
    float ta = (-hh[k] - oo[k]) / dd[k], tb = (hh[k] - oo[k]) / dd[k];
    float sg = -1;
    if (ta > tb) std::swap(ta, tb), sg = 1;
    if (ta > t0) t0 = ta, axis = k, sign = sg;
    t1 = std::min(t1, tb);
  }
  if (t0 > t1 || t0 < kEps || t0 >= tmax || axis < 0) return false;
  t = t0;
  if (n) {
    V3 ln{0, 0, 0};
    (axis == 0 ? ln.x : axis == 1 ? ln.y : ln.z) = sign;
    *n = {p.cy * ln.x + p.sy * ln.z, ln.y, -p.sy * ln.x + p.cy * ln.z};  // back to world
  }
  return true;
}

bool hit_cylinder(V3 o, V3 d, const Prim& p, float tmax, float& t, V3* n) {
  bool found = false;
  const float ox = o.x - p.c.x, oz = o.z - p.c.z;
  const float a = d.x * d.x + d.z * d.z;
  if (a > 1e-12f) {
    const float b = ox * d.x + oz * d.z, c = ox * ox + oz * oz - p.r * p.r, disc = b * b - a * c;
    if (disc >= 0) {
      const float tt = (-b - std::sqrt(disc)) / a;
      const float y = o.y + tt * d.y;
      if (tt > kEps && tt < tmax && y >= 0 && y <= p.h) {
        t = tmax = tt;
        if (n) *n = normalize({ox + tt * d.x, 0, oz + tt * d.z});
        found = true;
      }
    }
  }
  if (std::fabs(d.y) > 1e-12f) {  // top cap
    const float tt = (p.h - o.y) / d.y;
    const float x = ox + tt * d.x, z = oz + tt * d.z;
    if (tt > kEps && tt < tmax && x * x + z * z <= p.r * p.r) {
      t = tt;
      if (n) *n = {0, 1, 0};
      found = true;
    }
  }
  return found;
}

bool hit_cone(V3 o, V3 d, const Prim& p, float tmax, float& t, V3* n) {
  const V3 apex{p.c.x, p.h, p.c.z};
  const V3 q = o - apex;
  const float k2 = (p.r / p.h) * (p.r / p.h);
  const float a = d.x * d.x + d.z * d.z - k2 * d.y * d.y;
  const float b = q.x * d.x + q.z * d.z - k2 * q.y * d.y;
  const float c = q.x * q.x + q.z * q.z - k2 * q.y * q.y;
  float roots[2];
  int nr = 0;
  if (std::fabs(a) < 1e-12f) {
    if (std::fabs(b) > 1e-12f) roots[nr++] = -c / (2 * b);
  } else {
    const float disc = b * b - a * c;
    if (disc < 0) return false;
    const float s = std::sqrt(disc);
    roots[0] = (-b - s) / a;
    roots[1] = (-b + s) / a;
    if (roots[0] > roots[1]) std::swap(roots[0], roots[1]);
    nr = 2;
  }
  for (int i = 0; i < nr; ++i) {
    const float tt = roots[i];
    if (tt <= kEps || tt >= tmax) continue;
    const float qy = q.y + tt * d.y;
    if (qy > 0 || qy < -p.h) continue;  // the mirrored nappe or below the floor
    t = tt;
    if (n) {
      const V3 qq = q + d * tt;
      *n = normalize({qq.x, -k2 * qy, qq.z});
    }
    return true;
  }
  return false;
}

bool hit_capsule(V3 o, V3 d, const Prim& p, float tmax, float& t, V3* n) {
  const V3 ba = p.e - p.c, oa = o - p.c;
  const float baba = dot(ba, ba), bard = dot(ba, d), baoa = dot(ba, oa), rdoa = dot(d, oa), oaoa = dot(oa, oa);
  float tt = -1;
  const float a = baba - bard * bard;
  if (a > 1e-10f) {
    const float b = baba * rdoa - baoa * bard, c = baba * oaoa - baoa * baoa - p.r * p.r * baba;
    const float h = b * b - a * c;
    if (h >= 0) {
      const float t_side = (-b - std::sqrt(h)) / a;
      const float y = baoa + t_side * bard;
      if (y > 0 && y < baba) tt = t_side;
    }
  }
  if (tt < 0) {  // end spheres
    float ts;
    float best = INFINITY;
    if (hit_sphere(o, d, p.c, p.r, tmax, ts, nullptr)) best = ts;
    if (hit_sphere(o, d, p.e, p.r, std::min(tmax, best), ts, nullptr)) best = ts;
    if (!std::isfinite(best)) return false;
    tt = best;
  }
  if (tt <= kEps || tt >= tmax) return false;
  t = tt;
  if (n) {
    const V3 pa = o + d * tt - p.c;
    const float hc = baba > 0 ? std::clamp(dot(pa, ba) / baba, 0.f, 1.f) : 0.f;
    *n = normalize(pa - ba * hc);
  }
  return true;
}

bool hit_prim(V3 o, V3 d, const Prim& p, float tmax, float& t, V3* n) {
  switch (p.kind) {
    case Kind::sphere: return hit_sphere(o, d, p.c, p.r, tmax, t, n);
    case Kind::box: return hit_box(o, d, p, tmax, t, n);
    case Kind::cylinder: return hit_cylinder(o, d, p, tmax, t, n);
    case Kind::cone: return hit_cone(o, d, p, tmax, t, n);
    case Kind::capsule: return hit_capsule(o, d, p, tmax, t, n);
  }
  return false;
}

// A group of primitives with a bounding sphere (a person's 13 capsules are tested only if the ray
// meets the bound).
struct Group {
  V3 bc;
  float br = 0;
  std::vector<Prim> prims;
};

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

struct Scene {
  // camera
  V3 cam, right, down, fwd;
  float hfov = 1.0f;
  // room
  float wall_z = 8, wall_h = 3;
  Material floor_mat, wall_mat;
  V3 sky_lo, sky_hi;
  // light
  V3 sun;
  float ambient = 0.35f;
  float noise_sigma = 2.f;  // in 8-bit levels
  std::vector<Group> groups;
  int instances = 0;
  std::vector<int> inst_class;
};

// Adds a jointed person standing at (px, pz), facing `yaw`, `s` metres tall.
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

// Nearest object hit (floor and wall excluded).
bool trace_objects(const Scene& sc, V3 o, V3 d, float tmax, Hit& hit, bool any) {
  bool found = false;
  for (const Group& g : sc.groups) {
    // Skip the group unless the ray's line passes within the bounding sphere ahead of the origin
    // (no square root: the discriminant's sign suffices).
    const V3 oc = o - g.bc;
    const float b = dot(oc, d), c = dot(oc, oc) - g.br * g.br;
    if (c > 0 && (b > 0 || b * b < c)) continue;
    for (const Prim& p : g.prims) {
      float t;
      V3 n;
      if (hit_prim(o, d, p, std::min(tmax, hit.t), t, any ? nullptr : &n)) {
        hit.t = t;
        hit.n = n;
        hit.prim = &p;
        found = true;
        if (any) return true;
      }
    }
  }
  return found;
}

}  // namespace

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
  for (int p = 1; p <= 6; ++p) v.push_back(kPersonCls + 8 * p);
  return v;
}

SyntheticScene render_synthetic_scene(uint64_t seed, const std::string& split, uint64_t index, int H, int W,
                                      bool with_annotation) {
  if (H < 2 || W < 2) throw ConfigError("synthetic scene size " + std::to_string(H) + "x" + std::to_string(W) + " is too small");
  uint64_t split_key = 0;
  for (char ch : split) split_key = mix64(split_key ^ static_cast<unsigned char>(ch));
  const uint64_t key = hash_key({seed, split_key, index});
  const Scene sc = make_scene(key);

  SyntheticScene out;
  Sample& s = out.sample;
  s.id = synthetic_id(split, index);
  s.orig_h = H;
  s.orig_w = W;
  s.image = ImageF(3, H, W);
  ImageF semseg(1, H, W), parts(1, H, W), sal(1, H, W), normals(3, H, W), depth(1, H, W);
  std::vector<int> inst(static_cast<size_t>(H) * W, -1), fine(static_cast<size_t>(H) * W, 0);

  // Pinhole intrinsics scaled with the image: fx = fy = (W/2) / tan(hfov/2), principal point at the centre.
  const float f = 0.5f * W / std::tan(sc.hfov / 2), cx = 0.5f * W, cy = 0.5f * H;
  const size_t np = static_cast<size_t>(H) * W;
  for (int py = 0; py < H; ++py) {
    for (int px = 0; px < W; ++px) {
      const size_t k = static_cast<size_t>(py) * W + px;
      const float xc = (px + 0.5f - cx) / f, yc = (py + 0.5f - cy) / f;
      const V3 D = sc.right * xc + sc.down * yc + sc.fwd;  // camera-frame z = 1
      const float dlen = std::sqrt(dot(D, D));
      const V3 d = D * (1.f / dlen);
      const V3 o = sc.cam;
      // Nearest of floor, wall, objects.
      Hit hit;
      int cls = kSky;
      Material mat;
      if (d.y < -1e-6f) {
        const float t = -o.y / d.y;
        if (o.z + t * d.z < sc.wall_z && t < hit.t) hit.t = t, hit.n = {0, 1, 0}, cls = kFloor, mat = sc.floor_mat;
      }
      if (d.z > 1e-6f) {
        const float t = (sc.wall_z - o.z) / d.z;
        if (o.y + t * d.y <= sc.wall_h && t < hit.t) hit.t = t, hit.n = {0, 0, -1}, cls = kWall, mat = sc.wall_mat;
      }
      Hit obj = hit;
      obj.prim = nullptr;
      if (trace_objects(sc, o, d, hit.t, obj, false) && obj.prim) {
        hit = obj;
        cls = obj.prim->cls;
        mat = obj.prim->mat;
        inst[k] = obj.prim->inst;
        fine[k] = obj.prim->fine_part;
      }
      V3 rgb;
      if (cls == kSky) {
        const float up = std::clamp(-dot(d, V3{0, -1, 0}) * 2.f, 0.f, 1.f);
        rgb = sc.sky_lo + (sc.sky_hi - sc.sky_lo) * up;
      } else {
        const V3 p = o + d * hit.t;
        V3 n = normalize(hit.n);
        if (dot(n, d) > 0) n = n * -1.f;  // always facing the camera
        const V3 tex_p = hit.prim ? p - hit.prim->c : p;
        const V3 alb = albedo(mat, tex_p);
        float lambert = std::max(0.f, dot(n, sc.sun));
        if (lambert > 0) {
          Hit sh;
          if (trace_objects(sc, p + n * 2e-3f, sc.sun, INFINITY, sh, true)) lambert = 0;
        }
        const float shade = sc.ambient + (1.f - sc.ambient) * 1.1f * lambert;
        rgb = alb * shade;
        // Labels: camera-frame normal and z-depth.
        normals.data[k] = dot(n, sc.right);
        normals.data[np + k] = dot(n, sc.down);
        normals.data[2 * np + k] = dot(n, sc.fwd);
        depth.data[k] = hit.t / dlen;
      }
      semseg.data[k] = static_cast<float>(cls);
      parts.data[k] = static_cast<float>(kCoarseOfFine[fine[k]]);
      sal.data[k] = cls >= kSphere ? 1.f : 0.f;
      // Sensor noise per pixel and channel from a hash of (scene, pixel, channel): the sum of four
      // 16-bit uniforms (Irwin-Hall, variance 4/12), scaled to unit variance - close to Gaussian and
      // far cheaper than Box-Muller.
      for (int c = 0; c < 3; ++c) {
        const uint64_t h = mix64(key ^ ((k * 3 + c) * 0x9E3779B97F4A7C15ULL));
        const float u = static_cast<float>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
        const float g = (u * (1.f / 65536.f) - 2.f) * 1.7320508f;
        const float v = (c == 0 ? rgb.x : c == 1 ? rgb.y : rgb.z) * 255.f + sc.noise_sigma * g;
        s.image.data[c * np + k] = std::clamp(std::nearbyint(v), 0.f, 255.f);
      }
    }
  }

  // LabelMap and edges: one-pixel boundaries of the semantic/part map.
  out.labelmap.resize(np);
  std::vector<double> lm(np);
  for (size_t k = 0; k < np; ++k) {
    out.labelmap[k] = static_cast<uint16_t>(semseg.data[k] + 8 * parts.data[k]);
    lm[k] = out.labelmap[k];
  }
  ImageF edge(1, H, W);
  edge.data = label_boundaries(lm, H, W);

  s.labels["semseg"] = std::move(semseg);
  s.labels["human_parts"] = std::move(parts);
  s.labels["sal"] = std::move(sal);
  s.labels["normals"] = std::move(normals);
  s.labels["edge"] = std::move(edge);
  s.labels["depth"] = std::move(depth);

  if (with_annotation) {
    out.anno.imname = s.id;
    for (int i = 0; i < sc.instances; ++i) {
      ObjectAnnotation o;
      const int cls = sc.inst_class[i];
      o.class_name = synthetic_class_names()[cls];
      // Persons carry the VOC person class (15) the PASCAL loader looks for; other objects get ids
      // outside the VOC range so that they can never be mistaken for one.
      o.class_ind = cls == kPersonCls ? 15 : 100 + cls;
      o.h = H;
      o.w = W;
      o.mask.assign(np, 0);
      for (size_t k = 0; k < np; ++k) o.mask[k] = inst[k] == i;
      if (cls == kPersonCls) {
        for (int fp = 1; fp <= kFineParts; ++fp) {
          PartMask pm;
          pm.part_name = kFinePartName[fp];
          pm.h = H;
          pm.w = W;
          pm.mask.assign(np, 0);
          bool any = false;
          for (size_t k = 0; k < np; ++k)
            if (inst[k] == i && fine[k] == fp) pm.mask[k] = 1, any = true;
          if (any) o.parts.push_back(std::move(pm));
        }
      }
      out.anno.objects.push_back(std::move(o));
    }
  }
  return out;
}

}  // namespace m3vit
