// One multi-task sample, torch-free: an RGB image and, per task, a dense label map, all planar float.
// Conventions follow the authors' data classes (data/pascal_context.py, data/nyud.py) and transforms
// (data/custom_transforms.py); see docs/DATA.md.
//
// Raw sample (as a Dataset returns it, original resolution):
//   image        [3,H,W] RGB 0..255
//   semseg       [1,H,W] class id, 255 = ignore
//   human_parts  [1,H,W] 0 background, 1..6 head/torso/upper arm/lower arm/upper leg/lower leg
//   sal          [1,H,W] {0,1}
//   normals      [3,H,W] unit vectors; the zero vector marks an invalid pixel
//   edge         [1,H,W] {0,1}
//   depth        [1,H,W] metres; 0 marks an invalid pixel
// After the transform (data/transforms.h, AddIgnoreRegions of the authors) invalid normals are 255 in all
// three channels, invalid depth is 255, and a human_parts map without any part is all 255.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace m3vit {

// The ignore value of every label map after the transform (authors' AddIgnoreRegions, CE ignore_index).
constexpr float kIgnoreLabel = 255.f;

// A float image in planar layout [c, h, w], row-major inside each plane.
struct ImageF {
  int c = 0, h = 0, w = 0;
  std::vector<float> data;

  ImageF() = default;
  ImageF(int channels, int height, int width, float fill = 0.f)
      : c(channels), h(height), w(width), data(static_cast<size_t>(channels) * height * width, fill) {}

  size_t plane_size() const { return static_cast<size_t>(h) * w; }
  size_t size() const { return data.size(); }
  bool empty() const { return data.empty(); }
  float* plane(int ch) { return data.data() + ch * plane_size(); }
  const float* plane(int ch) const { return data.data() + ch * plane_size(); }
  float& at(int ch, int y, int x) { return data[(static_cast<size_t>(ch) * h + y) * w + x]; }
  float at(int ch, int y, int x) const { return data[(static_cast<size_t>(ch) * h + y) * w + x]; }
  bool same_shape(const ImageF& o) const { return c == o.c && h == o.h && w == o.w; }
};

std::string shape_of(const ImageF& im);  // "[3, 96, 128]"

// The six task names are core/config.h task_names() / is_task_name().
// Throws ConfigError naming the task and the known ones.
void check_task_name(const std::string& task);
// Channels of a task's label map: normals 3, every other task 1.
int label_channels(const std::string& task);

struct Sample {
  std::string id;                        // file stem of the sample ("2008_000002", "syn_train_000007")
  int orig_h = 0, orig_w = 0;            // original resolution (authors' meta['im_size'])
  ImageF image;                          // [3,H,W]: RGB 0..255 raw, ImageNet-normalised after the transform
  bool normalized = false;               // true once transform_sample ran (image then /255, ImageNet-normalised)
  std::map<std::string, ImageF> labels;  // task name -> label map (see the table above)

  bool has(const std::string& task) const { return labels.count(task) != 0; }
  // Throws ConfigError naming the sample and the task if it is missing.
  const ImageF& label(const std::string& task) const;
  ImageF& label(const std::string& task);
};

}  // namespace m3vit
