#include "common/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit {

Image8 read_image(const std::string& path, int want_channels) {
  if (!file_exists(path)) throw IoError("image " + path + ": no such file");
  const std::string bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), path, want_channels);
}

void write_png(const std::string& path, const Image8& img) {
  if (img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
    throw ShapeError("write_png " + path + ": pixel buffer does not match " + std::to_string(img.width) + "x" +
                     std::to_string(img.height) + "x" + std::to_string(img.channels));
  write_atomic(path, [&](const std::string& tmp) {
    if (!stbi_write_png(tmp.c_str(), img.width, img.height, img.channels, img.pixels.data(),
                        img.width * img.channels))
      throw IoError("cannot write PNG " + path);
  });
}

Image8 decode_image(const void* data, size_t size, const std::string& origin, int want_channels) {
  int w = 0, h = 0, c = 0;
  // The dimensions come from the file's header: checked against kMaxImagePixels before stb
  // allocates the pixels (a 100000 x 100000 header in a few bytes is an error, not 30 GB).
  if (size > 0 && size <= 0x7fffffff &&
      stbi_info_from_memory(static_cast<const stbi_uc*>(data), static_cast<int>(size), &w, &h, &c) &&
      static_cast<int64_t>(w) * h > kMaxImagePixels)
    throw IoError("image " + origin + ": " + std::to_string(w) + " x " + std::to_string(h) +
                  " pixels is more than this reader's limit of " + std::to_string(kMaxImagePixels));
  unsigned char* p = size > 0 && size <= 0x7fffffff  // stb takes an int length
                         ? stbi_load_from_memory(static_cast<const stbi_uc*>(data), static_cast<int>(size), &w, &h,
                                                 &c, want_channels)
                         : nullptr;
  if (!p) throw IoError("image " + origin + ": cannot decode (" + (size ? stbi_failure_reason() : "no bytes") + ")");
  Image8 img;
  img.width = w;
  img.height = h;
  img.channels = want_channels;
  img.pixels.assign(p, p + static_cast<size_t>(w) * h * want_channels);
  stbi_image_free(p);
  return img;
}

std::string encode_png(const Image8& img) {
  if (img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
    throw ShapeError("encode_png: pixel buffer does not match " + std::to_string(img.width) + "x" +
                     std::to_string(img.height) + "x" + std::to_string(img.channels));
  // stbi_write_png writes through this same callback path (stbi_write_png_to_mem, then one write),
  // so the bytes equal write_png's file.
  std::string out;
  const auto append = [](void* ctx, void* bytes, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(bytes), n); };
  if (!stbi_write_png_to_func(append, &out, img.width, img.height, img.channels, img.pixels.data(),
                              img.width * img.channels))
    throw IoError("cannot encode a PNG of " + std::to_string(img.width) + "x" + std::to_string(img.height));
  return out;
}

}  // namespace m3vit
