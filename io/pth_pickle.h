// The subset of Python's pickle machine that `torch.save` state dicts need (protocol 2, plus the few
// protocol 0/4 opcodes that turn up in older or newer files). Internal to io/pth_reader.cpp.
// Values form a tree of shared nodes so that memoised objects (BINPUT/BINGET) mutated later
// (SETITEMS on a memoised OrderedDict) stay one object, as in Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <string>
#include <utility>
#include <vector>

#include "io/tensor_data.h"

namespace m3vit::pickle {

enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor, Object };

// A storage named by a persistent id: ('storage', torch.FloatStorage, key, location, numel, ...).
struct StorageRef {
  std::string key;
  DType dtype = DType::F32;
  int64_t numel = -1;
  int64_t view_offset = 0;  // legacy storage views only
};

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...): a strided view of a storage.
struct TensorRef {
  std::shared_ptr<StorageRef> storage;
  int64_t offset = 0;              // in elements
  std::vector<int64_t> size, stride;  // in elements
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::None;
  bool big = false;  // Int only: the Python int did not fit int64 (i holds its low 64 bits)
  int64_t i = 0;     // Bool, Int
  double f = 0;      // Float
  std::string s;     // Str, Bytes; Global and Object: "module.name"
  std::vector<ValuePtr> items;                       // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;   // Dict, in insertion order
  std::shared_ptr<StorageRef> storage;               // Storage
  std::shared_ptr<TensorRef> tensor;                 // Tensor

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  // Iterative: a crafted pickle nesting a million lists must not overflow the stack on destruction.
  ~Value();
};

// Resolves a persistent id (BINPERSID) to a value; the container decides what ids mean.
using PersistentLoad = std::function<ValuePtr(const ValuePtr& pid)>;

// Values returned by load() stay valid while their Unpickler lives: its destructor empties every
// container it built, which frees the reference cycles a corrupt pickle can create (a dict memoised
// and then inserted into itself) that shared ownership alone would leak.
class Unpickler {
 public:
  // `where` prefixes every error ("file.pth: archive/data.pkl").
  Unpickler(const uint8_t* data, size_t size, std::string where, PersistentLoad persistent_load);
  ~Unpickler();
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  // Runs to STOP; throws FormatError naming `where`, the opcode and its byte position.
  ValuePtr load();
  size_t consumed() const { return pos_; }  // bytes up to and including STOP

 private:
  [[noreturn]] void fail(const std::string& why) const;
  const uint8_t* take(size_t n);
  std::string line();
  ValuePtr pop();
  ValuePtr& top();
  std::vector<ValuePtr> pop_mark();
  ValuePtr call(const ValuePtr& callable, const ValuePtr& args);
  void push(ValuePtr v);  // onto the stack, remembering containers for the destructor

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;  // position of the opcode being executed, for messages
  std::string where_;
  PersistentLoad persistent_load_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  std::vector<ValuePtr> containers_;  // every Tuple / List / Dict / Object built here
};

}  // namespace m3vit::pickle
