// Resource bounds (docs/TESTING.md "Resource bounds"): every size a file states is checked against the
// file's own size or a stated limit before memory is allocated. Each case below is a few bytes that
// claim an enormous object; the reader must refuse it with a typed error naming the thing, quickly
// and without allocating it (the sanitizer build, whose allocator refuses and reports allocations of
// many GiB, runs these too). The model file, trace and .mat cases are in tests/runtime, tests/hw
// and tests/data.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include <stb_image_write.h>

#include "common/errors.h"
#include "common/image_io.h"
#include "core/config_yaml.h"
#include "core/shipped_configs.h"
#include "io/npy.h"
#include "io/pth_reader.h"
#include "io/safetensors.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

using test_io::make_scratch_dir;
using test_io::write_scratch_file;

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xFF);
  return out + header + data;
}

TEST(ResourceBounds, SafetensorsShapeAgainstItsBytes) {
  // 10^12 float32 elements over 8 bytes of data.
  const std::string p = write_scratch_file(
      "bounds", "big.safetensors",
      safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,8]}})", std::string(8, '\0')));
  const std::string m = test_io::error_of<FormatError>([&] { SafeTensorsFile f(p); });
  EXPECT_NE(m.find("'w'"), std::string::npos) << m;
  EXPECT_NE(m.find("needs 4000000000000"), std::string::npos) << m;
  // A product past 2^64.
  const std::string q = write_scratch_file(
      "bounds", "wrap.safetensors",
      safetensors_bytes(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""));
  EXPECT_NE(test_io::error_of<FormatError>([&] { SafeTensorsFile f(q); }).find("overflows"), std::string::npos);
  // A header length of 2^40 in a 16-byte file.
  std::string h = safetensors_bytes("{}", std::string(6, ' '));
  h[5] = 1;
  const std::string r = write_scratch_file("bounds", "header.safetensors", h);
  EXPECT_NE(test_io::error_of<FormatError>([&] { SafeTensorsFile f(r); }).find("header length 1099511627778 runs past the end"),
            std::string::npos);
}

std::string npy_bytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

TEST(ResourceBounds, NpyShapeAgainstItsBytes) {
  const std::string big = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", std::string(8, '\0'));
  std::string m = test_io::error_of<FormatError>([&] { npy_from_bytes(big, "big.npy"); });
  EXPECT_NE(m.find("big.npy: .npy shape [1000000, 1000000] needs more bytes than the file's 8"), std::string::npos) << m;
  // 2^61 elements of 8 bytes: the byte count wraps to 0 in 64 bits, so a plain product would accept
  // an empty data area.
  const std::string wrap = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2147483648, 1073741824), }", "");
  m = test_io::error_of<FormatError>([&] { npy_from_bytes(wrap, "wrap.npy"); });
  EXPECT_NE(m.find("needs more bytes"), std::string::npos) << m;
  // An empty array with an enormous other dimension is valid: no bytes are needed.
  const std::string empty = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 0), }", "");
  const OwnedTensor t = npy_from_bytes(empty, "empty.npy");
  EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(t.bytes.empty());
}

TEST(ResourceBounds, PthBroadcastViewIsBounded) {
  // torch.save keeps an expanded tensor as its one-element storage with stride 0: materialising
  // [10^12] would need 4 TB. [1000] over the same storage is read (a real broadcast).
  const std::string dir = make_scratch_dir("bounds-pth");
  const auto r = test_io::run_python(dir, "make", R"(
import sys, torch
torch.save({'big': torch.ones(1).expand(10**12), 'small': torch.full((1,), 2.5).expand(1000)}, sys.argv[1] + '/big.pth')
torch.save({'small': torch.full((1,), 2.5).expand(1000)}, sys.argv[1] + '/small.pth')
)", dir);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string m = test_io::error_of<FormatError>([&] { read_pth_tensors(dir + "/big.pth"); });
  EXPECT_NE(m.find("tensor 'big'"), std::string::npos) << m;
  EXPECT_NE(m.find("1000000000000 elements over a storage of 1"), std::string::npos) << m;
  const auto small = read_pth_tensors(dir + "/small.pth");
  const OwnedTensor& s = small.at("small");
  ASSERT_EQ(s.numel(), 1000);
  float last;
  std::memcpy(&last, s.bytes.data() + 999 * 4, 4);
  EXPECT_EQ(last, 2.5f);
}

// A PNG of one IHDR chunk: the dimensions are all a reader learns before it allocates.
std::string png_header(uint32_t w, uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  auto be32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  be32(13);
  s += "IHDR";
  be32(w);
  be32(h);
  s += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
  be32(0);                                      // CRC (stb does not check it)
  return s;
}

TEST(ResourceBounds, ImageDimensionsAgainstTheLimit) {
  // 16384 x 16384 RGB is 768 MB, which stb itself would allocate (its own limit is 1 GB).
  const std::string png = png_header(16384, 16384);
  const std::string m = test_io::error_of<IoError>([&] { decode_image(png.data(), png.size(), "huge.png", 3); });
  EXPECT_NE(m.find("huge.png: 16384 x 16384 pixels is more than this reader's limit of 134217728"), std::string::npos) << m;
  // Just under the limit, the header passes the size check and decoding fails on the missing data.
  const std::string ok = png_header(16384, 8192);
  const std::string m2 = test_io::error_of<IoError>([&] { decode_image(ok.data(), ok.size(), "fits.png", 3); });
  EXPECT_NE(m2.find("cannot decode"), std::string::npos) << m2;
}

TEST(ResourceBounds, PngChunkLengthsAgainstTheFile) {
  // A second IDAT declaring 2^30 + 100 bytes, with 8 bytes after it: stb would grow its IDAT buffer
  // to 2 GiB before reading them (fuzz/regressions/image/png_idat_declares_1gib.png).
  auto be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  std::string png = png_header(4, 4);
  be32(png, 16);
  png += "IDAT" + std::string(16 + 4, '\0');
  const size_t second = png.size();
  be32(png, (1u << 30) + 100);
  png += "IDAT" + std::string(8, '\0');
  const std::string m = test_io::error_of<IoError>([&] { decode_image(png.data(), png.size(), "long.png", 3); });
  EXPECT_NE(m.find("long.png: PNG chunk 'IDAT' at byte " + std::to_string(second) + " declares 1073741924 data bytes and a "
                   "4-byte CRC, but the file ends 8 bytes after the chunk's header"),
            std::string::npos)
      << m;
  // A chunk whose CRC is cut off is refused the same way.
  std::string cut = png_header(4, 4);
  cut.resize(cut.size() - 2);
  const std::string m2 = test_io::error_of<IoError>([&] { decode_image(cut.data(), cut.size(), "cut.png", 3); });
  EXPECT_NE(m2.find("cut.png: PNG chunk 'IHDR' at byte 8 declares 13 data bytes and a 4-byte CRC, "
                    "but the file ends 15 bytes after the chunk's header"),
            std::string::npos)
      << m2;
}

TEST(ResourceBounds, JpegHuffmanTablesAgainstTheirSize) {
  // A real baseline JPEG from stb's writer decodes; the same file with one of its DHT code counts
  // raised past 256 codes in all is refused before stb builds the table
  // (fuzz/regressions/image/jpeg_dht_lists_257_codes.jpg wrote past stb's table).
  std::vector<uint8_t> rgb(16 * 8 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 37);
  std::string jpeg;
  const auto append = [](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), n); };
  ASSERT_TRUE(stbi_write_jpg_to_func(append, &jpeg, 16, 8, 3, rgb.data(), 90));
  const Image8 ok = decode_image(jpeg.data(), jpeg.size(), "ok.jpg", 3);
  EXPECT_EQ(ok.width, 16);
  EXPECT_EQ(ok.height, 8);
  const size_t dht = jpeg.find("\xff\xc4");
  ASSERT_NE(dht, std::string::npos);
  // Segment: FF C4, length (2), then per table a class/id byte and 16 counts; the last count
  // (codes of 16 bits) becomes 255, which takes any table of stb's writer past 256.
  std::string bad = jpeg;
  bad[dht + 4 + 16] = static_cast<char>(0xff);
  const std::string m = test_io::error_of<IoError>([&] { decode_image(bad.data(), bad.size(), "bad.jpg", 3); });
  EXPECT_NE(m.find("bad.jpg: JPEG Huffman table (DHT at byte " + std::to_string(dht) + ") lists "), std::string::npos)
      << m;
  EXPECT_NE(m.find("codes, more than the 256 a table can hold"), std::string::npos) << m;
  // The same table cut off by the end of the file, where stb would read its counts anyway.
  const std::string cut = bad.substr(0, dht + 4 + 17);
  const std::string m2 = test_io::error_of<IoError>([&] { decode_image(cut.data(), cut.size(), "cut.jpg", 3); });
  EXPECT_NE(m2.find("cut.jpg: JPEG Huffman table (DHT at byte " + std::to_string(dht) + ")"), std::string::npos) << m2;
}

TEST(ResourceBounds, OnlyPngAndJpegReachTheDecoder) {
  // A 1x1 BMP, which stb would decode: refused by its signature.
  std::string bmp = "BM";
  bmp += std::string(52, '\0');
  const std::string m = test_io::error_of<IoError>([&] { decode_image(bmp.data(), bmp.size(), "pic.bmp", 3); });
  EXPECT_NE(m.find("pic.bmp: not a PNG or JPEG file"), std::string::npos) << m;
}

TEST(ResourceBounds, ConfigSizesAgainstTheLimits) {
  // configs/tiny_test.yaml with one key's line replaced.
  auto config_error = [](const std::string& key, const std::string& value) {
    std::string text = *shipped_file("configs/tiny_test.yaml");
    if (!key.empty()) {
      const size_t at = text.find("\n  " + key + ":");
      EXPECT_NE(at, std::string::npos) << key;
      const size_t end = text.find('\n', at + 1);
      text.replace(at, end - at, "\n  " + key + ": " + value);
    }
    return test_io::error_of<ConfigError>([&] { load_config_text(text, "bounds.yaml"); });
  };
  EXPECT_EQ(config_error("", ""), "");  // the base config itself is fine
  EXPECT_NE(config_error("embed_dim", "1000000").find("embed_dim = 1000000"), std::string::npos);
  EXPECT_NE(config_error("img_size", "[100000, 100000]").find("img_h = 100000"), std::string::npos);
  EXPECT_NE(config_error("moe_experts", "100000").find("moe_experts = 100000"), std::string::npos);
  EXPECT_NE(config_error("mlp_ratio", "1.0e+30").find("mlp_ratio"), std::string::npos);
  EXPECT_NE(config_error("moe_mlp_ratio", ".nan").find("moe_mlp_ratio"), std::string::npos);
  EXPECT_NE(config_error("embed_dim", "99999999999999999999").find("embed_dim"), std::string::npos);
}

}  // namespace
}  // namespace m3vit
