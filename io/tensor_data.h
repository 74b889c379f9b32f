// Plain tensors for file I/O, torch-free: a dtype, a shape and bytes.
// Readers (safetensors, npy, pth) hand these out; model/ and runtime/ bind them to their own tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace m3vit {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dt);
const char* dtype_name(DType dt);         // safetensors spelling: "F32", "BF16", "I64", ...
DType dtype_from_name(const std::string& name);  // throws FormatError for an unknown name

std::string shape_str(const std::vector<int64_t>& shape);  // "[2, 3, 4]"
int64_t shape_numel(const std::vector<int64_t>& shape);

// A read-only view into memory owned by someone else (an mmap'd file).
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const { return shape_numel(shape); }
  const float* f32() const;  // throws FormatError unless dtype is F32
};

// A tensor that owns its bytes (C-contiguous).
struct OwnedTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t numel() const { return shape_numel(shape); }
  TensorView view(const std::string& name = "") const;
};

}  // namespace m3vit
