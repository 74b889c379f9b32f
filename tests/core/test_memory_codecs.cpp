// The in-memory forms of the image and .npy codecs (common/image_io.h decode_image / encode_png,
// io/npy.h npy_from_bytes / npy_to_bytes), which `m3vit serve` uses for request and answer bodies:
// bytes checked by hand against the formats' layouts, and equal to what the file functions write.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"
#include "io/npy.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

class MemoryCodecTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_io::make_scratch_dir("memcodec"); }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

// {1.0f, -2.0f} as a 1-d .npy: magic, version 1.0, a u16 header length that pads the prefix to 64
// bytes, the dict, then IEEE-754 little-endian floats (1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0).
TEST_F(MemoryCodecTest, NpyToBytesByHand) {
  const float v[2] = {1.0f, -2.0f};
  const std::string b = npy_to_bytes(DType::F32, {2}, v);
  // write_npy spells a 1-d shape "(2, )" (numpy writes "(2,)"; both are the same Python tuple).
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, ), }";  // 58 characters
  ASSERT_EQ(b.size(), 128u + 8u);  // 10 + 58 + padding + '\n' = 128, then 8 data bytes
  EXPECT_EQ(b.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(b[6], 1);
  EXPECT_EQ(b[7], 0);
  EXPECT_EQ(static_cast<uint8_t>(b[8]), 118);  // 128 - 10
  EXPECT_EQ(b[9], 0);
  EXPECT_EQ(b.substr(10, dict.size()), dict);
  EXPECT_EQ(b.substr(10 + dict.size(), 128 - 1 - 10 - dict.size()), std::string(128 - 1 - 10 - dict.size(), ' '));
  EXPECT_EQ(b[127], '\n');
  EXPECT_EQ(b.substr(128), std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8));
}

TEST_F(MemoryCodecTest, NpyBytesEqualTheFileAndReadBack) {
  const float v[6] = {0.5f, -1.25f, 3.0f, 0.0f, 1e-3f, -7.0f};
  const std::string path = dir_ + "/x.npy";
  write_npy(path, DType::F32, {1, 2, 3}, v);
  const std::string b = npy_to_bytes(DType::F32, {1, 2, 3}, v);
  EXPECT_EQ(read_file(path), b);
  const OwnedTensor t = npy_from_bytes(b, "request body");
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(t.bytes.size(), sizeof v);
  EXPECT_EQ(std::memcmp(t.bytes.data(), v, sizeof v), 0);
}

TEST_F(MemoryCodecTest, NpyFromBytesNamesTheOrigin) {
  test_io::expect_error_naming<FormatError>([] { npy_from_bytes("\x93NUMPY", "request body"); },
                                            {"request body", "not a .npy file"}, "too short");
  std::string b = npy_to_bytes(DType::F32, {4}, std::vector<float>(4, 1.f).data());
  b.pop_back();  // one data byte short
  test_io::expect_error_naming<FormatError>([&] { npy_from_bytes(b, "request body"); },
                                            {"request body", "15 bytes", "needs 16"}, "truncated data");
}

// A 2x1 RGB image: the PNG signature, then IHDR (length 13, width 2, height 1, depth 8, colour type 2 = RGB).
TEST_F(MemoryCodecTest, EncodePngByHandAndEqualToTheFile) {
  Image8 img;
  img.width = 2;
  img.height = 1;
  img.channels = 3;
  img.pixels = {255, 0, 0, 10, 20, 30};
  const std::string png = encode_png(img);
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(8, 8), std::string("\x00\x00\x00\x0dIHDR", 8));
  EXPECT_EQ(png.substr(16, 8), std::string("\x00\x00\x00\x02\x00\x00\x00\x01", 8));
  EXPECT_EQ(png[24], 8);
  EXPECT_EQ(png[25], 2);
  const std::string path = dir_ + "/x.png";
  write_png(path, img);
  EXPECT_EQ(read_file(path), png);

  const Image8 back = decode_image(png.data(), png.size(), "request body");
  EXPECT_EQ(back.width, 2);
  EXPECT_EQ(back.height, 1);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, img.pixels);
  const Image8 gray = decode_image(png.data(), png.size(), "request body", 1);
  EXPECT_EQ(gray.channels, 1);
  EXPECT_EQ(gray.pixels.size(), 2u);
}

TEST_F(MemoryCodecTest, DecodeImageNamesTheOrigin) {
  const std::string junk = "this is not an image";
  test_io::expect_error_naming<IoError>([&] { decode_image(junk.data(), junk.size(), "request body"); },
                                        {"image request body", "not a PNG or JPEG"}, "junk");
  test_io::expect_error_naming<IoError>([] { decode_image("", 0, "request body"); },
                                        {"image request body", "cannot decode"}, "no bytes");
}

}  // namespace
}  // namespace m3vit
