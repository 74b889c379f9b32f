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

// The most pixels a decoded picture may have (2^27, e.g. 16384 x 8192; 384 MB as RGB): a header
// claiming more is refused before anything is allocated.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 27;

// Reads JPEG or PNG, converted to `want_channels` (3 = RGB, 1 = gray). Throws IoError naming the path.
Image8 read_image(const std::string& path, int want_channels = 3);
// Writes PNG atomically. Throws IoError.
void write_png(const std::string& path, const Image8& img);

// The same in memory, for bytes that never were a file (an HTTP request body, a response):
// decode_image reads JPEG or PNG bytes (IoError naming `origin`, as read_image names the path);
// encode_png gives the bytes write_png puts in its file (the same stb encoder and settings).
Image8 decode_image(const void* data, size_t size, const std::string& origin, int want_channels = 3);
std::string encode_png(const Image8& img);

}  // namespace m3vit
