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

// The same in memory (an HTTP request body, a response): npy_from_bytes parses what read_npy reads
// from a file, its errors naming `origin` where read_npy names the path; npy_to_bytes gives the bytes
// write_npy puts in its file.
OwnedTensor npy_from_bytes(const std::string& raw, const std::string& origin);
std::string npy_to_bytes(DType dtype, const std::vector<int64_t>& shape, const void* data,
                         const std::string& origin = "npy");

}  // namespace m3vit
