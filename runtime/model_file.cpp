// Reading and checking a model export (runtime/model_file.h).
#include "runtime/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/errors.h"
#include "io/safetensors.h"
#include "runtime/int8_format.h"

namespace m3vit::rt {

void check_runnable(const ModelConfig& c) {
  c.validate();
  if (c.num_tasks() < 1) throw ConfigError("config has no tasks: the runtime needs at least one task head");
  if (c.in_chans != 3) throw ConfigError("in_chans = " + std::to_string(c.in_chans) + ": the runtime takes RGB images (3)");
  // Attention keeps one N x N score matrix per head and thread: 16384 tokens (Cityscapes' 1024 x 2048
  // at patch 16 is 8192) is 1 GiB of scores; a config asking for more is refused before any workspace
  // is sized from it.
  if (c.num_patches() > kMaxRuntimeTokens)
    throw ConfigError("image " + std::to_string(c.img_h) + "x" + std::to_string(c.img_w) + " at patch " +
                      std::to_string(c.patch) + " gives " + std::to_string(c.num_patches()) +
                      " tokens: the runtime takes at most " + std::to_string(kMaxRuntimeTokens));
  if (!c.moe_blocks.empty() && c.moe_hidden() < 1)
    throw ConfigError("moe_mlp_ratio " + std::to_string(c.moe_mlp_ratio) + " gives an empty expert hidden layer");
  if (c.mlp_hidden() < 1) throw ConfigError("mlp_ratio " + std::to_string(c.mlp_ratio) + " gives an empty MLP");
  if (c.head_channels < 1) throw ConfigError("head_channels must be >= 1");
  std::set<std::string> seen;
  for (const auto& t : c.tasks) {
    if (t.out_channels < 1) throw ConfigError("task '" + t.name + "' has out_channels < 1");
    if (!seen.insert(t.name).second) throw ConfigError("task '" + t.name + "' appears twice");
  }
}

void check_finite(const float* p, int64_t n, const std::string& what) {
  int64_t bad = -1;
#pragma omp parallel for reduction(max : bad) schedule(static) if (n > (1 << 20))
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) bad = std::max(bad, i);
  if (bad >= 0)
    throw NumericError(what + ": element " + std::to_string(bad) + " is " + (std::isnan(p[bad]) ? "NaN" : "Inf") +
                       " (the runtime needs finite values)");
}

ModelFile::ModelFile(const std::string& path) : path_(path), st_(std::make_unique<SafeTensorsFile>(path)) {
  try {
    cfg_ = read_export_config(*st_);
    check_runnable(cfg_);
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    throw ConfigError(path + ": " + msg);
  }
  const auto& md = st_->metadata();
  if (auto p = md.find(kPrecisionKey); p != md.end()) {
    if (p->second != kPrecisionInt8)
      throw FormatError(path + ": unknown " + kPrecisionKey + " '" + p->second + "' (this build reads int8)");
    int8_ = true;
  }
  std::set<std::string> expected;
  auto missing = [&](const std::string& name, const std::vector<int64_t>& shape) {
    return FormatError(path + ": missing tensor '" + name + "' " + shape_str(shape) + " (config '" + cfg_.name +
                       "', gate " + to_string(cfg_.gate) + (int8_ ? ", int8 file" : "") + ")");
  };
  for (const auto& s : export_tensor_specs(cfg_)) {
    if (!st_->has(s.name)) throw missing(s.name, s.shape);
    // ShapeError naming both shapes (and dtypes)
    st_->get(s.name, int8_ && int8_weight_key(s.name) ? DType::I8 : DType::F32, s.shape);
    expected.insert(s.name);
  }
  if (int8_)
    for (const Int8ScaleSpec& q : int8_scale_specs(cfg_))
      for (const auto& [name, shape] : {std::pair{q.weight_scale, q.weight_scale_shape}, std::pair{q.input_scale, q.input_scale_shape}}) {
        if (!st_->has(name)) throw missing(name, shape);
        const TensorView& v = st_->get(name, DType::F32, shape);
        // A scale of 0, below 0, NaN or Inf would silently zero or poison the layer: refuse it here.
        const float* x = v.f32();
        for (int64_t i = 0; i < v.numel(); ++i)
          if (!(std::isfinite(x[i]) && x[i] > 0.f))
            throw NumericError(path + ": tensor '" + name + "': element " + std::to_string(i) + " is " +
                               std::to_string(x[i]) + " (int8 scales must be finite and > 0)");
        expected.insert(name);
      }
  for (const auto& n : st_->names())
    if (!expected.count(n) && !export_only_key(n))
      throw FormatError(path + ": unexpected tensor '" + n + "' " + shape_str(st_->get(n).shape) +
                        " for this config (gate " + to_string(cfg_.gate) + ", " + std::to_string(cfg_.num_tasks()) +
                        " tasks, depth " + std::to_string(cfg_.depth) + ")");
}

ModelFile::~ModelFile() = default;

const float* ModelFile::data(const std::string& name) const {
  const TensorView& v = st_->get(name);
  check_finite(v.f32(), v.numel(), path_ + ": tensor '" + name + "'");
  return v.f32();
}

const float* ModelFile::data(const std::string& name, int64_t first, int64_t count) const {
  const TensorView& v = st_->get(name);
  if (first < 0 || count < 0 || first + count > v.numel())
    throw Error(path_ + ": tensor '" + name + "': elements [" + std::to_string(first) + ", " +
                std::to_string(first + count) + ") outside its " + std::to_string(v.numel()));
  const float* p = v.f32() + first;
  check_finite(p, count, path_ + ": tensor '" + name + "' (from element " + std::to_string(first) + ")");
  return p;
}

const int8_t* ModelFile::data_s8(const std::string& name, int64_t first, int64_t count) const {
  const TensorView& v = st_->get(name);
  if (v.dtype != DType::I8) throw FormatError(path_ + ": tensor '" + name + "' is not I8 (int8 weights)");
  if (count < 0) count = v.numel() - first;
  if (first < 0 || first + count > v.numel())
    throw Error(path_ + ": tensor '" + name + "': elements [" + std::to_string(first) + ", " +
                std::to_string(first + count) + ") outside its " + std::to_string(v.numel()));
  return static_cast<const int8_t*>(v.data) + first;
}

int64_t ModelFile::numel(const std::string& name) const { return st_->get(name).numel(); }

size_t ModelFile::file_offset(const std::string& name) const { return st_->file_offset(name); }

void ModelFile::check_finite_by_reading(const std::string& name) const {
  const TensorView& v = st_->get(name);
  if (v.dtype == DType::I8) return;  // s8 weights are finite by construction; only F32 needs the scan
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path_ + ": cannot reopen for reading");
  std::vector<float> buf(1 << 18);  // 1 MiB
  const size_t off0 = file_offset(name);
  try {
    for (int64_t done = 0; done < v.numel();) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(buf.size()), v.numel() - done);
      const ssize_t got = ::pread(fd, buf.data(), n * 4, static_cast<off_t>(off0 + done * 4));
      if (got != n * 4) throw IoError(path_ + ": short read of tensor '" + name + "'");
      check_finite(buf.data(), n, path_ + ": tensor '" + name + "' (from element " + std::to_string(done) + ")");
      done += n;
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

void ModelFile::release(const std::string& name) const { release(name, 0, st_->get(name).nbytes); }

void ModelFile::release(const std::string& name, size_t begin, size_t end) const {
  const TensorView& v = st_->get(name);
  end = std::min(end, static_cast<size_t>(v.nbytes));
  if (begin >= end) return;
  // Only pages wholly inside the range: a page shared with a neighbour may still be needed. The
  // mapping is private and never written, so a dropped page is read again from the file if touched.
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(v.data) + begin + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(v.data) + end) / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace m3vit::rt
