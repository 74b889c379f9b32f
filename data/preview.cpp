// Sample / prediction pictures (data/preview.h).
#include "data/preview.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"
#include "data/transforms.h"

namespace m3vit {

namespace {

// The PASCAL VOC colour map: bits of the class id spread over the high bits of R, G, B.
void voc_color(int id, uint8_t* rgb) {
  int r = 0, g = 0, b = 0, c = id;
  for (int j = 0; j < 8; ++j) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  rgb[0] = static_cast<uint8_t>(r);
  rgb[1] = static_cast<uint8_t>(g);
  rgb[2] = static_cast<uint8_t>(b);
}

uint8_t to8(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

Image8 blank(int w, int h) {
  Image8 im;
  im.width = w;
  im.height = h;
  im.channels = 3;
  im.pixels.assign(static_cast<size_t>(w) * h * 3, 255);
  return im;
}

}  // namespace

Image8 colorize_task(const std::string& task, const ImageF& m) {
  check_task_name(task);
  if (m.c != label_channels(task)) throw ShapeError("preview of " + task + ": map is " + shape_of(m));
  Image8 im = blank(m.w, m.h);
  const size_t np = m.plane_size();
  float dmin = INFINITY, dmax = -INFINITY;
  if (task == "depth")
    for (float v : m.data)
      if (v > 0 && v != kIgnoreLabel && std::isfinite(v)) dmin = std::min(dmin, v), dmax = std::max(dmax, v);
  for (size_t k = 0; k < np; ++k) {
    uint8_t* px = &im.pixels[k * 3];
    const float v = m.data[k];
    if (task == "semseg" || task == "human_parts") {
      if (v == kIgnoreLabel) continue;  // white
      voc_color(static_cast<int>(v), px);
    } else if (task == "sal" || task == "edge") {
      px[0] = px[1] = px[2] = to8(v * 255.f);
    } else if (task == "normals") {
      const float a = m.data[k], b = m.data[np + k], c = m.data[2 * np + k];
      if (a == kIgnoreLabel || (a == 0 && b == 0 && c == 0)) {
        px[0] = px[1] = px[2] = 0;
        continue;
      }
      px[0] = to8((a + 1) * 127.5f);
      px[1] = to8((b + 1) * 127.5f);
      px[2] = to8((c + 1) * 127.5f);
    } else {  // depth: near = yellow, far = blue
      if (!(v > 0) || v == kIgnoreLabel || !std::isfinite(v)) {
        px[0] = px[1] = px[2] = 0;
        continue;
      }
      const float t = dmax > dmin ? (v - dmin) / (dmax - dmin) : 0.f;
      px[0] = to8(255 * (1 - t));
      px[1] = to8(220 * (1 - t) + 40 * t);
      px[2] = to8(60 * (1 - t) + 230 * t);
    }
  }
  return im;
}

Image8 sample_image_rgb(const Sample& s) {
  if (s.image.c != 3) throw ShapeError("preview of '" + s.id + "': image is " + shape_of(s.image));
  Image8 im = blank(s.image.w, s.image.h);
  const size_t np = s.image.plane_size();
  for (size_t k = 0; k < np; ++k)
    for (int c = 0; c < 3; ++c) {
      float v = s.image.data[c * np + k];
      if (s.normalized) v = (v * kImageNetStd[c] + kImageNetMean[c]) * 255.f;
      im.pixels[k * 3 + c] = to8(v);
    }
  return im;
}

Image8 hconcat(const std::vector<Image8>& tiles, int gap) {
  if (tiles.empty()) return blank(1, 1);
  const int h = tiles[0].height;
  int w = 0;
  for (const auto& t : tiles) {
    if (t.height != h || t.channels != 3) throw ShapeError("hconcat: tiles of different heights or channels");
    w += t.width;
  }
  w += gap * static_cast<int>(tiles.size() - 1);
  Image8 out = blank(w, h);
  int x0 = 0;
  for (const auto& t : tiles) {
    for (int y = 0; y < h; ++y)
      std::copy_n(&t.pixels[static_cast<size_t>(y) * t.width * 3], t.width * 3,
                  &out.pixels[(static_cast<size_t>(y) * w + x0) * 3]);
    x0 += t.width + gap;
  }
  return out;
}

Image8 vconcat(const std::vector<Image8>& rows, int gap) {
  if (rows.empty()) return blank(1, 1);
  int w = 0, h = 0;
  for (const auto& r : rows) w = std::max(w, r.width), h += r.height;
  h += gap * static_cast<int>(rows.size() - 1);
  Image8 out = blank(w, h);
  int y0 = 0;
  for (const auto& r : rows) {
    for (int y = 0; y < r.height; ++y)
      std::copy_n(&r.pixels[static_cast<size_t>(y) * r.width * 3], r.width * 3, &out.pixels[static_cast<size_t>(y0 + y) * w * 3]);
    y0 += r.height + gap;
  }
  return out;
}

Image8 sample_preview(const Sample& s) {
  std::vector<Image8> tiles = {sample_image_rgb(s)};
  for (const auto& t : task_names())
    if (s.has(t)) tiles.push_back(colorize_task(t, s.label(t)));
  return hconcat(tiles);
}

void write_sample_preview(const std::string& path, const Sample& s) { write_png(path, sample_preview(s)); }

}  // namespace m3vit
