// The model export as the runtime reads it: one safetensors file (docs/ARCHITECTURE.md, "Model export")
// whose tensor names are the authors' state-dict keys (model/multitask_model.h, spec §6.1) and whose
// `__metadata__` holds "format": "m3vit-export-v1" and the ModelConfig JSON.
//
// Everything is checked when the file is opened, before any weight is used: the format tag, that the
// config validates and is one this engine can run, and that every tensor the config implies is
// present as F32 with exactly the expected shape (the table in export_tensor_specs, one place, as
// whisper.cpp keeps its tensor names). Errors name the file, the tensor and both shapes. Extra tensors
// are refused too, except the training-only TAM and BatchNorm's num_batches_tracked.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"

namespace m3vit {
class SafeTensorsFile;
}

namespace m3vit::rt {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor an export of cfg holds (F32), in a fixed order. The key strings live only here.
std::vector<TensorSpec> export_tensor_specs(const ModelConfig& cfg);
std::string block_key(int block, const std::string& rest);              // backbone.blocks.{i}.{rest}
std::string head_key(const std::string& task, const std::string& rest);  // decoders.{task}.{rest}

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

  // fp32 data of a checked tensor, mapped from the file; scanned for NaN/Inf on the first call
  // (NumericError naming the tensor).
  const float* data(const std::string& name) const;
  int64_t numel(const std::string& name) const;
  // Byte offset of a tensor's data in the file (for pread streaming).
  size_t file_offset(const std::string& name) const;
  // Checks a tensor for NaN/Inf by reading it with pread in 1 MiB pieces, without mapping it, so
  // that checking streamed experts does not raise the peak resident set.
  void check_finite_by_reading(const std::string& name) const;
  // Drops the mapped pages of a tensor that has been copied out (madvise DONTNEED): the page cache
  // keeps the file, the process no longer counts it in its resident set.
  void release(const std::string& name) const;

 private:
  std::string path_;
  ModelConfig cfg_;
  std::unique_ptr<SafeTensorsFile> st_;
};

// Throws NumericError "<what>: element i is nan" unless every value is finite.
void check_finite(const float* p, int64_t n, const std::string& what);

}  // namespace m3vit::rt
