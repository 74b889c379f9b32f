// .npy reader/writer against numpy itself (np.save / np.load / np.lib.format.write_array through
// /usr/bin/python3): every supported dtype, format versions 1.0/2.0/3.0, Fortran order, 0-d and empty
// arrays, and corrupt files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/errors.h"
#include "io/npy.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_io::make_scratch_dir("npy"); }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

template <class T>
std::vector<T> values_of(const OwnedTensor& t) {
  EXPECT_EQ(t.bytes.size(), t.numel() * sizeof(T));
  std::vector<T> v(t.numel());
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

// numpy writes; we read. Values follow formulas both sides know.
TEST_F(NpyTest, ReadsWhatNumpyWrites) {
  const std::string py = R"PY(
import sys
import numpy as np
d = sys.argv[1]
np.save(d + '/f4.npy', (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 4))
np.save(d + '/f8.npy', np.linspace(-1, 1, 5))
np.save(d + '/i4.npy', (np.arange(6, dtype=np.int32) - 3).reshape(3, 2))
np.save(d + '/i8.npy', np.array([-(1 << 40), 0, 1 << 40], np.int64))
np.save(d + '/u1.npy', np.arange(250, 256, dtype=np.uint8))
np.save(d + '/b1.npy', np.array([[True, False, True]]))
np.save(d + '/f2.npy', np.array([0.5, -2.0, 65504.0], np.float16))
np.save(d + '/scalar.npy', np.float32(7.25))
np.save(d + '/empty.npy', np.zeros((0, 3), np.float32))
# Fortran order: the logical array is arange reshaped in C order; numpy stores it column-major.
a = np.asfortranarray((np.arange(24, dtype=np.float32)).reshape(2, 3, 4))
assert a.flags.f_contiguous and not a.flags.c_contiguous
np.save(d + '/fortran.npy', a)
np.save(d + '/fortran_i8.npy', np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)))
for v in [(2, 0), (3, 0)]:
    with open(d + '/v%d.npy' % v[0], 'wb') as f:
        np.lib.format.write_array(f, np.arange(10, dtype=np.float64).reshape(2, 5), version=v)
print('PY_OK')
)PY";
  auto r = test_io::run_python(dir_, "npy_write", py, dir_);
  ASSERT_EQ(r.status, 0) << r.output;

  OwnedTensor f4 = read_npy(path("f4.npy"));
  EXPECT_EQ(f4.dtype, DType::F32);
  EXPECT_EQ(f4.shape, (std::vector<int64_t>{2, 3, 4}));
  auto f4v = values_of<float>(f4);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(f4v[i], 0.5f * i - 3.0f);

  OwnedTensor f8 = read_npy(path("f8.npy"));
  EXPECT_EQ(f8.dtype, DType::F64);
  auto f8v = values_of<double>(f8);
  for (int i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(f8v[i], -1.0 + 0.5 * i);

  OwnedTensor i4 = read_npy(path("i4.npy"));
  EXPECT_EQ(i4.dtype, DType::I32);
  EXPECT_EQ(i4.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(values_of<int32_t>(i4), (std::vector<int32_t>{-3, -2, -1, 0, 1, 2}));

  OwnedTensor i8 = read_npy(path("i8.npy"));
  EXPECT_EQ(i8.dtype, DType::I64);
  EXPECT_EQ(values_of<int64_t>(i8), (std::vector<int64_t>{-(int64_t{1} << 40), 0, int64_t{1} << 40}));

  OwnedTensor u1 = read_npy(path("u1.npy"));
  EXPECT_EQ(u1.dtype, DType::U8);
  EXPECT_EQ(values_of<uint8_t>(u1), (std::vector<uint8_t>{250, 251, 252, 253, 254, 255}));

  OwnedTensor b1 = read_npy(path("b1.npy"));
  EXPECT_EQ(b1.dtype, DType::BOOL);
  EXPECT_EQ(b1.shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(values_of<uint8_t>(b1), (std::vector<uint8_t>{1, 0, 1}));

  OwnedTensor f2 = read_npy(path("f2.npy"));
  EXPECT_EQ(f2.dtype, DType::F16);
  EXPECT_EQ(values_of<uint16_t>(f2), (std::vector<uint16_t>{0x3800, 0xC000, 0x7BFF}));

  OwnedTensor sc = read_npy(path("scalar.npy"));
  EXPECT_TRUE(sc.shape.empty());
  EXPECT_EQ(values_of<float>(sc), std::vector<float>{7.25f});

  OwnedTensor em = read_npy(path("empty.npy"));
  EXPECT_EQ(em.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(em.bytes.empty());

  // Fortran order comes back in C order: element (i, j, k) = 12 i + 4 j + k.
  OwnedTensor fo = read_npy(path("fortran.npy"));
  EXPECT_EQ(fo.shape, (std::vector<int64_t>{2, 3, 4}));
  auto fov = values_of<float>(fo);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(fov[i], static_cast<float>(i));
  auto fo8 = values_of<int64_t>(read_npy(path("fortran_i8.npy")));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(fo8[i], i);

  for (const char* v : {"v2.npy", "v3.npy"}) {
    OwnedTensor t = read_npy(path(v));
    EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 5})) << v;
    auto tv = values_of<double>(t);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(tv[i], i) << v;
  }
}

// We write; numpy reads and checks every array against the same formulas.
TEST_F(NpyTest, NumpyReadsWhatWeWrite) {
  std::vector<float> f4(12);
  for (int i = 0; i < 12; ++i) f4[i] = 0.125f * i - 1.0f;
  write_npy(path("f4.npy"), DType::F32, {3, 4}, f4.data());
  std::vector<double> f8 = {1.5, -2.25};
  write_npy(path("f8.npy"), DType::F64, {2}, f8.data());
  std::vector<int32_t> i4 = {7, -8, 9};
  write_npy(path("i4.npy"), DType::I32, {1, 3}, i4.data());
  std::vector<int64_t> i8 = {int64_t{1} << 45, -1};
  write_npy(path("i8.npy"), DType::I64, {2, 1}, i8.data());
  std::vector<uint8_t> u1 = {0, 127, 255};
  write_npy(path("u1.npy"), DType::U8, {3}, u1.data());
  std::vector<uint8_t> b1 = {1, 0};
  write_npy(path("b1.npy"), DType::BOOL, {2}, b1.data());
  std::vector<uint16_t> f2 = {0x3C00, 0xC400};  // 1.0, -4.0
  write_npy(path("f2.npy"), DType::F16, {2}, f2.data());
  float s = 3.5f;
  write_npy(path("scalar.npy"), DType::F32, {}, &s);
  write_npy(path("empty.npy"), DType::F32, {2, 0, 3}, nullptr);
  OwnedTensor owned;
  owned.dtype = DType::I32;
  owned.shape = {2, 2};
  owned.bytes.resize(16);
  for (int i = 0; i < 4; ++i) std::memcpy(owned.bytes.data() + 4 * i, &i, 4);
  write_npy(path("owned.npy"), owned);
  // A shape long enough that the header exceeds 64 KiB needs format 2.0 (numpy caps arrays at 32
  // dimensions, so only our reader checks this one).
  std::vector<int64_t> long_shape(23000, 1);
  float one = 1.0f;
  write_npy(path("v2.npy"), DType::F32, long_shape, &one);

  const std::string py = R"PY(
import sys
import numpy as np
d = sys.argv[1]
def check(name, want):
    raw = open(d + '/' + name, 'rb').read()
    major = raw[6]
    hlen = int.from_bytes(raw[8:10] if major == 1 else raw[8:12], 'little')
    start = (10 if major == 1 else 12) + hlen
    assert start % 64 == 0, (name, start)
    got = np.load(d + '/' + name)
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    assert np.array_equal(got, want), (name, got, want)
    return major
check('f4.npy', (np.arange(12, dtype=np.float32) * 0.125 - 1).reshape(3, 4))
check('f8.npy', np.array([1.5, -2.25]))
check('i4.npy', np.array([[7, -8, 9]], np.int32))
check('i8.npy', np.array([[1 << 45], [-1]], np.int64))
check('u1.npy', np.array([0, 127, 255], np.uint8))
check('b1.npy', np.array([True, False]))
check('f2.npy', np.array([1.0, -4.0], np.float16))
check('scalar.npy', np.array(3.5, np.float32))
check('empty.npy', np.zeros((2, 0, 3), np.float32))
check('owned.npy', np.arange(4, dtype=np.int32).reshape(2, 2))
print('PY_OK')
)PY";
  auto r = test_io::run_python(dir_, "npy_read", py, dir_);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PY_OK"), std::string::npos) << r.output;
  // And our own reader agrees with our writer.
  EXPECT_EQ(test_io::read_bytes(path("v2.npy"))[6], 2);
  EXPECT_EQ(read_npy(path("v2.npy")).shape.size(), 23000u);
  EXPECT_EQ(values_of<int64_t>(read_npy(path("i8.npy"))), i8);
}

TEST_F(NpyTest, BadFilesAreNamedErrors) {
  auto expect_error = [&](const std::string& name, const std::vector<uint8_t>& bytes, const std::string& word) {
    test_io::write_bytes(path(name), bytes);
    try {
      read_npy(path(name));
      ADD_FAILURE() << name << " was accepted";
    } catch (const FormatError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
      EXPECT_NE(msg.find(word), std::string::npos) << msg;
    }
  };
  auto npy = [](const std::string& header, size_t data_bytes) {
    std::string h = header;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string s = std::string("\x93NUMPY\x01\x00", 8);
    s += static_cast<char>(h.size() & 0xff);
    s += static_cast<char>(h.size() >> 8);
    s += h;
    s.append(data_bytes, '\0');
    return std::vector<uint8_t>(s.begin(), s.end());
  };
  expect_error("magic.npy", {'N', 'U', 'M', 'P', 'Y', 0, 0, 0, 0, 0, 0}, "magic");
  expect_error("version.npy", {0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0, 0, 0}, "version 9");
  expect_error("truncated.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20), "needs 24");
  expect_error("long.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12), "needs 8");
  expect_error("bigendian.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), "'>f4'");
  expect_error("complex.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16), "'<c8'");
  expect_error("object.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16), "'|O'");
  expect_error("noshape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", 4), "shape");
  expect_error("badshape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 4), "shape");
  expect_error("badorder.npy", npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 4), "fortran_order");
  std::vector<uint8_t> past = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
  past[8] = 0xff;
  past[9] = 0xff;
  expect_error("past.npy", past, "runs past");
  EXPECT_THROW(read_npy(path("absent.npy")), IoError);
  float x = 1;
  EXPECT_THROW(write_npy(path("bf16.npy"), DType::BF16, {1}, &x), FormatError);
  EXPECT_THROW(write_npy(path("no/dir/x.npy"), DType::F32, {1}, &x), IoError);

  // Every truncation of a valid file is rejected with a typed error.
  write_npy(path("good.npy"), DType::F32, {2, 2}, std::vector<float>{1, 2, 3, 4}.data());
  auto good = test_io::read_bytes(path("good.npy"));
  for (size_t len = 0; len < good.size(); ++len) {
    test_io::write_bytes(path("cut.npy"), std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)));
    EXPECT_THROW(read_npy(path("cut.npy")), Error) << "length " << len;
  }
}

}  // namespace
}  // namespace m3vit
