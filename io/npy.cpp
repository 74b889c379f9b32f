// NumPy .npy reader/writer (format versions 1.0, 2.0 and 3.0; numpy/lib/format.py describes them).
// Layout: "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for 2.x/3.x), then a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and '\n' so the
// data starts at a multiple of 64, then the raw data. NYUD depth/normals/edge labels come as .npy
// (the authors' data/nyud.py:192-214), as do `m3vit infer --input-npy` inputs and `--save-logits` outputs.
#include "io/npy.h"

#include <algorithm>

#include <cctype>
#include <cstring>
#include <utility>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct Descr {
  const char* text;
  DType dtype;
};
// The little-endian spellings numpy writes for the dtypes we have ('|' marks single-byte types).
constexpr Descr kDescrs[] = {{"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16}, {"<i8", DType::I64},
                             {"<i4", DType::I32}, {"<i2", DType::I16}, {"|i1", DType::I8},  {"|u1", DType::U8},
                             {"|b1", DType::BOOL}};

// A tiny parser for the header dict literal: only the three keys numpy writes.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string path) : s_(std::move(text)), path_(std::move(path)) {}

  void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
    bool has_descr = false, has_fortran = false, has_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      std::string key = quoted();
      expect(':');
      if (key == "descr") {
        descr = quoted();
        has_descr = true;
      } else if (key == "fortran_order") {
        skip_ws();
        if (s_.compare(i_, 4, "True") == 0) {
          fortran = true;
          i_ += 4;
        } else if (s_.compare(i_, 5, "False") == 0) {
          fortran = false;
          i_ += 5;
        } else {
          fail("fortran_order is neither True nor False");
        }
        has_fortran = true;
      } else if (key == "shape") {
        shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    if (!has_descr || !has_fortran || !has_shape) fail("needs 'descr', 'fortran_order' and 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw FormatError(path_ + ": bad .npy header (" + why + "): " + s_);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string quoted() {
    skip_ws();
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> dims;
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        return dims;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape entries must be non-negative integers");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (int64_t{1} << 50)) fail("shape entry too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (peek() == 'L') ++i_;  // Python 2 long suffix
      dims.push_back(v);
      skip_ws();
      if (peek() == ',') ++i_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
  }

  std::string s_, path_;
  size_t i_ = 0;
};

// Fortran (column-major) bytes -> C (row-major) bytes for the same logical shape.
std::vector<uint8_t> fortran_to_c(const std::vector<uint8_t>& src, const std::vector<int64_t>& shape, size_t elem) {
  const size_t nd = shape.size();
  const int64_t n = shape_numel(shape);
  std::vector<uint8_t> dst(src.size());
  if (n == 0) return dst;
  std::vector<int64_t> fstride(nd, 1);  // element strides of the Fortran layout
  for (size_t k = 1; k < nd; ++k) fstride[k] = fstride[k - 1] * shape[k - 1];
  std::vector<int64_t> idx(nd, 0);
  int64_t src_off = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(dst.data() + i * elem, src.data() + src_off * elem, elem);
    // Advance the C-order multi-index (last axis fastest), tracking the Fortran offset.
    for (size_t k = nd; k-- > 0;) {
      if (++idx[k] < shape[k]) {
        src_off += fstride[k];
        break;
      }
      src_off -= fstride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
  return dst;
}

}  // namespace

OwnedTensor read_npy(const std::string& path) { return npy_from_bytes(read_file(path), path); }

OwnedTensor npy_from_bytes(const std::string& raw, const std::string& path) {
  if (raw.size() < kMagicLen + 4 || raw.compare(0, kMagicLen, kMagic) != 0)
    throw FormatError(path + ": not a .npy file (bad magic or too short)");
  const uint8_t major = static_cast<uint8_t>(raw[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(raw[8]) | (static_cast<size_t>(static_cast<uint8_t>(raw[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (raw.size() < 12) throw FormatError(path + ": truncated .npy header");
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(raw[8 + i]);
    header_start = 12;
  } else {
    throw FormatError(path + ": unsupported .npy format version " + std::to_string(major) + "." +
                      std::to_string(static_cast<uint8_t>(raw[7])));
  }
  if (header_len > raw.size() - header_start)
    throw FormatError(path + ": .npy header length " + std::to_string(header_len) + " runs past the end of the file");
  std::string descr;
  bool fortran = false;
  OwnedTensor t;
  HeaderParser(raw.substr(header_start, header_len), path).parse(descr, fortran, t.shape);

  bool known = false;
  for (const auto& d : kDescrs)
    if (descr == d.text) {
      t.dtype = d.dtype;
      known = true;
    }
  // numpy writes '|u1' but accepts '<u1'; likewise for i1 / b1.
  if (!known && descr.size() == 3 && (descr[0] == '<' || descr[0] == '=') && descr[2] == '1')
    for (const auto& d : kDescrs)
      if (descr.substr(1) == std::string(d.text).substr(1)) {
        t.dtype = d.dtype;
        known = true;
      }
  if (!known)
    throw FormatError(path + ": unsupported .npy dtype '" + descr +
                      "' (supported: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1, little-endian)");

  const size_t data_start = header_start + header_len;
  const size_t have = raw.size() - data_start;
  // The shape is checked against the bytes present before anything is allocated, and without a
  // product that could wrap: a header claiming 10^12 elements over a few bytes is an error.
  const bool empty = std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end();
  uint64_t numel = empty ? 0 : 1;
  for (int64_t d : t.shape) {
    if (empty) break;
    if (numel > have / static_cast<uint64_t>(d))
      throw FormatError(path + ": .npy shape " + shape_str(t.shape) + " needs more bytes than the file's " +
                        std::to_string(have));
    numel *= static_cast<uint64_t>(d);
  }
  const size_t want = numel * dtype_size(t.dtype);
  if (have != want)
    throw FormatError(path + ": .npy data holds " + std::to_string(have) + " bytes but " + descr + " " +
                      shape_str(t.shape) + " needs " + std::to_string(want));
  t.bytes.assign(raw.begin() + static_cast<std::ptrdiff_t>(data_start), raw.end());
  if (fortran && t.shape.size() > 1) t.bytes = fortran_to_c(t.bytes, t.shape, dtype_size(t.dtype));
  return t;
}

void write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data) {
  write_file_atomic(path, npy_to_bytes(dtype, shape, data, path));
}

std::string npy_to_bytes(DType dtype, const std::vector<int64_t>& shape, const void* data, const std::string& path) {
  const char* descr = nullptr;
  for (const auto& d : kDescrs)
    if (d.dtype == dtype) descr = d.text;
  if (!descr) throw FormatError(path + ": dtype " + std::string(dtype_name(dtype)) + " has no .npy equivalent");
  std::string dims;
  for (int64_t d : shape) {
    if (d < 0) throw ShapeError(path + ": negative dimension in shape " + shape_str(shape));
    dims += std::to_string(d) + ", ";
  }
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // (n,) keeps its comma, (a, b) does not
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces and a final '\n' so magic + length + header is a multiple of 64.
  size_t prefix = kMagicLen + 2 + 2;
  bool v2 = false;
  size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  if (total - prefix > 65535) {  // header too long for a u16: format 2.0
    v2 = true;
    prefix = kMagicLen + 2 + 4;
    total = (prefix + header.size() + 1 + 63) / 64 * 64;
  }
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';

  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  const size_t hl = header.size();
  for (int i = 0; i < (v2 ? 4 : 2); ++i) out += static_cast<char>((hl >> (8 * i)) & 0xff);
  out += header;
  if (nbytes) out.append(static_cast<const char*>(data), nbytes);
  return out;
}

void write_npy(const std::string& path, const OwnedTensor& t) {
  const size_t want = static_cast<size_t>(t.numel()) * dtype_size(t.dtype);
  if (t.bytes.size() != want)
    throw FormatError(path + ": tensor " + shape_str(t.shape) + " holds " + std::to_string(t.bytes.size()) +
                      " bytes, needs " + std::to_string(want));
  write_npy(path, t.dtype, t.shape, t.bytes.data());
}

}  // namespace m3vit
