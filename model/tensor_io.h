// The one bridge between torch tensors and the torch-free tensor I/O (io/safetensors.h, io/pth_reader.h),
// at the lowest torch layer so that model checkpoints, training checkpoints, test fixtures and the
// oracle exchange all use it. Copies always: a view into an mmap'd file must not outlive the file,
// and a checkpoint must not alias live parameters.
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace m3vit {

DType dtype_of(torch::ScalarType st);  // throws FormatError for a type safetensors cannot hold
torch::ScalarType scalar_type_of(DType dt);

// Adds a contiguous CPU copy of `t` under `name`.
void add_tensor(SafeTensorsWriter& w, const std::string& name, const torch::Tensor& t);

// A fresh tensor holding a copy of `nbytes` bytes of `dt` values of `shape` (FormatError naming
// `name` when the byte count does not match the shape).
torch::Tensor tensor_from_bytes(DType dt, const std::vector<int64_t>& shape, const void* data, size_t nbytes,
                                const std::string& name);
// A fresh tensor holding a copy of the view's data.
torch::Tensor to_tensor(const TensorView& v);

// Convenience for tests and small files: all tensors of a file, and a whole map written atomically.
std::map<std::string, torch::Tensor> load_tensors(const std::string& path);
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace m3vit
