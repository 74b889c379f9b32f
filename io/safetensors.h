// safetensors reader (mmap) and writer, torch-free.
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// optional "__metadata__" {string: string}, then the raw little-endian data.
// The reader validates everything at open time (header JSON, dtypes, shapes vs byte ranges,
// offsets inside the file, no overlaps) and every error names the file and the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_data.h"

namespace m3vit {

class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);  // throws IoError / FormatError
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;
  SafeTensorsFile(SafeTensorsFile&&) noexcept;
  SafeTensorsFile& operator=(SafeTensorsFile&&) noexcept;

  const std::string& path() const;
  bool has(const std::string& name) const;
  // Throws FormatError "file: no tensor 'name'".
  const TensorView& get(const std::string& name) const;
  // Also checks dtype and shape; throws ShapeError "file: tensor 'name' expected F32 [a, b], got F16 [c]".
  const TensorView& get(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const;
  std::vector<std::string> names() const;  // sorted by data offset (file order)
  const std::map<std::string, std::string>& metadata() const;
  // Byte offset of a tensor's data from the start of the file (for streaming reads with pread).
  size_t file_offset(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class SafeTensorsWriter {
 public:
  // Copies the data. Throws FormatError on a duplicate name or size mismatch.
  void add(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data,
           size_t nbytes);
  void add(const std::string& name, const OwnedTensor& t);
  void set_metadata(const std::string& key, const std::string& value);
  // Writes atomically (temp file + fsync + rename). Tensors are laid out back to back in insertion
  // order (the reference implementation rejects gaps); the data area starts 64-byte aligned.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace m3vit
