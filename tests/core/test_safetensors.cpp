// safetensors reader/writer: round trip, alignment, every corruption the reader must name, a
// truncation/bit-flip sweep that may only ever throw m3vit::Error, and a cross-check in both
// directions with an independent numpy reader/writer written by hand in Python.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "common/errors.h"
#include "io/safetensors.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

using test_io::read_bytes;
using test_io::write_bytes;

class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_io::make_scratch_dir("safetensors"); }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A file made by hand: 8-byte length, the JSON text as given, then `data`.
  std::string raw_file(const std::string& name, const std::string& json, const std::vector<uint8_t>& data,
                       int64_t claimed_len = -1) {
    std::vector<uint8_t> b(8);
    uint64_t n = claimed_len < 0 ? json.size() : static_cast<uint64_t>(claimed_len);
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
    b.insert(b.end(), json.begin(), json.end());
    b.insert(b.end(), data.begin(), data.end());
    write_bytes(path(name), b);
    return path(name);
  }

  // Opening must fail with a FormatError whose message holds every one of `words`.
  void expect_format_error(const std::string& file, const std::vector<std::string>& words) {
    try {
      SafeTensorsFile f(file);
      ADD_FAILURE() << "opened a corrupt file: " << file;
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' missing in: " << msg;
    }
  }

  // The test file of the round trip: several dtypes, an odd-sized tensor, a scalar, an empty tensor.
  std::string write_sample(const std::string& name) {
    SafeTensorsWriter w;
    std::vector<float> a(6);
    for (int i = 0; i < 6; ++i) a[i] = 0.5f * i - 1.0f;
    std::vector<int64_t> b = {-3, 0, 7, int64_t{1} << 40};
    std::vector<uint8_t> c = {1, 2, 3};
    uint8_t d = 1;
    std::vector<uint16_t> e = {0x3C00, 0xC000};  // fp16 1.0, -2.0
    w.add("a.weight", DType::F32, {2, 3}, a.data(), a.size() * 4);
    w.add("b", DType::I64, {4}, b.data(), b.size() * 8);
    w.add("c", DType::U8, {3}, c.data(), 3);
    w.add("d", DType::BOOL, {}, &d, 1);
    w.add("empty", DType::F32, {0, 5}, nullptr, 0);
    w.add("e", DType::F16, {2}, e.data(), 4);
    w.set_metadata("format", "test");
    w.set_metadata("note", "{\"json\": [1, 2]}");
    w.write(path(name));
    return path(name);
  }

  std::string dir_;
};

TEST_F(SafeTensorsTest, RoundTripKeepsValuesShapesMetadataAndOrder) {
  SafeTensorsFile f(write_sample("s.safetensors"));
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a.weight", "b", "c", "d", "empty", "e"}));
  const TensorView& a = f.get("a.weight", DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.f32()[i], 0.5f * i - 1.0f);
  const TensorView& b = f.get("b", DType::I64, {4});
  int64_t bv[4];
  std::memcpy(bv, b.data, 32);
  EXPECT_EQ(bv[0], -3);
  EXPECT_EQ(bv[3], int64_t{1} << 40);
  EXPECT_EQ(static_cast<const uint8_t*>(f.get("c", DType::U8, {3}).data)[2], 3);
  EXPECT_EQ(f.get("d").shape.size(), 0u);
  EXPECT_EQ(f.get("d").nbytes, 1u);
  EXPECT_EQ(f.get("empty", DType::F32, {0, 5}).nbytes, 0u);
  uint16_t ev[2];
  std::memcpy(ev, f.get("e", DType::F16, {2}).data, 4);
  EXPECT_EQ(ev[1], 0xC000);
  EXPECT_EQ(f.metadata().at("format"), "test");
  EXPECT_EQ(f.metadata().at("note"), "{\"json\": [1, 2]}");
  // Tensors are packed back to back (the reference implementation rejects gaps) and the data area
  // starts 64-byte aligned in the file (and so in memory: mmap is page aligned).
  auto names = f.names();
  EXPECT_EQ(f.file_offset(names.front()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.get(names.front()).data) % 64, 0u);
  for (size_t i = 1; i < names.size(); ++i)
    EXPECT_EQ(f.file_offset(names[i]), f.file_offset(names[i - 1]) + f.get(names[i - 1]).nbytes) << names[i];
  // file_offset points at the bytes: read them back with plain file I/O.
  auto bytes = read_bytes(path("s.safetensors"));
  float first;
  std::memcpy(&first, bytes.data() + f.file_offset("a.weight"), 4);
  EXPECT_EQ(first, -1.0f);
  EXPECT_FALSE(f.has("nope"));
  EXPECT_THROW(f.get("nope"), FormatError);
}

TEST_F(SafeTensorsTest, GetChecksDtypeAndShapeWithBothInTheMessage) {
  SafeTensorsFile f(write_sample("s.safetensors"));
  try {
    f.get("a.weight", DType::F32, {3, 2});
    FAIL() << "no ShapeError";
  } catch (const ShapeError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("a.weight"), std::string::npos);
    EXPECT_NE(msg.find("[3, 2]"), std::string::npos);
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos);
  }
  EXPECT_THROW(f.get("b", DType::I32, {4}), ShapeError);
  EXPECT_THROW(f.get("b").f32(), FormatError);
}

TEST_F(SafeTensorsTest, MovedFileStaysReadable) {
  SafeTensorsFile f(write_sample("s.safetensors"));
  SafeTensorsFile g(std::move(f));
  EXPECT_EQ(g.get("a.weight").f32()[1], -0.5f);
  SafeTensorsFile h(write_sample("t.safetensors"));
  h = std::move(g);
  EXPECT_EQ(h.get("c").nbytes, 3u);
}

TEST_F(SafeTensorsTest, WriterRejectsBadInputAndWritesAtomically) {
  SafeTensorsWriter w;
  float x[2] = {1, 2};
  w.add("x", DType::F32, {2}, x, 8);
  EXPECT_THROW(w.add("x", DType::F32, {2}, x, 8), FormatError);
  EXPECT_THROW(w.add("y", DType::F32, {3}, x, 8), FormatError);
  EXPECT_THROW(w.add("__metadata__", DType::F32, {2}, x, 8), FormatError);
  EXPECT_THROW(w.add("", DType::F32, {2}, x, 8), FormatError);
  // Unwritable target: IoError, and nothing (not even a temp file) is left behind.
  EXPECT_THROW(w.write(path("no/such/dir/x.safetensors")), IoError);
  EXPECT_FALSE(std::filesystem::exists(path("no")));
  // Overwriting replaces the old file in one step.
  w.write(path("x.safetensors"));
  SafeTensorsWriter w2;
  w2.add("z", DType::F32, {1}, x, 4);
  w2.write(path("x.safetensors"));
  SafeTensorsFile f(path("x.safetensors"));
  EXPECT_EQ(f.names(), std::vector<std::string>{"z"});
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(SafeTensorsTest, MissingFileIsAnIoErrorNamingThePath) {
  try {
    SafeTensorsFile f(path("absent.safetensors"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.safetensors"), std::string::npos);
  }
}

TEST_F(SafeTensorsTest, EachCorruptionIsANamedFormatError) {
  const std::vector<uint8_t> data(24, 0);
  expect_format_error(raw_file("short", "", {1, 2, 3}, 0), {"short", "too short"});
  write_bytes(path("tiny"), {1, 2, 3, 4, 5});
  expect_format_error(path("tiny"), {"tiny", "truncated"});
  expect_format_error(raw_file("len", "{}", data, 1000), {"len", "header length 1000"});
  expect_format_error(raw_file("json", "{\"a\": {\"dtype\": ", data), {"json", "JSON"});
  expect_format_error(raw_file("array", "[1, 2]", data), {"array", "not a JSON object"});
  expect_format_error(raw_file("dtype", R"({"w": {"dtype": "F8", "shape": [2], "data_offsets": [0, 2]}})", data),
                      {"dtype", "'w'", "F8"});
  expect_format_error(raw_file("count", R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", data),
                      {"count", "'w'", "24"});
  expect_format_error(raw_file("outside", R"({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})", data),
                      {"outside", "'w'", "end offset"});
  expect_format_error(raw_file("overlap", R"({"u": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                                            "v": {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]}})", data),
                      {"overlap", "'v'", "'u'", "overlaps"});
  expect_format_error(raw_file("reversed", R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [8, 4]}})", data),
                      {"reversed", "'w'"});
  expect_format_error(raw_file("negative", R"({"w": {"dtype": "U8", "shape": [-4], "data_offsets": [0, 4]}})", data),
                      {"negative", "'w'", "shape[0]"});
  expect_format_error(raw_file("fraction", R"({"w": {"dtype": "U8", "shape": [2.5], "data_offsets": [0, 4]}})", data),
                      {"fraction", "'w'"});
  expect_format_error(raw_file("noshape", R"({"w": {"dtype": "U8", "data_offsets": [0, 4]}})", data),
                      {"noshape", "'w'", "shape"});
  expect_format_error(raw_file("offs", R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0]}})", data),
                      {"offs", "'w'", "data_offsets"});
  expect_format_error(raw_file("meta", R"({"__metadata__": {"k": 3}})", data), {"meta", "'k'"});
  expect_format_error(raw_file("dup", R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                        "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})", data),
                      {"dup", "'w'", "twice"});
  expect_format_error(raw_file("huge", R"({"w": {"dtype": "F64", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 0]}})", data),
                      {"huge", "'w'"});
  // Gaps between tensors are fine (our writer pads), and so is a zero-size tensor anywhere.
  SafeTensorsFile ok(raw_file("gap", R"({"u": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                                       "z": {"dtype": "F32", "shape": [0], "data_offsets": [1, 1]},
                                       "v": {"dtype": "U8", "shape": [2], "data_offsets": [8, 10]}})", data));
  EXPECT_EQ(ok.names(), (std::vector<std::string>{"u", "z", "v"}));
}

// Truncating a valid file anywhere, or flipping bits of its header, may only ever raise m3vit::Error.
TEST_F(SafeTensorsTest, TruncationAndBitFlipSweepOnlyThrowsTypedErrors) {
  const std::string good = write_sample("good.safetensors");
  const auto bytes = read_bytes(good);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  const std::string probe = path("probe.safetensors");
  int truncated_errors = 0;
  for (size_t len = 0; len < bytes.size(); ++len) {
    write_bytes(probe, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len)));
    try {
      SafeTensorsFile f(probe);
      ADD_FAILURE() << "a file truncated to " << len << " of " << bytes.size() << " bytes opened";
    } catch (const Error&) {
      ++truncated_errors;
    }
  }
  EXPECT_EQ(truncated_errors, static_cast<int>(bytes.size()));

  std::mt19937 rng(12345);
  int opened = 0, rejected = 0;
  const size_t header_end = 8 + static_cast<size_t>(header_len);
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x20}, uint8_t{0xFF}, static_cast<uint8_t>(rng() | 1)}) {
      auto b = bytes;
      b[pos] ^= mask;
      write_bytes(probe, b);
      try {
        SafeTensorsFile f(probe);
        for (const auto& n : f.names()) {  // whatever opened must be readable in full
          const TensorView& v = f.get(n);
          uint64_t sum = 0;
          for (size_t i = 0; i < v.nbytes; ++i) sum += static_cast<const uint8_t*>(v.data)[i];
          EXPECT_LE(sum, 255u * v.nbytes);
        }
        ++opened;
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(opened, 0);  // e.g. flips inside padding spaces or metadata text stay valid
}

// Our writer -> a numpy reader written from the format description; a file written by hand in
// Python (struct + json + numpy, contiguous and unaligned) -> our reader.
TEST_F(SafeTensorsTest, CrossCheckWithHandWrittenPythonReaderAndWriter) {
  SafeTensorsWriter w;
  std::vector<float> f32(12);
  for (int i = 0; i < 12; ++i) f32[i] = 0.25f * i - 1.5f;
  std::vector<int64_t> i64 = {5, -6, int64_t{1} << 50};
  std::vector<int32_t> i32 = {-7, 8};
  std::vector<uint8_t> u8 = {0, 128, 255};
  std::vector<uint8_t> bl = {1, 0, 1, 1};
  std::vector<uint16_t> f16 = {0x3800, 0xBC00};  // 0.5, -1.0
  w.add("blocks.0.w", DType::F32, {3, 4}, f32.data(), 48);
  w.add("i64", DType::I64, {3}, i64.data(), 24);
  w.add("i32", DType::I32, {2, 1}, i32.data(), 8);
  w.add("u8", DType::U8, {3}, u8.data(), 3);
  w.add("bool", DType::BOOL, {2, 2}, bl.data(), 4);
  w.add("f16", DType::F16, {2}, f16.data(), 4);
  w.set_metadata("m3vit_config", "{\"d\": 32}");
  w.write(path("ours.safetensors"));

  const std::string py = R"PY(
import json, struct, sys
import numpy as np
ours, theirs = sys.argv[1], sys.argv[2]
DT = {'F32': np.float32, 'F64': np.float64, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32,
      'U8': np.uint8, 'BOOL': np.bool_, 'I8': np.int8, 'I16': np.int16}
raw = open(ours, 'rb').read()
n, = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n].decode('utf-8'))
data = raw[8 + n:]
meta = header.pop('__metadata__')
assert meta == {'m3vit_config': '{"d": 32}'}, meta
assert (8 + n) % 64 == 0, n
t = {}
spans = sorted(v['data_offsets'] for v in header.values())
assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])), spans  # packed, no gaps
assert spans[-1][1] == len(data), (spans[-1], len(data))
for k, v in header.items():
    b, e = v['data_offsets']
    t[k] = np.frombuffer(data[b:e], dtype=DT[v['dtype']]).reshape(v['shape'])
want = {'blocks.0.w': (np.arange(12, dtype=np.float32) * 0.25 - 1.5).reshape(3, 4),
        'i64': np.array([5, -6, 1 << 50], np.int64), 'i32': np.array([[-7], [8]], np.int32),
        'u8': np.array([0, 128, 255], np.uint8), 'bool': np.array([[True, False], [True, True]]),
        'f16': np.array([0.5, -1.0], np.float16)}
assert sorted(t) == sorted(want), sorted(t)
for k in want:
    assert t[k].dtype == want[k].dtype and t[k].shape == want[k].shape and np.array_equal(t[k], want[k]), k
# Now write a file by hand: contiguous offsets, no alignment, insertion order differs from names.
arrs = {'z.last': np.linspace(-1, 1, 7, dtype=np.float64),
        'a.first': np.arange(6, dtype=np.int32).reshape(2, 3) - 2,
        'odd': np.array([3, 1, 4], np.uint8),
        'h': np.array([[0.25, -8.0]], np.float16),
        'mask': np.array([False, True, True])}
name = {np.dtype(np.float64): 'F64', np.dtype(np.int32): 'I32', np.dtype(np.uint8): 'U8',
        np.dtype(np.float16): 'F16', np.dtype(np.bool_): 'BOOL'}
hdr, blob = {'__metadata__': {'who': 'python'}}, b''
for k, a in arrs.items():
    b = a.tobytes()
    hdr[k] = {'dtype': name[a.dtype], 'shape': list(a.shape), 'data_offsets': [len(blob), len(blob) + len(b)]}
    blob += b
h = json.dumps(hdr).encode('utf-8')
open(theirs, 'wb').write(struct.pack('<Q', len(h)) + h + blob)
print('PY_OK')
)PY";
  auto r = test_io::run_python(dir_, "st_cross", py, path("ours.safetensors") + " " + path("theirs.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_NE(r.output.find("PY_OK"), std::string::npos) << r.output;

  SafeTensorsFile f(path("theirs.safetensors"));
  EXPECT_EQ(f.names(), (std::vector<std::string>{"z.last", "a.first", "odd", "h", "mask"}));
  EXPECT_EQ(f.metadata().at("who"), "python");
  const TensorView& z = f.get("z.last", DType::F64, {7});
  for (int i = 0; i < 7; ++i) {
    double v;
    std::memcpy(&v, static_cast<const uint8_t*>(z.data) + 8 * i, 8);
    EXPECT_DOUBLE_EQ(v, -1.0 + 2.0 * i / 6.0);
  }
  const TensorView& a = f.get("a.first", DType::I32, {2, 3});
  for (int i = 0; i < 6; ++i) {
    int32_t v;
    std::memcpy(&v, static_cast<const uint8_t*>(a.data) + 4 * i, 4);
    EXPECT_EQ(v, i - 2);
  }
  const TensorView& odd = f.get("odd", DType::U8, {3});
  EXPECT_EQ(static_cast<const uint8_t*>(odd.data)[2], 4);
  const TensorView& h = f.get("h", DType::F16, {1, 2});
  uint16_t hv[2];
  std::memcpy(hv, h.data, 4);
  EXPECT_EQ(hv[0], 0x3400);  // 0.25
  EXPECT_EQ(hv[1], 0xC800);  // -8.0
  const TensorView& m = f.get("mask", DType::BOOL, {3});
  EXPECT_EQ(static_cast<const uint8_t*>(m.data)[0], 0);
  EXPECT_EQ(static_cast<const uint8_t*>(m.data)[1], 1);
}

}  // namespace
}  // namespace m3vit
