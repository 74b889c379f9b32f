// Bridges between torch tensors and the torch-free safetensors I/O (io/safetensors.h), for training
// checkpoints, test fixtures and the oracle exchange. Copies always: a view into an mmap'd file must
// not outlive the file, and a checkpoint must not alias live parameters.
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>

#include "io/safetensors.h"

namespace m3vit {

DType dtype_of(torch::ScalarType st);  // throws FormatError for a type safetensors cannot hold
torch::ScalarType scalar_type_of(DType dt);

// Adds a contiguous CPU copy of `t` under `name`.
void add_tensor(SafeTensorsWriter& w, const std::string& name, const torch::Tensor& t);

// A fresh tensor holding a copy of the view's data.
torch::Tensor to_tensor(const TensorView& v);

// Convenience for tests and small files: all tensors of a file, and a whole map written atomically.
std::map<std::string, torch::Tensor> load_tensors(const std::string& path);
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace m3vit
