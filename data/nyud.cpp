// NYUD-v2 multi-task loader (data/nyud.h; authors' data/nyud.py).
#include "data/nyud.h"

#include <cmath>
#include <cstring>

#include "common/errors.h"
#include "common/fileutil.h"
#include "data/image_ops.h"
#include "data/label_png.h"
#include "io/npy.h"

namespace m3vit {

namespace {

const std::vector<std::string> kNyudTasks = {"semseg", "normals", "edge", "depth"};

float value_as_float(const OwnedTensor& t, size_t i) {
  const uint8_t* b = t.bytes.data();
  switch (t.dtype) {
    case DType::F32: { float v; std::memcpy(&v, b + 4 * i, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, b + 8 * i, 8); return static_cast<float>(v); }
    case DType::I64: { int64_t v; std::memcpy(&v, b + 8 * i, 8); return static_cast<float>(v); }
    case DType::I32: { int32_t v; std::memcpy(&v, b + 4 * i, 4); return static_cast<float>(v); }
    case DType::I16: { int16_t v; std::memcpy(&v, b + 2 * i, 2); return static_cast<float>(v); }
    case DType::I8: return static_cast<float>(static_cast<int8_t>(b[i]));
    case DType::U8: case DType::BOOL: return static_cast<float>(b[i]);
    case DType::F16: {
      uint16_t h; std::memcpy(&h, b + 2 * i, 2);
      const int e = (h >> 10) & 31, m = h & 1023;
      const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                        : e == 31 ? (m ? NAN : INFINITY)
                                  : std::ldexp(static_cast<float>(m | 1024), e - 25);
      return (h & 0x8000) ? -mag : mag;
    }
    default: return NAN;
  }
}

void fit_to_image(ImageF& label, int h, int w, Interp interp) {
  if (label.h != h || label.w != w) label = resize(label, h, w, interp);
}

}  // namespace

ImageF read_npy_label(const std::string& path, int channels) {
  const OwnedTensor t = read_npy(path);
  if (t.dtype == DType::BF16) throw FormatError(path + ": bfloat16 labels are not supported");
  const auto& s = t.shape;
  const bool ok = channels == 1 ? (s.size() == 2 || (s.size() == 3 && s[2] == 1)) : (s.size() == 3 && s[2] == channels);
  if (!ok || s[0] <= 0 || s[1] <= 0)
    throw ShapeError(path + ": shape " + shape_str(s) + ", expected [H, W" + (channels == 1 ? "]" : ", 3]"));
  const int h = static_cast<int>(s[0]), w = static_cast<int>(s[1]);
  ImageF out(channels, h, w);
  const size_t np = out.plane_size();
  for (size_t k = 0; k < np; ++k)  // HWC -> CHW
    for (int c = 0; c < channels; ++c) out.data[c * np + k] = value_as_float(t, k * channels + c);
  return out;
}

NyudDataset::NyudDataset(NyudOptions opts) : opts_(std::move(opts)) {
  if (opts_.root.empty()) throw ConfigError("NYUD: no data root given");
  tasks_ = select_tasks(opts_.tasks, kNyudTasks, "NYUD");
  const auto ids = read_split_file(opts_.root + "/gt_sets/" + opts_.split + ".txt");
  if (!opts_.skip_bad) {
    for (const auto& id : ids)
      for (const auto& f : required_files(id))
        if (!file_exists(f)) throw IoError("NYUD sample " + id + ": missing file " + f);
    ids_ = ids;
  } else {
    const auto keep = check_samples(ids, "NYUD " + opts_.split, [&](size_t i) { (void)load(ids[i]); }, true, skipped_);
    for (size_t i : keep) ids_.push_back(ids[i]);
  }
}

std::string NyudDataset::path_of(const std::string& dir, const std::string& id, const std::string& ext) const {
  return opts_.root + "/" + dir + "/" + id + ext;
}

std::vector<std::string> NyudDataset::required_files(const std::string& id) const {
  std::vector<std::string> f = {path_of("images", id, ".jpg")};
  for (const auto& t : tasks_) {
    if (t == "semseg") f.push_back(path_of("segmentation", id, ".png"));
    if (t == "depth") f.push_back(path_of("depth", id, ".npy"));
    if (t == "normals") f.push_back(path_of("normals", id, ".npy"));
    if (t == "edge") f.push_back(path_of("edge", id, ".npy"));
  }
  return f;
}

std::string NyudDataset::sample_id(size_t i) const {
  if (i >= ids_.size()) throw ConfigError("NYUD index " + std::to_string(i) + " out of range");
  return ids_[i];
}

Sample NyudDataset::get(size_t i) const { return load(sample_id(i)); }

Sample NyudDataset::load(const std::string& id) const {
  Sample s;
  s.id = id;
  s.image = load_rgb(path_of("images", id, ".jpg"));
  const int H = s.image.h, W = s.image.w;
  s.orig_h = H;
  s.orig_w = W;
  for (const auto& t : tasks_) {
    if (t == "semseg") {
      ImageF m = read_label_png(path_of("segmentation", id, ".png"));
      for (float& v : m.data) v = v == 0.f ? kIgnoreLabel : v - 1.f;  // authors :200-205
      fit_to_image(m, H, W, Interp::nearest);
      s.labels[t] = std::move(m);
    } else if (t == "depth") {
      ImageF d = read_npy_label(path_of("depth", id, ".npy"), 1);
      fit_to_image(d, H, W, Interp::nearest);
      s.labels[t] = std::move(d);
    } else if (t == "normals") {
      ImageF n = read_npy_label(path_of("normals", id, ".npy"), 3);
      fit_to_image(n, H, W, Interp::cubic);
      s.labels[t] = std::move(n);
    } else if (t == "edge") {
      ImageF e = read_npy_label(path_of("edge", id, ".npy"), 1);
      fit_to_image(e, H, W, Interp::nearest);
      s.labels[t] = std::move(e);
    }
  }
  for (const auto& [task, m] : s.labels)
    for (float v : m.data)
      if (!std::isfinite(v)) throw NumericError("NYUD sample " + id + ": " + task + " label has a NaN/Inf value");
  return s;
}

}  // namespace m3vit
