// torch <-> safetensors copies (see tensor_io.h).
#include "common/pch/torch_pch.h"

#include "model/tensor_io.h"

#include <cstring>

#include "common/errors.h"

namespace m3vit {

DType dtype_of(torch::ScalarType st) {
  switch (st) {
    case torch::kFloat64: return DType::F64;
    case torch::kFloat32: return DType::F32;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kInt64: return DType::I64;
    case torch::kInt32: return DType::I32;
    case torch::kInt16: return DType::I16;
    case torch::kInt8: return DType::I8;
    case torch::kUInt8: return DType::U8;
    case torch::kBool: return DType::BOOL;
    default: throw FormatError(std::string("tensor type ") + c10::toString(st) + " cannot be stored in safetensors");
  }
}

torch::ScalarType scalar_type_of(DType dt) {
  switch (dt) {
    case DType::F64: return torch::kFloat64;
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::BOOL: return torch::kBool;
  }
  throw FormatError("unknown dtype");
}

void add_tensor(SafeTensorsWriter& w, const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  w.add(name, dtype_of(c.scalar_type()), c.sizes().vec(), c.data_ptr(), c.nbytes());
}

torch::Tensor tensor_from_bytes(DType dt, const std::vector<int64_t>& shape, const void* data, size_t nbytes,
                                const std::string& name) {
  auto t = torch::empty(shape, torch::TensorOptions().dtype(scalar_type_of(dt)));
  if (static_cast<size_t>(t.nbytes()) != nbytes)
    throw FormatError("tensor '" + name + "': " + std::to_string(nbytes) + " bytes for shape " + shape_str(shape));
  if (nbytes) std::memcpy(t.data_ptr(), data, nbytes);
  return t;
}

torch::Tensor to_tensor(const TensorView& v) { return tensor_from_bytes(v.dtype, v.shape, v.data, v.nbytes, v.name); }

std::map<std::string, torch::Tensor> load_tensors(const std::string& path) {
  SafeTensorsFile f(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& n : f.names()) out[n] = to_tensor(f.get(n));
  return out;
}

void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  SafeTensorsWriter w;
  for (const auto& [n, t] : tensors) add_tensor(w, n, t);
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  w.write(path);
}

}  // namespace m3vit
