// The torch-free .pth reader against files written at test time by torch.save (/usr/bin/python3,
// torch 1.13): an OrderedDict state dict, a one-entry dict, a nested checkpoint with optimizer state
// and Python objects, strided/shared-storage views, every storage dtype, nn.Parameters, the legacy
// (non-zip) format, any archive-name prefix, and corrupt files. The expected tensors are flattened
// by Python with the same rule (dicts only, keys joined with '.') and saved as .npy.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "io/npy.h"
#include "io/pth_reader.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

const char* kMakeFiles = R"PY(
import argparse, collections, io, os, sys, zipfile
import numpy as np
import torch
import torch.nn as nn
d = sys.argv[1]
torch.manual_seed(0)

def flatten(obj, prefix=''):
    # The reader's rule: tensors reachable through dicts; int or str keys joined with '.'.
    out = collections.OrderedDict()
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)) and not isinstance(k, bool):
                out.update(flatten(v, (prefix + '.' if prefix else '') + str(k)))
    return out

def expect(tag, obj):
    os.makedirs(d + '/expect_' + tag, exist_ok=True)
    with open(d + '/expect_' + tag + '/keys.txt', 'w') as f:
        for i, (k, t) in enumerate(flatten(obj).items()):
            t = t.detach()
            f.write('%d %s %s\n' % (i, str(t.dtype).replace('torch.', ''), k))
            a = t.float().numpy() if t.dtype == torch.bfloat16 else t.contiguous().numpy()
            np.save(d + '/expect_%s/%d.npy' % (tag, i), a)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(8, 5)
        self.blocks = nn.Sequential(nn.Linear(5, 5), nn.LayerNorm(5))
net = Net()
net.train()
net.bn(torch.randn(2, 4, 3, 3))  # running statistics and num_batches_tracked (a 0-d int64) move
sd = net.state_dict()
assert isinstance(sd, collections.OrderedDict)
torch.save(sd, d + '/sd.pth'); expect('sd', sd)

one = {'only': torch.randn(3, 2)}
torch.save(one, d + '/one.pth'); expect('one', one)

opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
net.fc(torch.randn(2, 8)).sum().backward()
opt.step()
nested = {'model': sd, 'epoch': 3, 'args': argparse.Namespace(lr=0.1, name='x'), 'optimizer': opt.state_dict(),
          'best': 0.5, 'hist': [1, 2, torch.ones(2)], 'np': np.float64(1.5), 'flag': True, 'none': None,
          'text': 'hello', 'bytes': b'\x00\x01', 'big': 1 << 70, 'tup': (1, 'a')}
torch.save(nested, d + '/nested.pth'); expect('nested', nested)

base = torch.arange(40, dtype=torch.float32)
views = {'base': base, 'slice': base[5:15].view(2, 5), 'strided': base[2:40:3],
         'tt': torch.randn(3, 5).t(), 'perm': torch.randn(2, 3, 4).permute(2, 0, 1),
         'expand': torch.randn(3, 1).expand(3, 4), 'scalar': torch.tensor(2.5), 'empty': torch.zeros(0, 3)}
assert not views['tt'].is_contiguous() and views['slice'].storage_offset() == 5
torch.save(views, d + '/views.pth'); expect('views', views)

dtypes = {'f16': torch.randn(5).half(), 'bf16': torch.randn(2, 3).bfloat16(), 'f64': torch.randn(3).double(),
          'i64': torch.tensor([-(1 << 40), 7]), 'i32': torch.tensor([-5, 6], dtype=torch.int32),
          'i16': torch.tensor([300, -2], dtype=torch.int16), 'i8': torch.tensor([-128, 5], dtype=torch.int8),
          'u8': torch.tensor([0, 255], dtype=torch.uint8), 'bool': torch.tensor([True, False, True]),
          'bool_t': torch.tensor([[True, False], [False, False]]).t()}
torch.save(dtypes, d + '/dtypes.pth'); expect('dtypes', dtypes)

params = {'p': nn.Parameter(torch.randn(2, 2)), 'list': [torch.randn(2)], 'sub': {'q': nn.Parameter(torch.randn(3))}}
torch.save(params, d + '/params.pth'); expect('params', params)

legacy = {'sd': sd, 'slice': base[5:15], 'tt': views['tt'], 'epoch': 2}
torch.save(legacy, d + '/legacy.pth', _use_new_zipfile_serialization=False); expect('legacy', legacy)

# Archive-name prefix: a buffer gives 'archive/', a file name its stem.
buf = io.BytesIO(); torch.save(one, buf); open(d + '/buffer.pth', 'wb').write(buf.getvalue())
torch.save(one, d + '/other_name.pt')
print(sorted(set(n.split('/')[0] for n in zipfile.ZipFile(d + '/buffer.pth').namelist())),
      sorted(set(n.split('/')[0] for n in zipfile.ZipFile(d + '/other_name.pt').namelist())))

# Containers that are zips but broken inside.
src = zipfile.ZipFile(d + '/one.pth')
names = src.namelist()
pkl = [n for n in names if n.endswith('data.pkl')][0]
def rezip(path, replace=None, drop=None, compress=None):
    with zipfile.ZipFile(path, 'w') as z:
        for n in names:
            if n == drop: continue
            data = replace if (n == pkl and replace is not None) else src.read(n)
            z.writestr(n, data, compress_type=zipfile.ZIP_DEFLATED if n == compress else zipfile.ZIP_STORED)
good_pkl = src.read(pkl)
rezip(d + '/bad_opcode.pth', replace=good_pkl[:2] + b'\xff' + good_pkl[3:])
rezip(d + '/short_pickle.pth', replace=good_pkl[:len(good_pkl) // 2])
rezip(d + '/no_storage.pth', drop=[n for n in names if '/data/' in n][0])
rezip(d + '/deflated.pth', compress=pkl)
with zipfile.ZipFile(d + '/no_pkl.pth', 'w') as z:
    z.writestr('archive/version', '3')
# A storage smaller than the view that uses it.
with zipfile.ZipFile(d + '/short_storage.pth', 'w') as z:
    for n in names:
        data = src.read(n)
        if '/data/' in n: data = data[:8]
        z.writestr(n, data)
# One flipped bit inside the tensor data: only the CRC can tell.
raw = bytearray(open(d + '/one.pth', 'rb').read())
info = [i for i in src.infolist() if '/data/' in i.filename][0]
start = info.header_offset + 30 + int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], 'little') \
    + int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], 'little')
raw[start + 5] ^= 0x40
open(d + '/flipped.pth', 'wb').write(bytes(raw))
open(d + '/text.pth', 'w').write('this is not a checkpoint\n')
print('PY_OK')
)PY";

class PthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixtures_ = test_io::cached_python_fixture("pth", kMakeFiles, {}, &python_output_);
    scratch_ = test_io::make_scratch_dir("pth");
  }
  static void TearDownTestSuite() {
    if (!any_failure_) std::filesystem::remove_all(scratch_);
  }
  void SetUp() override { ASSERT_FALSE(fixtures_.empty()) << python_output_; }
  void TearDown() override { any_failure_ |= HasFailure(); }
  static std::string path(const std::string& name) { return fixtures_ + "/" + name; }  // made by Python
  static std::string scratch(const std::string& name) { return scratch_ + "/" + name; }

  // Every tensor Python flattened, and nothing else, with dtype, shape and bytes equal.
  static void expect_matches(const std::map<std::string, OwnedTensor>& got, const std::string& tag) {
    std::ifstream in(path("expect_" + tag + "/keys.txt"));
    std::string line;
    std::set<std::string> want_keys;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string idx, dtype, key;
      ls >> idx >> dtype;
      std::getline(ls >> std::ws, key);
      want_keys.insert(key);
      auto it = got.find(key);
      if (it == got.end()) {
        ADD_FAILURE() << tag << ": missing '" << key << "'";
        continue;
      }
      const OwnedTensor& t = it->second;
      const OwnedTensor want = read_npy(path("expect_" + tag + "/" + idx + ".npy"));
      static const std::map<std::string, DType> kNames = {
          {"float32", DType::F32}, {"float64", DType::F64}, {"float16", DType::F16}, {"bfloat16", DType::BF16},
          {"int64", DType::I64},   {"int32", DType::I32},   {"int16", DType::I16},   {"int8", DType::I8},
          {"uint8", DType::U8},    {"bool", DType::BOOL}};
      EXPECT_EQ(t.dtype, kNames.at(dtype)) << tag << ": " << key;
      EXPECT_EQ(t.shape, want.shape) << tag << ": " << key;
      if (t.dtype == DType::BF16) {  // numpy has no bfloat16: Python saved the values as float32
        ASSERT_EQ(t.bytes.size() * 2, want.bytes.size());
        for (int64_t i = 0; i < t.numel(); ++i) {
          uint16_t h;
          std::memcpy(&h, t.bytes.data() + 2 * i, 2);
          uint32_t bits = static_cast<uint32_t>(h) << 16;
          float v, w;
          std::memcpy(&v, &bits, 4);
          std::memcpy(&w, want.bytes.data() + 4 * i, 4);
          EXPECT_EQ(v, w) << tag << ": " << key << "[" << i << "]";
        }
      } else {
        EXPECT_EQ(t.bytes, want.bytes) << tag << ": " << key;
      }
    }
    std::set<std::string> got_keys;
    for (const auto& [k, v] : got) got_keys.insert(k);
    EXPECT_EQ(got_keys, want_keys) << tag;
  }

  static void expect_format_error(const std::string& name, const std::string& word) {
    try {
      read_pth_tensors(path(name));
      ADD_FAILURE() << name << " was accepted";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
      EXPECT_NE(msg.find(word), std::string::npos) << msg;
    }
  }

  static inline std::string fixtures_, scratch_, python_output_;
  static inline bool any_failure_ = false;
};

TEST_F(PthTest, OrderedDictStateDict) {
  auto t = read_pth_tensors(path("sd.pth"));
  expect_matches(t, "sd");
  ASSERT_TRUE(t.count("bn.num_batches_tracked"));
  EXPECT_TRUE(t.at("bn.num_batches_tracked").shape.empty());  // 0-d int64
  EXPECT_EQ(t.at("blocks.1.weight").shape, std::vector<int64_t>{5});
}

TEST_F(PthTest, OneEntryDict) { expect_matches(read_pth_tensors(path("one.pth")), "one"); }

TEST_F(PthTest, NestedCheckpointSkipsNonTensorValues) {
  auto t = read_pth_tensors(path("nested.pth"));
  expect_matches(t, "nested");
  EXPECT_TRUE(t.count("model.conv.weight"));
  EXPECT_TRUE(t.count("optimizer.state.4.momentum_buffer"));
  for (const auto& [k, v] : t) EXPECT_TRUE(k.rfind("model.", 0) == 0 || k.rfind("optimizer.state.", 0) == 0) << k;
}

TEST_F(PthTest, StridedViewsAndSharedStoragesComeOutContiguous) {
  auto t = read_pth_tensors(path("views.pth"));
  expect_matches(t, "views");
  // Hand-checked values of two views of arange(40).
  float s[10];
  std::memcpy(s, t.at("slice").bytes.data(), 40);
  EXPECT_EQ(s[0], 5.0f);
  EXPECT_EQ(s[9], 14.0f);
  std::memcpy(s, t.at("strided").bytes.data(), 8);
  EXPECT_EQ(s[1], 5.0f);
  EXPECT_EQ(t.at("tt").shape, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(t.at("expand").shape, (std::vector<int64_t>{3, 4}));
}

TEST_F(PthTest, EveryStorageDtype) { expect_matches(read_pth_tensors(path("dtypes.pth")), "dtypes"); }

TEST_F(PthTest, ParametersAndListsOfTensors) {
  auto t = read_pth_tensors(path("params.pth"));
  expect_matches(t, "params");
  EXPECT_FALSE(t.count("list"));
}

TEST_F(PthTest, LegacyNonZipFormat) { expect_matches(read_pth_tensors(path("legacy.pth")), "legacy"); }

TEST_F(PthTest, AnyArchivePrefix) {
  EXPECT_NE(python_output_.find("['archive'] ['other_name']"), std::string::npos) << python_output_;
  expect_matches(read_pth_tensors(path("buffer.pth")), "one");
  expect_matches(read_pth_tensors(path("other_name.pt")), "one");
}

TEST_F(PthTest, CorruptFilesAreNamedErrors) {
  expect_format_error("bad_opcode.pth", "opcode 0xff");
  expect_format_error("short_pickle.pth", "pickle");
  expect_format_error("no_storage.pth", "storage '0' is missing");
  expect_format_error("deflated.pth", "compressed");
  expect_format_error("no_pkl.pth", "data.pkl");
  expect_format_error("short_storage.pth", "storage '0'");
  expect_format_error("text.pth", "not a PyTorch file");
  EXPECT_THROW(read_pth_tensors(path("absent.pth")), IoError);
  EXPECT_THROW(read_pth_tensors(fixtures_), IoError);  // a directory

  // A flipped bit inside tensor data is caught by the zip CRC.
  expect_format_error("flipped.pth", "CRC");
}

// Truncation anywhere and single-byte corruption anywhere only ever raise m3vit::Error.
TEST_F(PthTest, TruncationAndCorruptionSweepOnlyThrowsTypedErrors) {
  for (const char* name : {"one.pth", "legacy.pth", "sd.pth"}) {
    const auto bytes = test_io::read_bytes(path(name));
    const std::string probe = scratch("probe.pth");
    const size_t step = bytes.size() > 4000 ? 7 : 1;
    for (size_t len = 0; len < bytes.size(); len += step) {
      test_io::write_bytes(probe, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len)));
      try {
        read_pth_tensors(probe);
        // A legacy file cut after its last storage byte is complete; anything shorter must fail.
        ADD_FAILURE() << name << " truncated to " << len << " of " << bytes.size() << " bytes was accepted";
      } catch (const Error&) {
      }
    }
  }
  const auto bytes = test_io::read_bytes(path("one.pth"));
  int accepted = 0, rejected = 0;
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    auto b = bytes;
    b[pos] ^= 0xA5;
    test_io::write_bytes(scratch("probe.pth"), b);
    try {
      read_pth_tensors(scratch("probe.pth"));
      ++accepted;  // e.g. padding inside zip extra fields, file timestamps
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  const auto legacy = test_io::read_bytes(path("legacy.pth"));
  for (size_t pos = 0; pos < legacy.size(); pos += 3) {
    auto b = legacy;
    b[pos] ^= 0xFF;
    test_io::write_bytes(scratch("probe.pth"), b);
    try {
      read_pth_tensors(scratch("probe.pth"));
      ++accepted;  // flips inside tensor data or strings cannot be detected in the legacy format
    } catch (const Error&) {
      ++rejected;
    }
  }
}

}  // namespace
}  // namespace m3vit
