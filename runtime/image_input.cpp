#include "runtime/image_input.h"

#include <cstring>

#include "common/errors.h"
#include "common/imagenet.h"
#include "runtime/ops/resize.h"

namespace m3vit::rt {

namespace {
std::string hw(int h, int w) { return std::to_string(w) + "x" + std::to_string(h); }  // width x height, as the CLI
}  // namespace

std::vector<float> image_to_input(const Image8& img, const ModelConfig& cfg, bool resize, const std::string& origin,
                                  const std::string& resize_hint) {
  if (img.channels != 3) throw ShapeError("image " + origin + " has " + std::to_string(img.channels) + " channels, expected RGB");
  if ((img.height != cfg.img_h || img.width != cfg.img_w) && !resize)
    throw ShapeError("image " + origin + " is " + hw(img.height, img.width) + " but model " + cfg.name + " takes " +
                     hw(cfg.img_h, cfg.img_w) + " (" + resize_hint + ")");
  // HWC uint8 -> CHW in [0, 1], then the model's size (a copy when the sizes match), then mean/std.
  const int64_t in_plane = static_cast<int64_t>(img.height) * img.width;
  std::vector<float> chw(static_cast<size_t>(3 * in_plane));
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < in_plane; ++i) chw[c * in_plane + i] = img.pixels[i * 3 + c] / 255.f;
  std::vector<float> x(static_cast<size_t>(3) * cfg.img_h * cfg.img_w);
  resize_chw(chw.data(), 3, img.height, img.width, x.data(), cfg.img_h, cfg.img_w);
  const int64_t plane = static_cast<int64_t>(cfg.img_h) * cfg.img_w;
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < plane; ++i) x[c * plane + i] = (x[c * plane + i] - kImageNetMean[c]) / kImageNetStd[c];
  return x;
}

std::vector<float> npy_to_input(const OwnedTensor& t, const ModelConfig& cfg, const std::string& origin) {
  std::vector<int64_t> shape = t.shape;
  if (shape.size() == 4 && shape[0] == 1) shape.erase(shape.begin());
  if (shape.size() != 3 || shape[0] != cfg.in_chans || shape[1] != cfg.img_h || shape[2] != cfg.img_w)
    throw ShapeError("input " + origin + " has shape " + shape_str(t.shape) + "; model " + cfg.name + " takes [" +
                     std::to_string(cfg.in_chans) + ", " + std::to_string(cfg.img_h) + ", " + std::to_string(cfg.img_w) +
                     "] (or with a leading 1)");
  std::vector<float> x(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::F32) {
    std::memcpy(x.data(), t.bytes.data(), x.size() * 4);
  } else if (t.dtype == DType::F64) {
    const double* d = reinterpret_cast<const double*>(t.bytes.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(d[i]);
  } else {
    throw FormatError("input " + origin + " has dtype " + dtype_name(t.dtype) + "; expected float32 or float64");
  }
  return x;  // NaN/Inf are refused by Engine::run, naming the element
}

std::vector<float> read_image_input(const std::string& path, const ModelConfig& cfg, bool resize) {
  return image_to_input(read_image(path, 3), cfg, resize, path);
}

}  // namespace m3vit::rt
