// Ray-shape intersection (data/scene_geometry.h). Each test solves the ray against the shape's implicit
// surface in closed form; the normal comes from the same solution.
#include "data/scene_geometry.h"

#include <algorithm>
#include <cmath>

namespace m3vit::scene {

// |o + t d - c|^2 = r^2: the nearer root, or the farther one when the ray starts inside.
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

// Slab test in the box's own frame: the last of the three entering planes is the face hit.
bool hit_box(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n) {
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

// Side: (x - cx)^2 + (z - cz)^2 = r^2 with 0 <= y <= h (nearer root only); then the top cap, if nearer.
bool hit_cylinder(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n) {
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

// Double cone x^2 + z^2 = (r/h)^2 y^2 about the apex (q = o - apex), cut to the nappe between apex and
// floor.
bool hit_cone(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n) {
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

// Side: the infinite cylinder about segment c-e, kept where the hit projects inside the segment;
// otherwise the nearer of the two end spheres.
bool hit_capsule(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n) {
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

bool hit_shape(V3 o, V3 d, const Shape& p, float tmax, float& t, V3* n) {
  switch (p.kind) {
    case Kind::sphere: return hit_sphere(o, d, p.c, p.r, tmax, t, n);
    case Kind::box: return hit_box(o, d, p, tmax, t, n);
    case Kind::cylinder: return hit_cylinder(o, d, p, tmax, t, n);
    case Kind::cone: return hit_cone(o, d, p, tmax, t, n);
    case Kind::capsule: return hit_capsule(o, d, p, tmax, t, n);
  }
  return false;
}

}  // namespace m3vit::scene
