// Synthetic data set and its on-disk caches in the authors' PASCAL_MT / NYUD_MT layouts (data/synthetic.h).
#include "data/synthetic.h"

#include <stb_image_write.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"
#include "common/progress.h"
#include "data/label_png.h"
#include "data/mat_file.h"
#include "data/scene.h"
#include "io/npy.h"

namespace m3vit {

namespace {

Image8 to_image8(const ImageF& rgb) {
  if (rgb.c != 3) throw ShapeError("expected an RGB image [3,H,W], got " + shape_of(rgb));
  Image8 img;
  img.width = rgb.w;
  img.height = rgb.h;
  img.channels = 3;
  img.pixels.resize(rgb.plane_size() * 3);
  const size_t np = rgb.plane_size();
  for (size_t i = 0; i < np; ++i)
    for (int c = 0; c < 3; ++c) {
      const float v = std::round(rgb.data[c * np + i]);
      img.pixels[i * 3 + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  return img;
}

void mkdirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create directory " + dir + ": " + ec.message());
}

void write_text(const std::string& path, const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  write_file_atomic(path, s);
}

// [C,H,W] float planes -> row-major [H,W] or [H,W,C] float32 .npy.
void write_npy_hwc(const std::string& path, const ImageF& m) {
  std::vector<float> hwc(m.size());
  const size_t np = m.plane_size();
  for (size_t k = 0; k < np; ++k)
    for (int c = 0; c < m.c; ++c) hwc[k * m.c + c] = m.data[c * np + k];
  std::vector<int64_t> shape = {m.h, m.w};
  if (m.c > 1) shape.push_back(m.c);
  write_npy(path, DType::F32, shape, hwc.data());
}

void write_pascal_scene(const std::string& dir, const SyntheticScene& sc, int quality) {
  const Sample& s = sc.sample;
  const std::string& id = s.id;
  write_rgb_jpeg(dir + "/JPEGImages/" + id + ".jpg", s.image, quality);
  write_label_png(dir + "/semseg/pascal-context/" + id + ".png", s.label("semseg"));
  write_parts_annotation(dir + "/human_parts/" + id + ".mat", sc.anno);
  // Distilled-normals encoding of PASCAL_MT: v = (n + 1) * 255 / 2, read back as 2v/255 - 1.
  const ImageF& n = s.label("normals");
  ImageF rgb(3, n.h, n.w);
  for (size_t i = 0; i < n.size(); ++i) rgb.data[i] = (n.data[i] + 1.f) * 127.5f;
  write_rgb_png(dir + "/normals_distill/" + id + ".png", rgb);
  ImageF sal = s.label("sal");
  for (float& v : sal.data) v *= 255.f;
  write_label_png(dir + "/sal_distill/" + id + ".png", sal);
  write_mat_matrix_u16(dir + "/pascal-context/trainval/" + id + ".mat", "LabelMap", s.image.h, s.image.w, sc.labelmap);
}

void write_nyud_scene(const std::string& dir, const SyntheticScene& sc, int quality) {
  const Sample& s = sc.sample;
  const std::string& id = s.id;
  write_rgb_jpeg(dir + "/images/" + id + ".jpg", s.image, quality);
  ImageF seg = s.label("semseg");
  for (float& v : seg.data) v += 1.f;  // NYUD stores class + 1; 0 would be "unlabelled"
  write_label_png(dir + "/segmentation/" + id + ".png", seg);
  write_npy_hwc(dir + "/depth/" + id + ".npy", s.label("depth"));
  write_npy_hwc(dir + "/normals/" + id + ".npy", s.label("normals"));
  write_npy_hwc(dir + "/edge/" + id + ".npy", s.label("edge"));
}

}  // namespace

void write_rgb_jpeg(const std::string& path, const ImageF& rgb, int quality) {
  const Image8 img = to_image8(rgb);
  write_atomic(path, [&](const std::string& tmp) {
    if (!stbi_write_jpg(tmp.c_str(), img.width, img.height, 3, img.pixels.data(), quality))
      throw IoError("cannot write JPEG " + path);
  });
}

void write_rgb_png(const std::string& path, const ImageF& rgb) { write_png(path, to_image8(rgb)); }

SyntheticDataset::SyntheticDataset(SyntheticOptions opts) : opts_(std::move(opts)) {
  if (opts_.size < 0) throw ConfigError("synthetic data set size must be >= 0");
  if (opts_.height < 8 || opts_.width < 8)
    throw ConfigError("synthetic image size " + std::to_string(opts_.height) + "x" + std::to_string(opts_.width) +
                      " is below 8x8");
  tasks_ = select_tasks(opts_.tasks, task_names(), "the synthetic data set");
}

std::string SyntheticDataset::sample_id(size_t i) const {
  if (i >= size()) throw ConfigError("synthetic index " + std::to_string(i) + " out of range");
  return synthetic_id(opts_.split, i);
}

Sample SyntheticDataset::get(size_t i) const {
  if (i >= size()) throw ConfigError("synthetic index " + std::to_string(i) + " out of range");
  Sample s = render_synthetic_scene(opts_.seed, opts_.split, i, opts_.height, opts_.width).sample;
  for (auto it = s.labels.begin(); it != s.labels.end();) {
    if (std::find(tasks_.begin(), tasks_.end(), it->first) == tasks_.end()) it = s.labels.erase(it);
    else ++it;
  }
  return s;
}

void cache_synthetic(const SyntheticCacheOptions& o) {
  const bool pascal = o.layout == "pascal";
  if (!pascal && o.layout != "nyud") throw ConfigError("unknown cache layout '" + o.layout + "' (pascal, nyud)");
  if (o.dir.empty()) throw ConfigError("cache_synthetic: no output directory");
  if (o.train < 0 || o.val < 0 || o.train + o.val == 0) throw ConfigError("cache_synthetic: no scenes requested");
  const std::vector<std::string> dirs =
      pascal ? std::vector<std::string>{"JPEGImages", "semseg/pascal-context", "human_parts", "normals_distill",
                                        "sal_distill", "pascal-context/trainval", "ImageSets/Context"}
             : std::vector<std::string>{"images", "segmentation", "depth", "normals", "edge", "gt_sets"};
  for (const auto& d : dirs) mkdirs(o.dir + "/" + d);

  struct Job {
    std::string split;
    int index;
  };
  std::vector<Job> jobs;
  std::vector<std::string> train_ids, val_ids;
  for (int i = 0; i < o.train; ++i) jobs.push_back({"train", i}), train_ids.push_back(synthetic_id("train", i));
  for (int i = 0; i < o.val; ++i) jobs.push_back({"val", i}), val_ids.push_back(synthetic_id("val", i));

  ProgressBar bar("cache " + o.layout, static_cast<int64_t>(jobs.size()), "img");
  std::atomic<int64_t> done{0};
  std::mutex err_mutex, bar_mutex;
  std::string first_error;
  // Scenes are independent: render and write them in parallel (each is a pure function of its key).
#pragma omp parallel for schedule(dynamic)
  for (size_t j = 0; j < jobs.size(); ++j) {
    try {
      const SyntheticScene sc = render_synthetic_scene(o.seed, jobs[j].split, jobs[j].index, o.height, o.width, pascal);
      if (pascal) write_pascal_scene(o.dir, sc, o.jpeg_quality);
      else write_nyud_scene(o.dir, sc, o.jpeg_quality);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(err_mutex);
      if (first_error.empty()) first_error = e.what();
    }
    const int64_t n = ++done;
    std::lock_guard<std::mutex> lock(bar_mutex);
    bar.update(n);
  }
  if (!first_error.empty()) throw IoError("cache_synthetic " + o.dir + ": " + first_error);
  bar.finish();

  const std::string split_dir = o.dir + (pascal ? "/ImageSets/Context/" : "/gt_sets/");
  write_text(split_dir + "train.txt", train_ids);
  write_text(split_dir + "val.txt", val_ids);
  if (pascal) {
    std::vector<std::string> lines = {"# LabelMap ids (semseg + 8 * part) whose normals are valid: every class but the sky"};
    for (int c : synthetic_normals_valid_classes()) lines.push_back(std::to_string(c));
    write_text(o.dir + "/normals_valid_classes.txt", lines);
  }
}

}  // namespace m3vit
