// The authors' training / validation transforms on planar float samples (data/transforms.h).
#include "data/transforms.h"

#include <cmath>
#include <limits>

#include "common/errors.h"
#include "data/rng.h"

namespace m3vit {

AugmentConfig augment_config(const std::string& kind, bool train, int out_h, int out_w) {
  if (out_h <= 0 || out_w <= 0)
    throw ConfigError("input size " + std::to_string(out_h) + "x" + std::to_string(out_w) + " must be positive");
  AugmentConfig c;
  c.out_h = out_h;
  c.out_w = out_w;
  c.train = train;
  if (kind == "nyud") {
    c.discrete = true;  // ScaleNRotate(rots=[0], scales=[1.0, 1.2, 1.5]) (common_config.py:414-416)
  } else if (kind == "pascal" || kind == "synthetic") {
    c.discrete = false;  // ScaleNRotate(rots=(-20, 20), scales=(.75, 1.25)) (common_config.py:422-424)
  } else {
    throw ConfigError("unknown data set kind '" + kind + "' (pascal, nyud, synthetic)");
  }
  return c;
}

AugmentDraw draw_augment(const AugmentConfig& cfg, uint64_t key) {
  AugmentDraw d;
  if (!cfg.train) return d;
  Rng rng(key);
  // Same order as the authors: the flip coin first, then rotation, then scale.
  const double coin = rng.uniform();
  d.flip = cfg.flip && coin < 0.5;
  if (cfg.scale_rotate) {
    if (cfg.discrete) {
      if (cfg.rots.empty() || cfg.scales.empty()) throw ConfigError("augmentation: empty rotation or scale list");
      d.rot = cfg.rots[rng.below(static_cast<int>(cfg.rots.size()))];
      d.scale = cfg.scales[rng.below(static_cast<int>(cfg.scales.size()))];
    } else {
      // custom_transforms.py:36-40: symmetric about 0 (rotation) and 1 (scale) whatever min/max are.
      const double u1 = rng.uniform(), u2 = rng.uniform();
      d.rot = (cfg.rot_max - cfg.rot_min) * u1 - (cfg.rot_max - cfg.rot_min) / 2;
      d.scale = (cfg.scale_max - cfg.scale_min) * u2 - (cfg.scale_max - cfg.scale_min) / 2 + 1;
    }
  }
  return d;
}

Interp augment_interp(const std::string& key) {
  if (key == "image" || key == "normals") return Interp::cubic;
  check_task_name(key);
  return Interp::nearest;
}

float to_uint8_value(float v, bool wrap) {
  if (!std::isfinite(v)) return 0.f;
  if (!wrap) return std::trunc(std::fmin(std::fmax(v, 0.f), 255.f));
  // numpy's float32 -> uint8 cast on x86: truncate to an integer, keep the low 8 bits.
  const double t = std::trunc(static_cast<double>(v));
  if (std::fabs(t) > 9e15) return 0.f;
  const int64_t i = static_cast<int64_t>(t);
  return static_cast<float>(static_cast<uint8_t>(i & 255));
}

Sample transform_sample(Sample s, const AugmentConfig& cfg, uint64_t key) {
  return transform_sample(std::move(s), cfg, draw_augment(cfg, key));
}

Sample transform_sample(Sample s, const AugmentConfig& cfg, const AugmentDraw& d) {
  if (s.normalized) throw ConfigError("sample '" + s.id + "' is already transformed");
  if (s.image.c != 3) throw ShapeError("sample '" + s.id + "': image is " + shape_of(s.image) + ", expected [3, H, W]");
  for (const auto& [task, m] : s.labels)
    if (m.h != s.image.h || m.w != s.image.w || m.c != label_channels(task))
      throw ShapeError("sample '" + s.id + "': " + task + " label is " + shape_of(m) + ", image is " + shape_of(s.image));

  // 1. Horizontal flip (custom_transforms.py:174-194).
  if (cfg.train && d.flip) {
    flip_horizontal(s.image);
    for (auto& [task, m] : s.labels) {
      flip_horizontal(m);
      if (task == "normals")
        for (size_t k = 0; k < m.plane_size(); ++k) m.data[k] = -m.data[k];
    }
  }

  // 2. Scale and rotate about the centre (custom_transforms.py:47-80).
  if (cfg.train && cfg.scale_rotate) {
    const int h = s.image.h, w = s.image.w;
    const Affine2x3 M = rotation_matrix_2d(w / 2.0, h / 2.0, d.rot, d.scale);
    s.image = warp_affine(s.image, M, h, w, augment_interp("image"));
    const double rot_rad = d.rot * 2 * M_PI / 360;
    for (auto& [task, m] : s.labels) {
      if (task == "normals") {  // rotate the in-plane component before warping (:60-66)
        const size_t np = m.plane_size();
        for (size_t k = 0; k < np; ++k) {
          const double nx = m.data[k], ny = m.data[np + k];
          const double phi = std::atan2(nx, ny), r = std::sqrt(nx * nx + ny * ny);
          m.data[k] = static_cast<float>(std::sin(phi + rot_rad) * r);
          m.data[np + k] = static_cast<float>(std::cos(phi + rot_rad) * r);
        }
      }
      m = warp_affine(m, M, h, w, augment_interp(task));
      if (task == "depth")
        for (float& v : m.data) v = static_cast<float>(v / d.scale);
    }
  }

  // 3. Fixed resize (utils/helpers.py:65-90) and normals re-normalisation (custom_transforms.py:131-134).
  s.image = resize(s.image, cfg.out_h, cfg.out_w, augment_interp("image"));
  for (auto& [task, m] : s.labels) {
    m = resize(m, cfg.out_h, cfg.out_w, augment_interp(task));
    if (task == "normals") {
      const float eps = std::numeric_limits<float>::epsilon();
      const size_t np = m.plane_size();
      for (size_t k = 0; k < np; ++k) {
        const float a = m.data[k], b = m.data[np + k], c = m.data[2 * np + k];
        const float n = std::sqrt(a * a + b * b + c * c) + eps;
        m.data[k] = a / n;
        m.data[np + k] = b / n;
        m.data[2 * np + k] = c / n;
      }
    }
  }

  // 4. Ignore regions (custom_transforms.py:243-271).
  for (auto& [task, m] : s.labels) {
    if (task == "normals") {
      const size_t np = m.plane_size();
      for (size_t k = 0; k < np; ++k) {
        const float a = m.data[k], b = m.data[np + k], c = m.data[2 * np + k];
        if (std::sqrt(a * a + b * b + c * c) == 0.f)
          m.data[k] = m.data[np + k] = m.data[2 * np + k] = kIgnoreLabel;
      }
    } else if (task == "human_parts") {
      bool all_zero = true;
      for (float v : m.data) all_zero = all_zero && v == 0.f;
      if (all_zero) std::fill(m.data.begin(), m.data.end(), kIgnoreLabel);
    } else if (task == "depth") {
      for (float& v : m.data)
        if (v == 0.f) v = kIgnoreLabel;
    }
  }

  // 5-6. uint8 cast, / 255, ImageNet normalisation.
  const size_t np = s.image.plane_size();
  for (int c = 0; c < 3; ++c) {
    float* p = s.image.plane(c);
    for (size_t k = 0; k < np; ++k) {
      const float v = to_uint8_value(p[k], cfg.wrap_uint8) / 255.f;
      p[k] = cfg.normalize ? (v - kImageNetMean[c]) / kImageNetStd[c] : v;
    }
  }
  s.normalized = true;
  return s;
}

}  // namespace m3vit
