// Plain tensors for file I/O (io/tensor_data.h): dtype sizes and names, shape printing.
// Dtype spellings are the safetensors ones ("F32", "BF16", ...), which every reader here maps onto.
#include "io/tensor_data.h"

#include <limits>

#include "common/errors.h"

namespace m3vit {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

const DTypeInfo& info(DType dt) {
  for (const auto& d : kDTypes)
    if (d.dtype == dt) return d;
  throw FormatError("invalid dtype value " + std::to_string(static_cast<int>(dt)));
}

}  // namespace

size_t dtype_size(DType dt) { return info(dt).size; }

const char* dtype_name(DType dt) { return info(dt).name; }

DType dtype_from_name(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.dtype;
  throw FormatError("unknown dtype '" + name + "'");
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  // Shapes come from files: a product past 2^63 is refused rather than wrapped (signed overflow is
  // undefined, and a wrapped count could pass a later size check).
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) throw ShapeError("shape " + shape_str(shape) + " has a negative dimension");
    if (s != 0 && n > std::numeric_limits<int64_t>::max() / s)
      throw ShapeError("shape " + shape_str(shape) + " has more than 2^63 elements");
    n *= s;
  }
  return n;
}

const float* TensorView::f32() const {
  if (dtype != DType::F32)
    throw FormatError("tensor '" + name + "' is " + dtype_name(dtype) + ", expected F32");
  return static_cast<const float*>(data);
}

TensorView OwnedTensor::view(const std::string& name) const {
  TensorView v;
  v.name = name;
  v.dtype = dtype;
  v.shape = shape;
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return v;
}

}  // namespace m3vit
