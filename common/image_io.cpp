#include "common/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit {

Image8 read_image(const std::string& path, int want_channels) {
  if (!file_exists(path)) throw IoError("image " + path + ": no such file");
  int w = 0, h = 0, c = 0;
  unsigned char* p = stbi_load(path.c_str(), &w, &h, &c, want_channels);
  if (!p) throw IoError("image " + path + ": cannot decode (" + stbi_failure_reason() + ")");
  Image8 img;
  img.width = w;
  img.height = h;
  img.channels = want_channels;
  img.pixels.assign(p, p + static_cast<size_t>(w) * h * want_channels);
  stbi_image_free(p);
  return img;
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

}  // namespace m3vit
