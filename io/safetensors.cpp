// safetensors reader (mmap, validated at open) and writer (atomic; data area 64-byte aligned).
// Layout: u64 little-endian header length N | N bytes of JSON | data area. The JSON maps each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data area) and may
// hold "__metadata__": {string: string}. Used for the model export, routing traces and the parity
// oracle's tensors (docs/ARCHITECTURE.md "Formats shared between parts").
//
// Every check runs at open, so a file that opens can be read without further bounds checks. The
// reader accepts gaps between tensors but not overlaps. The writer lays tensors out back to back, as the
// reference implementation requires (it rejects gaps), and pads the JSON header with spaces so the data
// area starts 64-byte aligned in the file; a tensor's own alignment is then that of the bytes before it
// (all-F32 exports: 4-byte aligned).
#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/fileutil.h"
#include "io/mapped_file.h"

namespace m3vit {

namespace {

constexpr size_t kAlign = 64;  // data offsets and the start of the data area
constexpr const char* kMetadataKey = "__metadata__";

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON integer in [0, limit], or a FormatError built by `where`.
template <class Where>
uint64_t json_uint(const nlohmann::ordered_json& v, uint64_t limit, const Where& where) {
  if (!v.is_number_integer()) throw FormatError(where() + " is not a non-negative integer: " + v.dump());
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > limit) throw FormatError(where() + " is too large: " + v.dump());
    return u;
  }
  int64_t s = v.get<int64_t>();
  if (s < 0) throw FormatError(where() + " is negative: " + v.dump());
  if (static_cast<uint64_t>(s) > limit) throw FormatError(where() + " is too large: " + v.dump());
  return static_cast<uint64_t>(s);
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;  // relative to the data area
  size_t order = 0;             // position in the header, to break ties between empty tensors
};

}  // namespace

struct SafeTensorsFile::Impl {
  MappedFile file;
  std::map<std::string, Entry> entries;
  std::map<std::string, std::string> metadata;
  size_t data_start = 0;  // 8 + header length

  void parse(const std::string& path);
};

void SafeTensorsFile::Impl::parse(const std::string& path) {
  const size_t size = file.size();
  if (size < 8)
    throw FormatError(path + ": truncated safetensors file (" + std::to_string(size) +
                      " bytes, the header length alone needs 8)");
  const uint64_t n = read_u64_le(file.data());
  if (n > size - 8)
    throw FormatError(path + ": header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(size) + " bytes)");
  if (n < 2) throw FormatError(path + ": header length " + std::to_string(n) + " is too short for a JSON object");
  data_start = 8 + static_cast<size_t>(n);
  const uint64_t data_size = size - data_start;
  const char* text = reinterpret_cast<const char*>(file.data() + 8);

  // Duplicate top-level names would silently overwrite each other in the parsed object: refuse them.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, nlohmann::ordered_json::parse_event_t ev, nlohmann::ordered_json& parsed) {
    if (depth == 1 && ev == nlohmann::ordered_json::parse_event_t::key) {
      std::string k = parsed.get<std::string>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  // ordered_json keeps the file's header order, which names() uses to break offset ties.
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(text, text + n, on_event);
  } catch (const nlohmann::ordered_json::exception& e) {
    throw FormatError(path + ": bad safetensors header JSON: " + e.what());
  }
  if (!header.is_object()) throw FormatError(path + ": safetensors header is not a JSON object");
  if (!duplicate.empty()) throw FormatError(path + ": tensor '" + duplicate + "' appears twice in the header");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::ordered_json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object()) throw FormatError(path + ": __metadata__ is not a JSON object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw FormatError(path + ": __metadata__ value '" + m.key() + "' is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto where = [&] { return path + ": tensor '" + name + "'"; };
    if (!v.is_object()) throw FormatError(where() + ": header entry is not a JSON object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) throw FormatError(where() + ": missing or non-string \"dtype\"");
    if (sh == v.end() || !sh->is_array()) throw FormatError(where() + ": missing or non-array \"shape\"");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      throw FormatError(where() + ": \"data_offsets\" must be an array [begin, end]");
    Entry e;
    e.view.name = name;
    e.order = entries.size();
    try {
      e.view.dtype = dtype_from_name(dt->get<std::string>());
    } catch (const FormatError& err) {
      throw FormatError(where() + ": " + err.what());
    }
    // numel * element size must fit in the file, which bounds every product below.
    uint64_t nbytes = dtype_size(e.view.dtype);
    for (size_t i = 0; i < sh->size(); ++i) {
      uint64_t dim = json_uint((*sh)[i], uint64_t{1} << 62, [&] { return where() + ": shape[" + std::to_string(i) + "]"; });
      e.view.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && nbytes > std::numeric_limits<uint64_t>::max() / dim)
        throw FormatError(where() + ": shape " + sh->dump() + " overflows");
      nbytes *= dim;
    }
    e.begin = json_uint((*off)[0], data_size, [&] { return where() + ": data begin offset (data area holds " + std::to_string(data_size) + " bytes)"; });
    e.end = json_uint((*off)[1], data_size, [&] { return where() + ": data end offset (data area holds " + std::to_string(data_size) + " bytes)"; });
    if (e.end < e.begin)
      throw FormatError(where() + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before they begin");
    if (e.end - e.begin != nbytes)
      throw FormatError(where() + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
                        std::to_string(e.end - e.begin) + " bytes but " + dtype_name(e.view.dtype) + " " +
                        shape_str(e.view.shape) + " needs " + std::to_string(nbytes));
    e.view.data = file.data() + data_start + e.begin;
    e.view.nbytes = static_cast<size_t>(nbytes);
    entries.emplace(name, std::move(e));
  }

  // No two non-empty tensors may share bytes.
  std::vector<const Entry*> order;
  for (const auto& [name, e] : entries)
    if (e.end > e.begin) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->begin < order[i - 1]->end)
      throw FormatError(path + ": tensor '" + order[i]->view.name + "' overlaps tensor '" + order[i - 1]->view.name +
                        "' (bytes " + std::to_string(order[i]->begin) + ".." + std::to_string(order[i]->end) +
                        " vs " + std::to_string(order[i - 1]->begin) + ".." + std::to_string(order[i - 1]->end) + ")");
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->file = MappedFile(path);
  impl_->parse(path);
}

SafeTensorsFile::~SafeTensorsFile() = default;
SafeTensorsFile::SafeTensorsFile(SafeTensorsFile&&) noexcept = default;
SafeTensorsFile& SafeTensorsFile::operator=(SafeTensorsFile&&) noexcept = default;

const std::string& SafeTensorsFile::path() const { return impl_->file.path(); }

bool SafeTensorsFile::has(const std::string& name) const { return impl_->entries.count(name) != 0; }

const TensorView& SafeTensorsFile::get(const std::string& name) const {
  auto it = impl_->entries.find(name);
  if (it == impl_->entries.end()) throw FormatError(path() + ": no tensor '" + name + "'");
  return it->second.view;
}

const TensorView& SafeTensorsFile::get(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const {
  const TensorView& v = get(name);
  if (v.dtype != dtype || v.shape != shape)
    throw ShapeError(path() + ": tensor '" + name + "' expected " + dtype_name(dtype) + " " + shape_str(shape) +
                     ", got " + dtype_name(v.dtype) + " " + shape_str(v.shape));
  return v;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<const Entry*> order;
  for (const auto& [name, e] : impl_->entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->order < b->order;
  });
  std::vector<std::string> out;
  for (const Entry* e : order) out.push_back(e->view.name);
  return out;
}

const std::map<std::string, std::string>& SafeTensorsFile::metadata() const { return impl_->metadata; }

size_t SafeTensorsFile::file_offset(const std::string& name) const {
  auto it = impl_->entries.find(name);
  if (it == impl_->entries.end()) throw FormatError(path() + ": no tensor '" + name + "'");
  return impl_->data_start + static_cast<size_t>(it->second.begin);
}

// ---------------------------------------------------------------------------------------------------
// Writer

void SafeTensorsWriter::add(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data,
                            size_t nbytes) {
  if (name.empty() || name == kMetadataKey) throw FormatError("safetensors: invalid tensor name '" + name + "'");
  for (const auto& e : entries_)
    if (e.name == name) throw FormatError("safetensors: tensor '" + name + "' added twice");
  for (int64_t d : shape)
    if (d < 0) throw ShapeError("safetensors: tensor '" + name + "' has a negative dimension " + shape_str(shape));
  const size_t want = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (want != nbytes)
    throw FormatError("safetensors: tensor '" + name + "' " + dtype_name(dtype) + " " + shape_str(shape) + " needs " +
                      std::to_string(want) + " bytes, got " + std::to_string(nbytes));
  Entry e{name, dtype, shape, {}};
  const auto* p = static_cast<const uint8_t*>(data);
  if (nbytes) e.bytes.assign(p, p + nbytes);
  entries_.push_back(std::move(e));
}

void SafeTensorsWriter::add(const std::string& name, const OwnedTensor& t) {
  add(name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
}

void SafeTensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

void SafeTensorsWriter::write(const std::string& path) const {
  // Header in insertion order (ordered_json), metadata first.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header[kMetadataKey] = meta;
  }
  std::vector<size_t> begins;
  size_t off = 0;
  for (const auto& e : entries_) {
    begins.push_back(off);
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.bytes.size()}}};
    off += e.bytes.size();
  }
  std::string text = header.dump();
  // Pad with spaces (valid JSON whitespace) so the data area starts 64-byte aligned in the file.
  text.append(align_up(8 + text.size()) - 8 - text.size(), ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  write_atomic(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw IoError("cannot write " + path + ": " + std::strerror(errno));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    static const uint8_t zeros[kAlign] = {};
    size_t pos = 0;
    for (size_t i = 0; ok && i < entries_.size(); ++i) {
      size_t pad = begins[i] - pos;
      ok = pad == 0 || std::fwrite(zeros, 1, pad, f) == pad;
      const auto& b = entries_[i].bytes;
      ok = ok && (b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size());
      pos = begins[i] + b.size();
    }
    ok = ok && std::fflush(f) == 0;
    std::fclose(f);
    if (!ok) throw IoError("short write to " + path);
  });
}

}  // namespace m3vit
