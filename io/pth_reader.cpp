// Torch-free reader for `torch.save` files holding (nested) state dicts: the authors' checkpoints
// (moe_utils.py:32-101: `{'state_dict': OrderedDict, 'epoch': ..., 'optimizer': ...}`, per-rank shards) and
// timm/DeiT weights (`{'model': OrderedDict}`). Why not torch::pickle_load: see io/pth_reader.h.
//
// Two containers are understood:
//  - zip (torch >= 1.6 default): stored entries `<archive>/data.pkl` (the pickle) and
//    `<archive>/data/<key>` (one raw little-endian storage per key); the archive prefix is whatever
//    directory holds data.pkl. CRC-32 of every entry read is checked.
//  - legacy (`_use_new_zipfile_serialization=False`): magic, protocol and sys-info pickles, the main
//    pickle, a pickled list of storage keys, then per key an int64 element count and the raw bytes.
// The pickle machine (pth_pickle.cpp) returns a value tree; this file materialises its tensors.
#include "io/pth_reader.h"

#include <algorithm>
#include <array>
#include <functional>
#include <cstring>

#include "common/errors.h"
#include "io/mapped_file.h"
#include "io/pth_pickle.h"

namespace m3vit {

namespace {

uint32_t rd16(const uint8_t* p) { return p[0] | (p[1] << 8); }
uint32_t rd32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint64_t rd64(const uint8_t* p) { return rd32(p) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

uint32_t crc32(const uint8_t* data, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct ZipEntry {
  uint64_t offset = 0;  // of the entry's data in the file
  uint64_t size = 0;
  uint32_t crc = 0;
  bool crc_checked = false;
};

// Central directory of a zip archive with stored (uncompressed) entries, zip64 aware.
class ZipArchive {
 public:
  explicit ZipArchive(const MappedFile& f) : f_(f) { parse(); }

  const ZipEntry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  // Verified bytes of an entry (CRC checked on first use).
  const uint8_t* bytes(const std::string& name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw FormatError(f_.path() + ": zip entry '" + name + "' is missing");
    ZipEntry& e = it->second;
    if (!e.crc_checked) {
      if (crc32(f_.data() + e.offset, e.size) != e.crc)
        throw FormatError(f_.path() + ": zip entry '" + name + "' is corrupt (CRC-32 mismatch)");
      e.crc_checked = true;
    }
    return f_.data() + e.offset;
  }
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw FormatError(f_.path() + ": bad zip archive: " + why); }
  void need(uint64_t off, uint64_t len, const char* what) const {
    if (off > f_.size() || len > f_.size() - off) fail(std::string(what) + " lies outside the file (truncated?)");
  }

  void parse() {
    const uint8_t* d = f_.data();
    const size_t n = f_.size();
    if (n < 22) fail("too short for an end-of-central-directory record");
    // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
    size_t eocd = std::string::npos;
    for (size_t i = n - 22 + 1; i-- > 0 && n - i <= 22 + 65535;)
      if (rd32(d + i) == 0x06054b50u) {
        eocd = i;
        break;
      }
    if (eocd == std::string::npos) fail("no end-of-central-directory record (truncated?)");
    uint64_t count = rd16(d + eocd + 10);
    uint64_t cd_size = rd32(d + eocd + 12);
    uint64_t cd_off = rd32(d + eocd + 16);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
      if (eocd < 20 || rd32(d + eocd - 20) != 0x07064b50u) fail("zip64 locator missing");
      uint64_t z = rd64(d + eocd - 20 + 8);
      need(z, 56, "zip64 end record");
      if (rd32(d + z) != 0x06064b50u) fail("bad zip64 end record signature");
      count = rd64(d + z + 32);
      cd_size = rd64(d + z + 40);
      cd_off = rd64(d + z + 48);
    }
    need(cd_off, cd_size, "central directory");
    uint64_t p = cd_off;
    for (uint64_t i = 0; i < count; ++i) {
      need(p, 46, "central directory entry");
      if (rd32(d + p) != 0x02014b50u) fail("bad central directory signature");
      const uint32_t method = rd16(d + p + 10);
      const uint32_t crc = rd32(d + p + 16);
      uint64_t csize = rd32(d + p + 20), usize = rd32(d + p + 24);
      const uint32_t name_len = rd16(d + p + 28), extra_len = rd16(d + p + 30), comment_len = rd16(d + p + 32);
      uint64_t local = rd32(d + p + 42);
      need(p + 46, uint64_t{name_len} + extra_len + comment_len, "central directory entry");
      std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
      // zip64 extended information: the 0xFFFFFFFF fields, in this order.
      const uint8_t* x = d + p + 46 + name_len;
      for (uint32_t q = 0; q + 4 <= extra_len;) {
        uint32_t id = rd16(x + q), len = rd16(x + q + 2);
        if (q + 4 + len > extra_len) fail("bad extra field in entry '" + name + "'");
        if (id == 0x0001) {
          const uint8_t* z = x + q + 4;
          uint32_t used = 0;
          auto take = [&](uint64_t& v) {
            if (v != 0xFFFFFFFFu) return;
            if (used + 8 > len) fail("short zip64 field in entry '" + name + "'");
            v = rd64(z + used);
            used += 8;
          };
          take(usize);
          take(csize);
          take(local);
        }
        q += 4 + len;
      }
      if (method != 0)
        fail("entry '" + name + "' is compressed (method " + std::to_string(method) +
             "); only stored entries, as torch.save writes them, are supported");
      if (csize != usize) fail("entry '" + name + "' has different stored and original sizes");
      need(local, 30, "local header");
      if (rd32(d + local) != 0x04034b50u) fail("bad local header signature for entry '" + name + "'");
      const uint64_t data = local + 30 + rd16(d + local + 26) + rd16(d + local + 28);
      need(data, usize, ("data of entry '" + name + "'").c_str());
      entries_[name] = ZipEntry{data, usize, crc, false};
      p += 46 + uint64_t{name_len} + extra_len + comment_len;
    }
  }

  const MappedFile& f_;
  std::map<std::string, ZipEntry> entries_;
};

// Storage dtype from the class named in a persistent id (torch.FloatStorage, ...).
DType storage_dtype(const std::string& global, const std::string& path) {
  static const std::pair<const char*, DType> kTypes[] = {
      {"FloatStorage", DType::F32},   {"DoubleStorage", DType::F64}, {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16},   {"CharStorage", DType::I8},    {"ByteStorage", DType::U8},
      {"BoolStorage", DType::BOOL},   {"UntypedStorage", DType::U8}};
  const std::string cls = global.substr(global.rfind('.') + 1);
  for (const auto& [name, dt] : kTypes)
    if (cls == name) return dt;
  throw FormatError(path + ": unsupported tensor storage type '" + global + "'");
}

// Where the bytes of each storage key live, filled by the container code.
struct StorageBytes {
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
};

constexpr int64_t kMaxBroadcastElements = int64_t{1} << 26;

// Copies a (possibly strided) tensor view out of its storage, C-contiguous.
OwnedTensor materialise(const pickle::TensorRef& t, const StorageBytes& s, const std::string& where) {
  OwnedTensor out;
  out.dtype = t.storage->dtype;
  out.shape = t.size;
  const size_t elem = dtype_size(out.dtype);
  if (t.size.size() != t.stride.size())
    throw FormatError(where + ": size " + shape_str(t.size) + " and stride " + shape_str(t.stride) + " differ in rank");
  const int64_t storage_numel = static_cast<int64_t>(s.nbytes / elem);
  if (t.storage->numel >= 0 && t.storage->numel > storage_numel)
    throw FormatError(where + ": storage '" + t.storage->key + "' should hold " + std::to_string(t.storage->numel) +
                      " elements but has " + std::to_string(storage_numel));
  int64_t numel = 1;
  __int128 last = t.offset + t.storage->view_offset;  // element index of the last element
  if (t.offset < 0) throw FormatError(where + ": negative storage offset");
  for (size_t k = 0; k < t.size.size(); ++k) {
    if (t.size[k] < 0 || t.stride[k] < 0)
      throw FormatError(where + ": negative size or stride " + shape_str(t.size) + " / " + shape_str(t.stride));
    if (__builtin_mul_overflow(numel, t.size[k], &numel)) throw FormatError(where + ": shape overflows");
    if (t.size[k] > 0) last += static_cast<__int128>(t.size[k] - 1) * t.stride[k];
  }
  if (numel == 0) return out;
  if (last >= storage_numel)
    throw FormatError(where + ": view " + shape_str(t.size) + " stride " + shape_str(t.stride) + " offset " +
                      std::to_string(t.offset) + " reaches past its storage of " + std::to_string(storage_numel) +
                      " elements");
  // A view with stride 0 repeats its storage without limit: [10^12] over one element would be an
  // allocation of terabytes. Such broadcasts are read only up to kMaxBroadcastElements.
  if (numel > storage_numel && numel > kMaxBroadcastElements)
    throw FormatError(where + ": view " + shape_str(t.size) + " stride " + shape_str(t.stride) + " has " +
                      std::to_string(numel) + " elements over a storage of " + std::to_string(storage_numel) +
                      " (more than " + std::to_string(kMaxBroadcastElements) + " repeated elements are refused)");
  out.bytes.resize(static_cast<size_t>(numel) * elem);
  const uint8_t* base = s.data + (t.offset + t.storage->view_offset) * elem;
  const size_t nd = t.size.size();
  bool contiguous = true;
  for (int64_t k = static_cast<int64_t>(nd) - 1, expect = 1; k >= 0; --k) {
    if (t.size[k] != 1 && t.stride[k] != expect) contiguous = false;
    expect *= t.size[k];
  }
  if (contiguous) {
    std::memcpy(out.bytes.data(), base, out.bytes.size());
    return out;
  }
  std::vector<int64_t> idx(nd, 0);
  int64_t src = 0;
  for (int64_t i = 0; i < numel; ++i) {
    std::memcpy(out.bytes.data() + i * elem, base + src * elem, elem);
    for (size_t k = nd; k-- > 0;) {
      if (++idx[k] < t.size[k]) {
        src += t.stride[k];
        break;
      }
      src -= t.stride[k] * (t.size[k] - 1);
      idx[k] = 0;
    }
  }
  return out;
}

// Walks nested dicts; every tensor value becomes an entry keyed by the '.'-joined dict keys.
void flatten(const pickle::ValuePtr& v, const std::string& prefix, int depth, const std::string& path,
             const std::function<StorageBytes(const pickle::StorageRef&)>& bytes_of,
             std::map<std::string, OwnedTensor>& out) {
  using pickle::Kind;
  if (depth > 64) throw FormatError(path + ": dicts nested deeper than 64 levels (cyclic pickle?)");
  if (v->kind == Kind::Tensor) {
    out[prefix] = materialise(*v->tensor, bytes_of(*v->tensor->storage), path + ": tensor '" + prefix + "'");
    return;
  }
  if (v->kind != Kind::Dict) return;  // ints, strings, lists (optimizer param groups), other objects
  for (const auto& [k, val] : v->dict) {
    std::string key;
    if (k->kind == Kind::Str) key = k->s;
    else if (k->kind == Kind::Int) key = std::to_string(k->i);
    else continue;
    flatten(val, prefix.empty() ? key : prefix + "." + key, depth + 1, path, bytes_of, out);
  }
}

std::map<std::string, OwnedTensor> read_zip(const MappedFile& f) {
  ZipArchive zip(f);
  // The archive prefix is the directory holding data.pkl ("archive/" for torch >= 1.6, the file stem
  // for some versions); pick the shallowest data.pkl.
  std::string pkl;
  for (const auto& [name, e] : zip.entries())
    if ((name == "data.pkl" || (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0)) &&
        (pkl.empty() || name.size() < pkl.size()))
      pkl = name;
  if (pkl.empty()) throw FormatError(f.path() + ": zip archive has no data.pkl (not a torch.save file)");
  const std::string prefix = pkl.substr(0, pkl.size() - 8);
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    std::string order(reinterpret_cast<const char*>(zip.bytes(prefix + "byteorder")), bo->size);
    if (order != "little") throw FormatError(f.path() + ": big-endian torch files are not supported");
  }
  const uint8_t* p = zip.bytes(pkl);
  const size_t n = zip.find(pkl)->size;

  pickle::Unpickler up(p, n, f.path() + ": " + pkl, [&](const pickle::ValuePtr& pid) {
    // ('storage', storage_type, key, location, numel)
    if (pid->kind != pickle::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != pickle::Kind::Str ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != pickle::Kind::Global ||
        pid->items[2]->kind != pickle::Kind::Str || pid->items[4]->kind != pickle::Kind::Int)
      throw FormatError(f.path() + ": unexpected persistent id in " + pkl);
    auto s = std::make_shared<pickle::StorageRef>();
    s->dtype = storage_dtype(pid->items[1]->s, f.path());
    s->key = pid->items[2]->s;
    s->numel = pid->items[4]->i;
    auto v = std::make_shared<pickle::Value>();
    v->kind = pickle::Kind::Storage;
    v->storage = s;
    return v;
  });
  pickle::ValuePtr root = up.load();

  std::map<std::string, OwnedTensor> out;
  flatten(root, "", 0, f.path(), [&](const pickle::StorageRef& s) {
    const std::string name = prefix + "data/" + s.key;
    const ZipEntry* e = zip.find(name);
    if (!e) throw FormatError(f.path() + ": storage '" + s.key + "' is missing (no zip entry " + name + ")");
    return StorageBytes{zip.bytes(name), e->size};
  }, out);
  return out;
}

std::map<std::string, OwnedTensor> read_legacy(const MappedFile& f) {
  const std::string& path = f.path();
  size_t pos = 0;
  auto no_persid = [&](const pickle::ValuePtr&) -> pickle::ValuePtr {
    throw FormatError(path + ": unexpected persistent id in a header pickle");
  };
  std::vector<std::unique_ptr<pickle::Unpickler>> unpicklers;  // keep the values alive until flattened
  auto next_pickle = [&](const std::string& what, const pickle::PersistentLoad& pl) {
    unpicklers.push_back(std::make_unique<pickle::Unpickler>(f.data() + pos, f.size() - pos, path + ": " + what, pl));
    pickle::ValuePtr v = unpicklers.back()->load();
    pos += unpicklers.back()->consumed();
    return v;
  };
  pickle::ValuePtr magic = next_pickle("magic number", no_persid);
  // 0x1950a86a20f9469cfc6c does not fit an int64: the unpickler keeps its low 64 bits.
  if (magic->kind != pickle::Kind::Int || !magic->big || static_cast<uint64_t>(magic->i) != 0xa86a20f9469cfc6cull)
    throw FormatError(path + ": not a PyTorch file (no zip archive and no legacy magic number)");
  pickle::ValuePtr proto = next_pickle("protocol version", no_persid);
  if (proto->kind != pickle::Kind::Int || proto->i != 1001)
    throw FormatError(path + ": unsupported legacy torch protocol version");
  next_pickle("sys info", no_persid);

  std::map<std::string, std::shared_ptr<pickle::StorageRef>> storages;
  pickle::ValuePtr root = next_pickle("data pickle", [&](const pickle::ValuePtr& pid) {
    // ('storage', storage_type, key, location, numel, view_metadata)
    if (pid->kind != pickle::Kind::Tuple || pid->items.size() < 6 || pid->items[0]->kind != pickle::Kind::Str ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != pickle::Kind::Global ||
        pid->items[2]->kind != pickle::Kind::Str || pid->items[4]->kind != pickle::Kind::Int)
      throw FormatError(path + ": unexpected persistent id in the data pickle");
    auto s = std::make_shared<pickle::StorageRef>();
    s->dtype = storage_dtype(pid->items[1]->s, path);
    s->key = pid->items[2]->s;
    s->numel = pid->items[4]->i;
    const auto& view = pid->items[5];  // (view_key, offset, view_size) for storage views
    if (view->kind == pickle::Kind::Tuple && view->items.size() == 3 && view->items[1]->kind == pickle::Kind::Int)
      s->view_offset = view->items[1]->i;
    storages.emplace(s->key, s);
    auto v = std::make_shared<pickle::Value>();
    v->kind = pickle::Kind::Storage;
    v->storage = s;
    return v;
  });
  pickle::ValuePtr keys = next_pickle("storage key list", no_persid);
  if (keys->kind != pickle::Kind::List) throw FormatError(path + ": legacy storage key list is not a list");

  std::map<std::string, StorageBytes> where;
  for (const auto& k : keys->items) {
    if (k->kind != pickle::Kind::Str) throw FormatError(path + ": legacy storage key is not a string");
    auto it = storages.find(k->s);
    if (it == storages.end()) throw FormatError(path + ": storage '" + k->s + "' is listed but never used");
    if (f.size() - pos < 8) throw FormatError(path + ": truncated before storage '" + k->s + "'");
    const uint64_t count = rd64(f.data() + pos);
    pos += 8;
    const size_t elem = dtype_size(it->second->dtype);
    if (count > (f.size() - pos) / elem)
      throw FormatError(path + ": storage '" + k->s + "' of " + std::to_string(count) +
                        " elements runs past the end of the file (truncated?)");
    where[k->s] = StorageBytes{f.data() + pos, count * elem};
    pos += count * elem;
  }
  std::map<std::string, OwnedTensor> out;
  flatten(root, "", 0, path, [&](const pickle::StorageRef& s) {
    auto it = where.find(s.key);
    if (it == where.end()) throw FormatError(path + ": storage '" + s.key + "' has no data");
    return it->second;
  }, out);
  return out;
}

}  // namespace

std::map<std::string, OwnedTensor> read_pth_tensors(const std::string& path) {
  MappedFile f(path);
  if (f.size() >= 4 && rd32(f.data()) == 0x04034b50u) return read_zip(f);
  if (f.size() >= 2 && f.data()[0] == 0x80) return read_legacy(f);
  throw FormatError(path + ": not a PyTorch file (neither a zip archive nor a pickle)");
}

}  // namespace m3vit
