// Label PNG reader (palette indices / raw gray values) and writer (data/label_png.h).
// PNG format: ISO/IEC 15948 (chunks, zlib stream, per-row filters None/Sub/Up/Average/Paeth).
#include "data/label_png.h"

#include <stb_image.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"

namespace m3vit {

namespace {

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

}  // namespace

ImageF read_label_png(const std::string& path) {
  if (!file_exists(path)) throw IoError("label PNG " + path + ": no such file");
  const std::string bytes = read_file(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  if (bytes.size() < 33 || std::memcmp(p, sig, 8) != 0) throw FormatError("label PNG " + path + ": not a PNG file");
  size_t pos = 8;
  int width = 0, height = 0, depth = 0, ctype = -1, interlace = 0;
  std::string idat;
  bool ended = false;
  while (pos + 12 <= bytes.size()) {
    const uint32_t len = be32(p + pos);
    const std::string type(reinterpret_cast<const char*>(p + pos + 4), 4);
    if (pos + 12 + len > bytes.size()) throw FormatError("label PNG " + path + ": truncated chunk " + type);
    const unsigned char* data = p + pos + 8;
    if (type == "IHDR") {
      if (len < 13) throw FormatError("label PNG " + path + ": bad IHDR");
      width = static_cast<int>(be32(data));
      height = static_cast<int>(be32(data + 4));
      depth = data[8];
      ctype = data[9];
      interlace = data[12];
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(data), len);
    } else if (type == "IEND") {
      ended = true;
      break;
    }
    pos += 12 + len;
  }
  if (!ended || width <= 0 || height <= 0 || idat.empty())
    throw FormatError("label PNG " + path + ": truncated or missing image data");
  if (ctype != 0 && ctype != 3)
    throw FormatError("label PNG " + path + ": colour type " + std::to_string(ctype) +
                      " (a label map must be a gray or palette PNG)");
  if (interlace != 0) throw FormatError("label PNG " + path + ": interlaced PNGs are not supported");
  if (!(depth == 1 || depth == 2 || depth == 4 || depth == 8 || (depth == 16 && ctype == 0)))
    throw FormatError("label PNG " + path + ": unsupported bit depth " + std::to_string(depth));

  // The header's size is held to the picture limit before zlib reserves the rows (stb's inflate
  // takes the expected size as its first allocation).
  if (static_cast<int64_t>(width) * height > kMaxImagePixels)
    throw FormatError("label PNG " + path + ": " + std::to_string(width) + " x " + std::to_string(height) +
                      " pixels is more than this reader's limit of " + std::to_string(kMaxImagePixels));
  const size_t row_bytes = (static_cast<size_t>(width) * depth + 7) / 8;
  const size_t need = (row_bytes + 1) * height;
  int out_len = 0;
  char* raw = stbi_zlib_decode_malloc_guesssize(idat.data(), static_cast<int>(idat.size()), static_cast<int>(need),
                                                &out_len);
  if (!raw || static_cast<size_t>(out_len) < need) {
    if (raw) free(raw);
    throw FormatError("label PNG " + path + ": corrupt image data");
  }
  // Undo the per-row filters; bpp = bytes per complete pixel (at least 1).
  const int bpp = depth == 16 ? 2 : 1;
  std::vector<unsigned char> img(row_bytes * height);
  std::vector<unsigned char> prev(row_bytes, 0);
  const auto* src = reinterpret_cast<const unsigned char*>(raw);
  for (int y = 0; y < height; ++y) {
    const int filter = src[0];
    const unsigned char* in = src + 1;
    unsigned char* out = img.data() + row_bytes * y;
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i >= static_cast<size_t>(bpp) ? out[i - bpp] : 0;
      const int b = prev[i];
      const int c = i >= static_cast<size_t>(bpp) ? prev[i - bpp] : 0;
      int v = in[i];
      switch (filter) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) / 2; break;
        case 4: v += paeth(a, b, c); break;
        default:
          free(raw);
          throw FormatError("label PNG " + path + ": bad filter type " + std::to_string(filter));
      }
      out[i] = static_cast<unsigned char>(v & 255);
    }
    std::memcpy(prev.data(), out, row_bytes);
    src += row_bytes + 1;
  }
  free(raw);

  ImageF labels(1, height, width);
  for (int y = 0; y < height; ++y) {
    const unsigned char* row = img.data() + row_bytes * y;
    for (int x = 0; x < width; ++x) {
      int v;
      if (depth == 16) {
        v = (row[2 * x] << 8) | row[2 * x + 1];
      } else if (depth == 8) {
        v = row[x];
      } else {
        const int per_byte = 8 / depth;
        const int shift = 8 - depth * (x % per_byte + 1);
        v = (row[x / per_byte] >> shift) & ((1 << depth) - 1);
      }
      labels.at(0, y, x) = static_cast<float>(v);
    }
  }
  return labels;
}

void write_label_png(const std::string& path, const ImageF& labels) {
  if (labels.c != 1) throw ShapeError("write_label_png " + path + ": expected 1 channel, got " + shape_of(labels));
  Image8 img;
  img.width = labels.w;
  img.height = labels.h;
  img.channels = 1;
  img.pixels.resize(labels.plane_size());
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    const float v = std::round(labels.data[i]);
    img.pixels[i] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
  }
  write_png(path, img);
}

}  // namespace m3vit
