// Reading and checking a model export (runtime/model_file.h).
#include "runtime/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <set>

#include "common/errors.h"
#include "io/safetensors.h"

namespace m3vit::rt {

namespace {
constexpr const char* kFormat = "m3vit-export-v1";

bool ignored_key(const std::string& name) {
  // TAM: training-only deep supervision (spec §3.3), never run at inference.
  if (name.rfind("tam_model", 0) == 0) return true;
  // BatchNorm's step counter: not used in eval mode.
  const std::string nbt = "num_batches_tracked";
  return name.size() >= nbt.size() && name.compare(name.size() - nbt.size(), nbt.size(), nbt) == 0;
}
}  // namespace

std::string block_key(int block, const std::string& rest) {
  return "backbone.blocks." + std::to_string(block) + "." + rest;
}
std::string head_key(const std::string& task, const std::string& rest) { return "decoders." + task + "." + rest; }

std::vector<TensorSpec> export_tensor_specs(const ModelConfig& c) {
  const int64_t d = c.embed_dim, E = c.moe_experts, hid = c.moe_hidden(), mh = c.mlp_hidden(), ch = c.head_channels;
  std::vector<TensorSpec> s;
  auto add = [&](std::string n, std::vector<int64_t> shape) { s.push_back({std::move(n), std::move(shape)}); };
  add("backbone.cls_token", {1, 1, d});
  add("backbone.pos_embed", {1, c.num_tokens(), d});
  add("backbone.patch_embed.proj.weight", {d, c.in_chans, c.patch, c.patch});
  add("backbone.patch_embed.proj.bias", {d});
  const bool task_emb = c.gate == GateType::task_cond && c.task_emb_dim > 0;
  if (task_emb) {
    const int64_t D = c.task_emb_dim, T = c.num_tasks();
    add("backbone.gate_task_represent.fc1.weight", {D, T});
    add("backbone.gate_task_represent.fc1.bias", {D});
    add("backbone.gate_task_represent.fc2.weight", {D, D});
    add("backbone.gate_task_represent.fc2.bias", {D});
    add("backbone.gate_task_represent.norm.weight", {D});
    add("backbone.gate_task_represent.norm.bias", {D});
  }
  for (int i = 0; i < c.depth; ++i) {
    add(block_key(i, "norm1.weight"), {d});
    add(block_key(i, "norm1.bias"), {d});
    add(block_key(i, "attn.qkv.weight"), {3 * d, d});
    if (c.qkv_bias) add(block_key(i, "attn.qkv.bias"), {3 * d});
    add(block_key(i, "attn.proj.weight"), {d, d});
    add(block_key(i, "attn.proj.bias"), {d});
    add(block_key(i, "norm2.weight"), {d});
    add(block_key(i, "norm2.bias"), {d});
    if (c.is_moe_block(i)) {
      // Experts stacked [E, out, in] (FastMoE FMoELinear, spec §6.1).
      add(block_key(i, "mlp.experts.htoh4.weight"), {E, hid, d});
      add(block_key(i, "mlp.experts.htoh4.bias"), {E, hid});
      add(block_key(i, "mlp.experts.h4toh.weight"), {E, d, hid});
      add(block_key(i, "mlp.experts.h4toh.bias"), {E, d});
      // Routers are input-major [d_gate, E] (noisy_gate_vmoe.py w_gate).
      if (c.gate == GateType::multi) {
        for (int t = 0; t < c.num_tasks(); ++t) add(block_key(i, "mlp.gate." + std::to_string(t) + ".w_gate"), {d, E});
      } else {
        add(block_key(i, "mlp.gate.w_gate"), {d + (task_emb ? c.task_emb_dim : 0), E});
      }
    } else {
      add(block_key(i, "mlp.fc1.weight"), {mh, d});
      add(block_key(i, "mlp.fc1.bias"), {mh});
      add(block_key(i, "mlp.fc2.weight"), {d, mh});
      add(block_key(i, "mlp.fc2.bias"), {d});
    }
  }
  for (const auto& t : c.tasks) {
    add(head_key(t.name, "norm.weight"), {d});
    add(head_key(t.name, "norm.bias"), {d});
    for (int j = 0; j < 4; ++j) {
      const std::string cj = "conv_" + std::to_string(j), bj = "syncbn_fc_" + std::to_string(j);
      add(head_key(t.name, cj + ".weight"), {ch, j == 0 ? d : ch, 3, 3});
      add(head_key(t.name, cj + ".bias"), {ch});
      for (const char* p : {".weight", ".bias", ".running_mean", ".running_var"}) add(head_key(t.name, bj + p), {ch});
    }
    add(head_key(t.name, "conv_4.weight"), {t.out_channels, ch, 1, 1});
    add(head_key(t.name, "conv_4.bias"), {t.out_channels});
  }
  return s;
}

void check_runnable(const ModelConfig& c) {
  c.validate();
  if (c.num_tasks() < 1) throw ConfigError("config has no tasks: the runtime needs at least one task head");
  if (c.in_chans != 3) throw ConfigError("in_chans = " + std::to_string(c.in_chans) + ": the runtime takes RGB images (3)");
  if (!c.moe_blocks.empty() && c.moe_hidden() < 1)
    throw ConfigError("moe_mlp_ratio " + std::to_string(c.moe_mlp_ratio) + " gives an empty expert hidden layer");
  if (c.mlp_hidden() < 1) throw ConfigError("mlp_ratio " + std::to_string(c.mlp_ratio) + " gives an empty MLP");
  if (c.head_channels < 1) throw ConfigError("head_channels must be >= 1");
  std::set<std::string> seen;
  for (const auto& t : c.tasks) {
    if (t.out_channels < 1) throw ConfigError("task '" + t.name + "' has out_channels < 1");
    if (!seen.insert(t.name).second) throw ConfigError("task '" + t.name + "' appears twice");
  }
}

void check_finite(const float* p, int64_t n, const std::string& what) {
  int64_t bad = -1;
#pragma omp parallel for reduction(max : bad) schedule(static) if (n > (1 << 20))
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) bad = std::max(bad, i);
  if (bad >= 0)
    throw NumericError(what + ": element " + std::to_string(bad) + " is " + (std::isnan(p[bad]) ? "NaN" : "Inf") +
                       " (the runtime needs finite weights)");
}

ModelFile::ModelFile(const std::string& path) : path_(path), st_(std::make_unique<SafeTensorsFile>(path)) {
  const auto& meta = st_->metadata();
  auto fmt = meta.find("format");
  if (fmt == meta.end() || fmt->second != kFormat)
    throw FormatError(path + ": not an m3vit model export (metadata \"format\" is " +
                      (fmt == meta.end() ? std::string("missing") : "'" + fmt->second + "'") + ", expected '" +
                      kFormat + "'; write one with `m3vit export`)");
  auto cj = meta.find("m3vit_config");
  if (cj == meta.end()) throw FormatError(path + ": metadata has no \"m3vit_config\"");
  try {
    cfg_ = config_from_json(cj->second);
    check_runnable(cfg_);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
  std::set<std::string> expected;
  for (const auto& s : export_tensor_specs(cfg_)) {
    if (!st_->has(s.name))
      throw FormatError(path + ": missing tensor '" + s.name + "' " + shape_str(s.shape) + " (config '" + cfg_.name +
                        "', gate " + to_string(cfg_.gate) + ")");
    st_->get(s.name, DType::F32, s.shape);  // ShapeError naming both shapes
    expected.insert(s.name);
  }
  for (const auto& n : st_->names())
    if (!expected.count(n) && !ignored_key(n))
      throw FormatError(path + ": unexpected tensor '" + n + "' " + shape_str(st_->get(n).shape) +
                        " for this config (gate " + to_string(cfg_.gate) + ", " + std::to_string(cfg_.num_tasks()) +
                        " tasks, depth " + std::to_string(cfg_.depth) + ")");
}

ModelFile::~ModelFile() = default;

const float* ModelFile::data(const std::string& name) const {
  const TensorView& v = st_->get(name);
  check_finite(v.f32(), v.numel(), path_ + ": tensor '" + name + "'");
  return v.f32();
}

int64_t ModelFile::numel(const std::string& name) const { return st_->get(name).numel(); }

size_t ModelFile::file_offset(const std::string& name) const { return st_->file_offset(name); }

void ModelFile::check_finite_by_reading(const std::string& name) const {
  const TensorView& v = st_->get(name);
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path_ + ": cannot reopen for reading");
  std::vector<float> buf(1 << 18);  // 1 MiB
  const size_t off0 = file_offset(name);
  try {
    for (int64_t done = 0; done < v.numel();) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(buf.size()), v.numel() - done);
      const ssize_t got = ::pread(fd, buf.data(), n * 4, static_cast<off_t>(off0 + done * 4));
      if (got != n * 4) throw IoError(path_ + ": short read of tensor '" + name + "'");
      check_finite(buf.data(), n, path_ + ": tensor '" + name + "' (from element " + std::to_string(done) + ")");
      done += n;
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

void ModelFile::release(const std::string& name) const {
  const TensorView& v = st_->get(name);
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(v.data) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(v.data) + v.nbytes) / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace m3vit::rt
