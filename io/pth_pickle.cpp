// The pickle machine for torch state dicts (io/pth_pickle.h). Opcode semantics follow CPython's
// Lib/pickle.py and pickletools.py. Callables are never executed: three are understood
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_tensor, _rebuild_parameter),
// and every other GLOBAL + REDUCE/NEWOBJ gives an opaque Object, so checkpoint entries such as
// argparse.Namespace, numpy scalars or optimizer state are skipped instead of rejected.
#include "io/pth_pickle.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/errors.h"

namespace m3vit::pickle {

namespace {

ValuePtr make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

ValuePtr make_int(int64_t i) {
  auto v = make(Kind::Int);
  v->i = i;
  return v;
}

// Little-endian two's complement of n bytes (LONG1 / LONG4).
ValuePtr make_long(const uint8_t* p, size_t n) {
  auto v = make(Kind::Int);
  uint64_t u = 0;
  for (size_t k = 0; k < n && k < 8; ++k) u |= static_cast<uint64_t>(p[k]) << (8 * k);
  if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~uint64_t{0} << (8 * n);  // sign-extend
  v->i = static_cast<int64_t>(u);
  if (n > 8) {
    // Fits int64 only when the extra bytes are pure sign extension of bit 63.
    const uint8_t fill = (p[7] & 0x80) ? 0xFF : 0x00;
    for (size_t k = 8; k < n; ++k)
      if (p[k] != fill) v->big = true;
  }
  return v;
}

constexpr uint8_t MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I',
                  BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P', BINPERSID = 'Q',
                  REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b',
                  GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h',
                  LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
                  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G', BINBYTES = 'B',
                  SHORT_BINBYTES = 'C', PROTO = 0x80, NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87,
                  NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c,
                  BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91,
                  NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95;

}  // namespace

Value::~Value() {
  std::vector<ValuePtr> pending;
  auto adopt = [&pending](Value& v) {
    for (auto& c : v.items) pending.push_back(std::move(c));
    for (auto& kv : v.dict) {
      pending.push_back(std::move(kv.first));
      pending.push_back(std::move(kv.second));
    }
    v.items.clear();
    v.dict.clear();
  };
  adopt(*this);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) adopt(*v);  // last owner: empty it here, so its destructor does not recurse
  }
}

Unpickler::Unpickler(const uint8_t* data, size_t size, std::string where, PersistentLoad persistent_load)
    : data_(data), size_(size), where_(std::move(where)), persistent_load_(std::move(persistent_load)) {}

Unpickler::~Unpickler() {
  for (auto& v : containers_) {
    v->items.clear();
    v->dict.clear();
  }
}

void Unpickler::push(ValuePtr v) {
  if (v->kind == Kind::Tuple || v->kind == Kind::List || v->kind == Kind::Dict || v->kind == Kind::Object)
    containers_.push_back(v);
  stack_.push_back(std::move(v));
}

void Unpickler::fail(const std::string& why) const {
  char op[8];
  std::snprintf(op, sizeof op, "0x%02x", op_pos_ < size_ ? data_[op_pos_] : 0);
  throw FormatError(where_ + ": " + why + " (pickle opcode " + op + " at byte " + std::to_string(op_pos_) + ")");
}

const uint8_t* Unpickler::take(size_t n) {
  if (n > size_ - pos_) fail("pickle ends early (truncated file?)");
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

std::string Unpickler::line() {
  const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
  if (!nl) fail("unterminated text argument");
  size_t n = static_cast<const uint8_t*>(nl) - (data_ + pos_);
  std::string s(reinterpret_cast<const char*>(take(n + 1)), n);
  return s;
}

ValuePtr Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
  ValuePtr v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

ValuePtr& Unpickler::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
  return stack_.back();
}

std::vector<ValuePtr> Unpickler::pop_mark() {
  if (marks_.empty()) fail("no MARK on the pickle stack");
  const size_t m = marks_.back();
  marks_.pop_back();
  std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                              std::make_move_iterator(stack_.end()));
  stack_.resize(m);
  return items;
}

// What REDUCE / NEWOBJ build: see the file comment. Never runs foreign code.
ValuePtr Unpickler::call(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Kind::Global) {
    auto o = make(Kind::Object);
    o->s = "<call>";
    return o;
  }
  const std::string& fn = callable->s;
  const bool tuple_args = args->kind == Kind::Tuple;
  if (fn == "collections.OrderedDict" || fn == "builtins.dict" || fn == "__builtin__.dict") {
    auto d = make(Kind::Dict);
    // OrderedDict([(k, v), ...]) in older protocols; protocol 2 sends the items through SETITEMS.
    if (tuple_args && args->items.size() == 1 && args->items[0]->kind == Kind::List)
      for (const auto& kv : args->items[0]->items)
        if (kv->kind == Kind::Tuple && kv->items.size() == 2) d->dict.emplace_back(kv->items[0], kv->items[1]);
    return d;
  }
  if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (!tuple_args || args->items.size() < 4) fail(fn + " called with too few arguments");
    const auto& a = args->items;
    if (a[0]->kind != Kind::Storage) fail(fn + ": first argument is not a storage");
    if (a[1]->kind != Kind::Int || a[1]->big) fail(fn + ": storage offset is not an integer");
    auto t = std::make_shared<TensorRef>();
    t->storage = a[0]->storage;
    t->offset = a[1]->i;
    for (int k : {2, 3}) {
      if (a[k]->kind != Kind::Tuple) fail(fn + ": size/stride is not a tuple");
      for (const auto& d : a[k]->items) {
        if (d->kind != Kind::Int || d->big) fail(fn + ": size/stride entry is not an integer");
        (k == 2 ? t->size : t->stride).push_back(d->i);
      }
    }
    auto v = make(Kind::Tensor);
    v->tensor = t;
    return v;
  }
  if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
    if (!tuple_args || args->items.empty()) fail(fn + " called without arguments");
    return args->items[0];  // an nn.Parameter is its data tensor here
  }
  if (fn == "torch.Size" && tuple_args && args->items.size() == 1 && args->items[0]->kind == Kind::Tuple)
    return args->items[0];
  auto o = make(Kind::Object);
  o->s = fn;
  return o;
}

ValuePtr Unpickler::load() {
  while (true) {
    op_pos_ = pos_;
    const uint8_t op = *take(1);
    switch (op) {
      case PROTO: take(1); break;
      case FRAME: take(8); break;
      case STOP: {
        if (stack_.size() != 1 || !marks_.empty()) fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
        return stack_.back();
      }
      case MARK: marks_.push_back(stack_.size()); break;
      case POP: pop(); break;
      case POP_MARK: pop_mark(); break;
      case DUP: stack_.push_back(top()); break;  // an existing value

      case NONE: push(make(Kind::None)); break;
      case NEWTRUE:
      case NEWFALSE: {
        auto v = make(Kind::Bool);
        v->i = op == NEWTRUE;
        push(v);
        break;
      }
      case BININT: {
        const uint8_t* p = take(4);
        push(make_int(static_cast<int32_t>(p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24))));
        break;
      }
      case BININT1: push(make_int(*take(1))); break;
      case BININT2: {
        const uint8_t* p = take(2);
        push(make_int(p[0] | (p[1] << 8)));
        break;
      }
      case LONG1: {
        const size_t n = *take(1);
        push(make_long(take(n), n));
        break;
      }
      case LONG4: {
        const uint8_t* p = take(4);
        const int32_t n = static_cast<int32_t>(p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24));
        if (n < 0) fail("negative LONG4 length");
        push(make_long(take(static_cast<size_t>(n)), static_cast<size_t>(n)));
        break;
      }
      case INT:
      case LONG: {
        std::string s = line();
        if (!s.empty() && s.back() == 'L') s.pop_back();
        if (op == INT && (s == "00" || s == "01")) {  // protocol 0 booleans
          auto v = make(Kind::Bool);
          v->i = s == "01";
          push(v);
          break;
        }
        char* end = nullptr;
        errno = 0;
        long long x = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0') fail("bad integer literal '" + s + "'");
        auto v = make_int(x);
        v->big = errno == ERANGE;
        push(v);
        break;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];  // big-endian
        auto v = make(Kind::Float);
        std::memcpy(&v->f, &u, 8);
        push(v);
        break;
      }
      case FLOAT: {
        std::string s = line();
        auto v = make(Kind::Float);
        v->f = std::strtod(s.c_str(), nullptr);
        push(v);
        break;
      }

      case BINUNICODE:
      case BINSTRING:
      case BINBYTES:
      case SHORT_BINUNICODE:
      case SHORT_BINSTRING:
      case SHORT_BINBYTES:
      case BINUNICODE8:
      case BINBYTES8: {
        uint64_t n = 0;
        if (op == SHORT_BINUNICODE || op == SHORT_BINSTRING || op == SHORT_BINBYTES) {
          n = *take(1);
        } else if (op == BINUNICODE8 || op == BINBYTES8) {
          const uint8_t* p = take(8);
          for (int k = 7; k >= 0; --k) n = (n << 8) | p[k];
        } else {
          const uint8_t* p = take(4);
          n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint64_t>(p[3]) << 24);
        }
        if (n > size_ - pos_) fail("string runs past the end of the pickle (truncated file?)");
        const bool is_bytes = op == BINBYTES || op == SHORT_BINBYTES || op == BINBYTES8;
        auto v = make(is_bytes ? Kind::Bytes : Kind::Str);
        v->s.assign(reinterpret_cast<const char*>(take(static_cast<size_t>(n))), static_cast<size_t>(n));
        push(v);
        break;
      }

      case EMPTY_TUPLE: push(make(Kind::Tuple)); break;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const size_t n = op - TUPLE1 + 1;
        auto v = make(Kind::Tuple);
        v->items.resize(n);
        for (size_t k = n; k-- > 0;) v->items[k] = pop();
        push(v);
        break;
      }
      case TUPLE: {
        auto v = make(Kind::Tuple);
        v->items = pop_mark();
        push(v);
        break;
      }
      case EMPTY_LIST: push(make(Kind::List)); break;
      case LIST: {
        auto v = make(Kind::List);
        v->items = pop_mark();
        push(v);
        break;
      }
      case EMPTY_DICT: push(make(Kind::Dict)); break;
      case DICT: {
        auto items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        auto v = make(Kind::Dict);
        for (size_t k = 0; k < items.size(); k += 2) v->dict.emplace_back(items[k], items[k + 1]);
        push(v);
        break;
      }
      case EMPTY_SET: {
        auto v = make(Kind::Object);
        v->s = "builtins.set";
        push(v);
        break;
      }
      case FROZENSET: {
        pop_mark();
        auto v = make(Kind::Object);
        v->s = "builtins.frozenset";
        push(v);
        break;
      }
      case APPEND:
      case APPENDS:
      case ADDITEMS: {
        std::vector<ValuePtr> items;
        if (op == APPEND) items.push_back(pop());
        else items = pop_mark();
        ValuePtr& target = top();
        if (target->kind == Kind::List) target->items.insert(target->items.end(), items.begin(), items.end());
        else if (target->kind != Kind::Object) fail("APPEND to something that is not a list");
        break;
      }
      case SETITEM:
      case SETITEMS: {
        std::vector<ValuePtr> items;
        if (op == SETITEM) {
          ValuePtr v = pop();
          ValuePtr k = pop();
          items = {k, v};
        } else {
          items = pop_mark();
        }
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        ValuePtr& target = top();
        if (target->kind == Kind::Dict) {
          for (size_t k = 0; k < items.size(); k += 2) target->dict.emplace_back(items[k], items[k + 1]);
        } else if (target->kind != Kind::Object) {
          fail("SETITEM on something that is not a dict");
        }
        break;
      }

      case GLOBAL: {
        std::string module = line();
        std::string name = line();
        auto v = make(Kind::Global);
        v->s = module + "." + name;
        push(v);
        break;
      }
      case STACK_GLOBAL: {
        ValuePtr name = pop();
        ValuePtr module = pop();
        if (name->kind != Kind::Str || module->kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
        auto v = make(Kind::Global);
        v->s = module->s + "." + name->s;
        push(v);
        break;
      }
      case REDUCE: {
        ValuePtr args = pop();
        ValuePtr fn = pop();
        push(call(fn, args));
        break;
      }
      case NEWOBJ: {
        ValuePtr args = pop();
        ValuePtr cls = pop();
        push(call(cls, args));
        break;
      }
      case NEWOBJ_EX: {
        pop();  // kwargs
        ValuePtr args = pop();
        ValuePtr cls = pop();
        push(call(cls, args));
        break;
      }
      case BUILD:
        // __setstate__ data: OrderedDict's `_metadata` attribute, object attributes. Not needed.
        pop();
        top();
        break;

      case BINPERSID:
      case PERSID: {
        ValuePtr pid;
        if (op == BINPERSID) {
          pid = pop();
        } else {
          pid = make(Kind::Str);
          pid->s = line();
        }
        if (!persistent_load_) fail("persistent id without a container");
        push(persistent_load_(pid));
        break;
      }

      case BINPUT: memo_[*take(1)] = top(); break;
      case LONG_BINPUT: {
        const uint8_t* p = take(4);
        memo_[p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24)] = top();
        break;
      }
      case PUT: {
        std::string s = line();
        memo_[static_cast<uint32_t>(std::strtoul(s.c_str(), nullptr, 10))] = top();
        break;
      }
      case MEMOIZE: {
        const uint32_t idx = static_cast<uint32_t>(memo_.size());
        memo_[idx] = top();
        break;
      }
      case BINGET:
      case LONG_BINGET:
      case GET: {
        uint32_t idx = 0;
        if (op == BINGET) {
          idx = *take(1);
        } else if (op == LONG_BINGET) {
          const uint8_t* p = take(4);
          idx = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
        } else {
          idx = static_cast<uint32_t>(std::strtoul(line().c_str(), nullptr, 10));
        }
        auto it = memo_.find(idx);
        if (it == memo_.end()) fail("memo slot " + std::to_string(idx) + " was never stored");
        stack_.push_back(it->second);  // an existing value
        break;
      }
      default: fail("unsupported pickle opcode");
    }
  }
}

}  // namespace m3vit::pickle
