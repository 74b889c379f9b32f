#include "common/image_io.h"

#include <algorithm>
#include <cstring>

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

namespace {

// Only PNG and JPEG reach stb. Debian's stb also decodes BMP, GIF, PSD, TGA, HDR, PNM and PIC, each
// with its own allocations from header fields; none of them is an input of this project.
bool is_png(const uint8_t* p, size_t size) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return size >= 8 && std::memcmp(p, kSignature, 8) == 0;
}
bool is_jpeg(const uint8_t* p, size_t size) { return size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff; }

// stb grows its IDAT buffer to a chunk's declared length before it reads the chunk's bytes, so a
// few bytes declaring a 1 GiB second IDAT made it reserve 2 GiB (found by `make fuzz`; the input is
// fuzz/regressions/image/png_idat_declares_1gib.png). A chunk cannot be longer than the bytes after
// its header (length 4, type 4, data, CRC 4: PNG spec 5.3), so every declared length is checked
// against what follows before stb sees the file.
void check_png_chunk_lengths(const uint8_t* p, size_t size, const std::string& origin) {
  size_t pos = 8;
  while (size - pos >= 8) {
    const uint32_t length = (uint32_t{p[pos]} << 24) | (uint32_t{p[pos + 1]} << 16) | (uint32_t{p[pos + 2]} << 8) | p[pos + 3];
    const std::string type(reinterpret_cast<const char*>(p + pos + 4), 4);
    const size_t after_header = size - pos - 8;
    if (after_header < 4 || length > after_header - 4)
      throw IoError("image " + origin + ": PNG chunk '" + type + "' at byte " + std::to_string(pos) + " declares " +
                    std::to_string(length) + " data bytes and a 4-byte CRC, but the file ends " +
                    std::to_string(after_header) + " bytes after the chunk's header");
    pos += 12 + static_cast<size_t>(length);
    if (type == "IEND") break;
  }
}

// Debian's stb (0.0~git20220908) fills a JPEG Huffman table's 257-entry size list from the DHT
// segment's 16 code counts without checking that they add up to at most 256, and writes past the
// table when they do (found by `make fuzz` with stb's decoder instrumented: fuzz/regressions/image/
// jpeg_dht_lists_257_codes.jpg). Every DHT segment stb could reach, including those between a
// progressive file's scans and one cut off by the end of the file, is checked here first. Markers
// per ITU T.81 B.1: FF xx and a 2-byte big-endian length that counts itself, except SOI, EOI, RSTn
// and TEM; the entropy-coded data after an SOS runs to the next FF that is not FF 00 or a restart.
// Like stb, bytes between segments that are not a marker are skipped.
void check_jpeg_huffman_tables(const uint8_t* p, size_t size, const std::string& origin) {
  const auto is_restart = [](uint8_t m) { return m >= 0xd0 && m <= 0xd7; };
  size_t pos = 2;  // after SOI
  while (pos + 1 < size) {
    if (p[pos] != 0xff || p[pos + 1] == 0xff || p[pos + 1] == 0x00) { ++pos; continue; }  // junk or fill
    const uint8_t marker = p[pos + 1];
    if (marker == 0xd9) return;  // EOI
    if (marker == 0x01 || is_restart(marker)) { pos += 2; continue; }
    if (pos + 4 > size) return;
    const size_t length = (size_t{p[pos + 2]} << 8) | p[pos + 3];
    const size_t end = std::min(size, pos + 2 + length);
    if (marker == 0xc4) {  // DHT: tables of (class/id byte, 16 counts, the counted symbols)
      // stb reads a table's 17 bytes whenever the segment has a byte left, past the segment's end
      // (and as zeros past the file's) if it must, and builds the table before it checks anything.
      for (size_t t = pos + 4; t < end;) {
        size_t codes = 0;
        for (size_t i = t + 1; i <= t + 16 && i < size; ++i) codes += p[i];
        if (codes > 256)
          throw IoError("image " + origin + ": JPEG Huffman table (DHT at byte " + std::to_string(pos) + ") lists " +
                        std::to_string(codes) + " codes, more than the 256 a table can hold");
        t += 17 + codes;
      }
    }
    pos = std::max(pos + 4, end);
    if (marker == 0xda)  // SOS: the entropy-coded data, to the next marker that ends it
      while (pos + 1 < size && !(p[pos] == 0xff && p[pos + 1] != 0x00 && p[pos + 1] != 0xff && !is_restart(p[pos + 1])))
        ++pos;
  }
}

}  // namespace

Image8 decode_image(const void* data, size_t size, const std::string& origin, int want_channels) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (size == 0) throw IoError("image " + origin + ": cannot decode (no bytes)");
  if (size > 0x7fffffff)  // stb takes an int length
    throw IoError("image " + origin + ": " + std::to_string(size) + " bytes is more than this reader takes (2 GiB)");
  if (is_png(bytes, size))
    check_png_chunk_lengths(bytes, size, origin);
  else if (is_jpeg(bytes, size))
    check_jpeg_huffman_tables(bytes, size, origin);
  else
    throw IoError("image " + origin + ": not a PNG or JPEG file (the only formats read)");
  // The dimensions come from the file's header: checked against kMaxImagePixels before stb
  // allocates the pixels (a 100000 x 100000 header in a few bytes is an error, not 30 GB). A header
  // stb cannot read is an error here too, so no file reaches the decoder unchecked.
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &c))
    throw IoError("image " + origin + ": cannot decode (" + stbi_failure_reason() + ")");
  if (static_cast<int64_t>(w) * h > kMaxImagePixels)
    throw IoError("image " + origin + ": " + std::to_string(w) + " x " + std::to_string(h) +
                  " pixels is more than this reader's limit of " + std::to_string(kMaxImagePixels));
  unsigned char* p = stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &c, want_channels);
  if (!p) throw IoError("image " + origin + ": cannot decode (" + stbi_failure_reason() + ")");
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
