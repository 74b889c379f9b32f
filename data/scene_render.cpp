// Ray caster for the synthetic scenes (data/scene_render.h): per pixel, the nearest of floor, wall and
// objects, shaded by the sun (with a shadow ray) and ambient light, plus every task's label.
#include "data/scene_render.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/edge_maps.h"
#include "data/rng.h"

namespace m3vit::scene {

namespace {

struct Hit {
  float t = INFINITY;
  V3 n;
  const Prim* prim = nullptr;
};

// Nearest object hit (floor and wall excluded) closer than min(tmax, hit.t); it replaces `hit`. With
// `any` (shadow rays) the first hit found ends the search and no normal is computed.
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
      if (hit_shape(o, d, p, std::min(tmax, hit.t), t, any ? nullptr : &n)) {
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

// The PASCAL-Part struct of a rendered scene, from its per-pixel instance map [H*W] (-1 = none) and
// fine person-part map [H*W] (0 = none).
PartsAnnotation annotate(const Scene& sc, const std::vector<int>& inst, const std::vector<int>& fine,
                         const std::string& id, int H, int W) {
  const size_t np = static_cast<size_t>(H) * W;
  PartsAnnotation anno;
  anno.imname = id;
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
    anno.objects.push_back(std::move(o));
  }
  return anno;
}

}  // namespace

SyntheticScene render_scene(const Scene& sc, uint64_t noise_key, const std::string& id, int H, int W,
                            bool with_annotation) {
  SyntheticScene out;
  Sample& s = out.sample;
  s.id = id;
  s.orig_h = H;
  s.orig_w = W;
  s.image = ImageF(3, H, W);
  ImageF semseg(1, H, W), parts(1, H, W), sal(1, H, W), normals(3, H, W), depth(1, H, W);
  // Per pixel [H*W]: foreground instance (-1 = none) and fine person part (0 = none).
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
        const uint64_t h = mix64(noise_key ^ ((k * 3 + c) * 0x9E3779B97F4A7C15ULL));
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

  if (with_annotation) out.anno = annotate(sc, inst, fine, s.id, H, W);
  return out;
}

}  // namespace m3vit::scene
