// NumPy .npy reader/writer (format versions 1.0-3.0), torch-free. Used for NYUD depth/normals/edges,
// `m3vit infer --input-npy / --save-logits`, and test fixtures.
#pragma once

#include <string>

#include "io/tensor_data.h"

namespace m3vit {

// Supports little-endian <f4 <f8 <i4 <i8 |u1 |b1 (and <f2), C or Fortran order (returned C-contiguous).
// Throws IoError / FormatError naming the path.
OwnedTensor read_npy(const std::string& path);
void write_npy(const std::string& path, const OwnedTensor& t);  // atomic
void write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data);

}  // namespace m3vit
