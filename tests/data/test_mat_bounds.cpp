// Resource bounds of the .mat reader (docs/TESTING.md "Resource bounds"): a MAT5 file of a few hundred
// bytes whose LabelMap declares 100000 x 100000 elements is refused from its header, before libmatio
// allocates 10 GB for it (data/mat5_layout.h); the same file with 3 x 4 elements reads back (so the hand-written file is a
// valid MAT5 file and the refusal comes from the size alone).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "common/errors.h"
#include "data/mat_file.h"
#include "tests/core/io_test_util.h"
#include "tests/data/test_util.h"

namespace m3vit {
namespace {

// One MAT5 data element: tag (type, byte count) and the bytes, padded to 8.
void element(std::string& out, uint32_t type, const std::string& bytes) {
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  u32(type);
  u32(static_cast<uint32_t>(bytes.size()));
  out += bytes;
  out.append((8 - bytes.size() % 8) % 8, '\0');
}

// A level-5 MAT file with one uint8 matrix `LabelMap` of [h, w] declared and `values` stored.
std::string mat5_uint8(uint32_t h, uint32_t w, const std::string& values) {
  std::string header(116, ' ');
  std::memcpy(header.data(), "MATLAB 5.0 MAT-file, hand-written for a test", 44);
  header.append(8, '\0');                  // subsystem data offset
  header += std::string("\x00\x01IM", 4);  // version 0x0100, little-endian "MI" as written
  std::string matrix;
  const uint32_t flags[2] = {9, 0};  // mxUINT8_CLASS
  element(matrix, 6, std::string(reinterpret_cast<const char*>(flags), 8));  // miUINT32 array flags
  const int32_t dims[2] = {static_cast<int32_t>(h), static_cast<int32_t>(w)};
  element(matrix, 5, std::string(reinterpret_cast<const char*>(dims), 8));   // miINT32 dimensions
  element(matrix, 1, "LabelMap");                                           // miINT8 name
  element(matrix, 2, values);                                               // miUINT8 real part
  std::string out = header;
  element(out, 14, matrix);  // miMATRIX
  return out;
}

TEST(MatFile, DeclaredSizesAreBoundedBeforeReading) {
  const std::string dir = m3vit_test::scratch_dir("mat-bounds");
  const std::string good = dir + "/good.mat", big = dir + "/big.mat";
  std::ofstream(good, std::ios::binary) << mat5_uint8(3, 4, std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", 12));
  std::ofstream(big, std::ios::binary) << mat5_uint8(100000, 100000, std::string(16, '\x01'));

  const MatMatrix m = read_mat_matrix(good, "LabelMap");
  ASSERT_EQ(m.h, 3);
  ASSERT_EQ(m.w, 4);
  EXPECT_EQ(m.v[1], 3.0);  // column-major in the file: row 0, column 1 is the 4th value
  EXPECT_EQ(m.v[4], 1.0);  // row 1, column 0

  const std::string msg = test_io::error_of<FormatError>([&] { read_mat_matrix(big, "LabelMap"); });
  EXPECT_NE(msg.find("big.mat: a matrix declaring more than 67108864 elements"), std::string::npos) << msg;

  // A sub-element whose tag claims 1 GB inside a file of a few hundred bytes (what the fuzzer found
  // libmatio allocating for), and a v7.3 (HDF5) header.
  std::string lie = mat5_uint8(3, 4, std::string(12, '\x01'));
  const uint32_t gb = 1u << 30;
  std::memcpy(lie.data() + 128 + 8 + 16 + 4, &gb, 4);  // the dimensions' byte count
  const std::string lie_path = dir + "/lie.mat";
  std::ofstream(lie_path, std::ios::binary) << lie;
  const std::string lie_msg = test_io::error_of<FormatError>([&] { read_mat_matrix(lie_path, "LabelMap"); });
  EXPECT_NE(lie_msg.find("lie.mat: an element of 1073741824 bytes where its container has"), std::string::npos)
      << lie_msg;
  std::string v73 = mat5_uint8(3, 4, std::string(12, '\x01'));
  v73[124] = 0;
  v73[125] = 2;
  const std::string v73_path = dir + "/v73.mat";
  std::ofstream(v73_path, std::ios::binary) << v73;
  const std::string v73_msg = test_io::error_of<FormatError>([&] { read_mat_matrix(v73_path, "LabelMap"); });
  EXPECT_NE(v73_msg.find("v7.3, HDF5"), std::string::npos) << v73_msg;
}

}  // namespace
}  // namespace m3vit
