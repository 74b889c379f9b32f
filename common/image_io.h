// Image files through stb (Debian libstb-dev): JPEG/PNG in, PNG out. 8-bit, HWC, RGB or gray.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace m3vit {

struct Image8 {
  int width = 0, height = 0, channels = 0;  // channels 1 or 3
  std::vector<uint8_t> pixels;              // row-major HWC
};

// Reads JPEG or PNG, converted to `want_channels` (3 = RGB, 1 = gray). Throws IoError naming the path.
Image8 read_image(const std::string& path, int want_channels = 3);
// Writes PNG atomically. Throws IoError.
void write_png(const std::string& path, const Image8& img);

}  // namespace m3vit
