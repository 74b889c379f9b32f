// The MAT5 layout walk (data/mat5_layout.h).
#include "data/mat5_layout.h"

#include <zlib.h>

#include <algorithm>

#include <vector>

#include "common/errors.h"
#include "data/mat_file.h"

namespace m3vit {

namespace {

// Level-5 data types used here (MAT-File Format, "Data Types").
constexpr uint32_t kMiInt32 = 5, kMiUint32 = 6, kMiMatrix = 14, kMiCompressed = 15;
constexpr uint32_t kClassStruct = 2;
constexpr int kMaxDepth = 16;

class Walker {
 public:
  Walker(bool swap, std::string what) : swap_(swap), what_(std::move(what)) {}

  // Elements back to back in [p, p + n): a file's body, an inflated element, a matrix's sub-elements.
  void elements(const uint8_t* p, size_t n, int depth, bool in_matrix) {
    size_t off = 0;
    int index = 0;
    uint32_t cls = 0;
    uint64_t matrix_numel = 1;
    while (off < n) {
      if (n - off < 8) fail("a tag of " + std::to_string(n - off) + " bytes at the end of its container");
      const uint32_t a = u32(p + off), b = u32(p + off + 4);
      uint32_t type, bytes;
      const uint8_t* payload;
      size_t next;
      if (a >> 16) {  // small data element: type and size in one word, up to 4 bytes of data
        type = a & 0xFFFF;
        bytes = a >> 16;
        if (bytes > 4) fail("a small element of " + std::to_string(bytes) + " bytes (at most 4)");
        payload = p + off + 4;
        next = off + 8;
      } else {
        type = a;
        bytes = b;
        if (bytes > n - off - 8)
          fail("an element of " + std::to_string(bytes) + " bytes where its container has " + std::to_string(n - off - 8) +
               " left");
        payload = p + off + 8;
        next = off + 8 + bytes;
        // Elements are padded to 8 bytes, except compressed ones; the last may end at its container.
        if (type != kMiCompressed) next = std::min(n, (next + 7) / 8 * 8);
      }
      if (type == kMiCompressed) {
        if (in_matrix) fail("a compressed element inside a matrix");
        const std::vector<uint8_t> inflated = inflate_bounded(payload, bytes);
        elements(inflated.data(), inflated.size(), depth, false);
      } else if (type == kMiMatrix) {
        if (depth >= kMaxDepth) fail("matrices nested more than " + std::to_string(kMaxDepth) + " deep");
        elements(payload, bytes, depth + 1, true);
      } else if (in_matrix) {
        // A matrix: array flags, dimensions, name, then per class (a struct: field name length,
        // field names, one matrix per element and field).
        if (index == 0) {
          if (type != kMiUint32 || bytes < 4) fail("a matrix without array flags");
          cls = u32(payload) & 0xFF;
        } else if (index == 1) {
          if (type != kMiInt32 || bytes % 4 || bytes == 0) fail("a matrix without int32 dimensions");
          for (uint32_t i = 0; i < bytes / 4; ++i) {
            const auto d = static_cast<int32_t>(u32(payload + 4 * i));
            if (d < 0) fail("a negative dimension");
            matrix_numel *= static_cast<uint64_t>(d);
            if (matrix_numel > kMaxMatElements)
              fail("a matrix declaring more than " + std::to_string(kMaxMatElements) + " elements");
          }
        } else if (index == 3 && cls == kClassStruct) {
          if (type != kMiInt32 || bytes != 4) fail("a struct without its field name length");
          field_name_length_ = u32(payload);
          if (field_name_length_ == 0) fail("a struct with field names of length 0");
        } else if (index == 4 && cls == kClassStruct) {
          const uint64_t fields = bytes / field_name_length_;
          if (matrix_numel * fields > kMaxMatElements)
            fail("a struct array of " + std::to_string(matrix_numel) + " elements x " + std::to_string(fields) +
                 " fields");
        }
      }
      off = next;
      ++index;
    }
    if (in_matrix && index < 2) fail("a matrix without dimensions");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw FormatError(what_ + ": " + why); }

  uint32_t u32(const uint8_t* p) const {
    const uint32_t v = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                       static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
    return swap_ ? __builtin_bswap32(v) : v;
  }

  std::vector<uint8_t> inflate_bounded(const uint8_t* p, size_t n) {
    z_stream z{};
    if (inflateInit(&z) != Z_OK) fail("zlib could not start");
    z.next_in = const_cast<Bytef*>(p);
    z.avail_in = static_cast<uInt>(n);
    std::vector<uint8_t> out;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const size_t have = out.size();
      if (inflated_total_ + have >= kMaxMatInflatedBytes) {
        inflateEnd(&z);
        fail("compressed elements inflate to more than " + std::to_string(kMaxMatInflatedBytes) + " bytes");
      }
      out.resize(have + 65536);
      z.next_out = out.data() + have;
      z.avail_out = 65536;
      rc = inflate(&z, Z_NO_FLUSH);
      out.resize(have + 65536 - z.avail_out);
      if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // the stream ends early: matio decides
      if (rc == Z_BUF_ERROR) rc = Z_OK;
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END && rc != Z_BUF_ERROR) fail("a compressed element that zlib cannot inflate");
    inflated_total_ += out.size();
    return out;
  }

  bool swap_;
  std::string what_;
  uint32_t field_name_length_ = 1;
  size_t inflated_total_ = 0;
};

}  // namespace

void check_mat5_layout(const uint8_t* data, size_t size, const std::string& what) {
  if (size < 128) throw FormatError(what + ": not a MATLAB file (" + std::to_string(size) + " bytes, the header needs 128)");
  // Bytes 126-127: 'I' 'M' when written little-endian, 'M' 'I' when big-endian; 124-125: the version.
  bool swap;
  if (data[126] == 'I' && data[127] == 'M')
    swap = false;
  else if (data[126] == 'M' && data[127] == 'I')
    swap = true;
  else
    throw FormatError(what + ": not a MATLAB level-5 file (no endian indicator)");
  const unsigned version = swap ? (data[124] << 8 | data[125]) : (data[125] << 8 | data[124]);
  if (version != 0x0100)
    throw FormatError(what + ": MATLAB file version 0x" + (version == 0x0200 ? "0200 (v7.3, HDF5)" : "unknown") +
                      " is not read: save it as a level-5 file (-v7), as scipy.io.savemat writes");
  Walker(swap, what).elements(data + 128, size - 128, 0, false);
}

}  // namespace m3vit
