// Ray-shape intersection for the synthetic scenes' ray caster (data/scene_render.cpp): a small float
// 3-vector and exact hits against the five shapes a scene is made of. Pure math, no scene, no colour.
//
// World frame (shared by every data/scene_*.h): metres, X right, Y up, Z away from the camera's rest
// direction; the floor is the plane Y = 0. Floor and wall are planes intersected inline by the renderer;
// everything standing on the floor is one of the shapes below.
#pragma once

#include <cmath>

namespace m3vit::scene {

struct V3 {
  float x = 0, y = 0, z = 0;
};
inline V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline V3 operator*(V3 a, float s) { return {a.x * s, a.y * s, a.z * s}; }
inline float dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline V3 normalize(V3 a) {
  const float n = std::sqrt(dot(a, a));
  return n > 0 ? a * (1.f / n) : a;
}

enum class Kind { sphere, box, cylinder, cone, capsule };

// One shape in world coordinates; which fields count depends on `kind`. Cylinders and cones stand
// upright on the floor, so neither has a bottom cap (a ray from above the floor cannot reach it).
struct Shape {
  Kind kind = Kind::sphere;
  V3 c;                  // sphere centre / box centre / cylinder & cone base centre / capsule end a
  V3 e;                  // capsule end b
  float r = 0.5f;        // radius (sphere, cylinder, cone base, capsule)
  float h = 1.f;         // cylinder / cone height
  V3 half;               // box half extents in its own frame
  float cy = 1, sy = 0;  // box yaw (cos, sin) about Y
};

// Hits closer than this are ignored, so that a shadow ray leaving a surface does not hit that surface.
constexpr float kEps = 1e-4f;

// Every hit_* takes a ray o + t d with d of unit length and returns whether it meets the shape at a
// distance t between kEps and tmax; on a hit it sets `t` to the nearest such distance and, when `n` is
// not null, `*n` to the outward surface normal there (unit length). `t` and `*n` are left alone on a
// miss. Shadow rays pass n = nullptr: they need only whether something is in the way.
bool hit_sphere(V3 o, V3 d, V3 c, float r, float tmax, float& t, V3* n);
bool hit_box(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n);
bool hit_cylinder(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n);
bool hit_cone(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n);
bool hit_capsule(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n);
// Dispatches on p.kind.
bool hit_shape(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n);

}  // namespace m3vit::scene
