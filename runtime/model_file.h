// The model export as the runtime reads it: the format of core/export.h (tensor names, shapes and
// metadata are defined there, one place, as whisper.cpp keeps its tensor names).
//
// Everything is checked when the file is opened, before any weight is used: the format tag, that the
// config validates and is one this engine can run, and that every tensor the config implies is
// present as F32 (I8 for the quantised weights of an int8 file, with their scales) with exactly the expected shape (export_tensor_specs). Errors name the file, the
// tensor and both shapes. Extra tensors are refused too, except the export-only ones (the
// training-only TAM and BatchNorm's num_batches_tracked, export_only_key). Those are never mapped or
// read: the file is mapped whole, but a page enters the resident set only when a weight on it is
// read (data()), and the streamed stores read with pread (check_finite_by_reading, the weight ring).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/export.h"

namespace m3vit::rt {

// The most tokens (patches) a runnable config may have (check_runnable).
inline constexpr int kMaxRuntimeTokens = 16384;

// Throws ConfigError (naming the field) for a config the runtime cannot run.
void check_runnable(const ModelConfig& cfg);

class ModelFile {
 public:
  explicit ModelFile(const std::string& path);  // throws IoError / FormatError / ShapeError / ConfigError
  ~ModelFile();
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const std::string& path() const { return path_; }
  const ModelConfig& config() const { return cfg_; }
  // True for an int8 file (runtime/int8_format.h): its quantised weights are I8 with their scales,
  // all checked at open.
  bool int8() const { return int8_; }
  // The s8 data of a quantised weight of an int8 file (elements [first, first + count); count < 0:
  // to the end), mapped.
  const int8_t* data_s8(const std::string& name, int64_t first = 0, int64_t count = -1) const;

  // fp32 data of a checked tensor, mapped from the file; scanned for NaN/Inf on the first call
  // (NumericError naming the tensor).
  const float* data(const std::string& name) const;
  // Elements [first, first + count) of a tensor, mapped and scanned for NaN/Inf (NumericError naming
  // the tensor and the element): a stacked tensor read piece by piece is never resident whole.
  const float* data(const std::string& name, int64_t first, int64_t count) const;
  int64_t numel(const std::string& name) const;
  // Byte offset of a tensor's data in the file (for pread streaming).
  size_t file_offset(const std::string& name) const;
  // Checks a tensor for NaN/Inf by reading it with pread in 1 MiB pieces, without mapping it, so
  // that checking streamed experts does not raise the peak resident set.
  void check_finite_by_reading(const std::string& name) const;
  // Drops the mapped pages of a tensor that has been copied out (madvise DONTNEED): the page cache
  // keeps the file, the process no longer counts it in its resident set (RssFile, and so VmHWM).
  void release(const std::string& name) const;
  // The same for bytes [begin, end) of a tensor's data (the pages wholly inside it): a stacked
  // tensor (the experts [E, out, in]) is released expert by expert as each is packed, so loading
  // maps one expert's rows at a time, not the layer's whole stack (151 MB at E = 128).
  void release(const std::string& name, size_t begin, size_t end) const;

 private:
  std::string path_;
  ModelConfig cfg_;
  std::unique_ptr<SafeTensorsFile> st_;
  bool int8_ = false;
};

// Throws NumericError "<what>: element i is nan" unless every value is finite.
void check_finite(const float* p, int64_t n, const std::string& what);

}  // namespace m3vit::rt
