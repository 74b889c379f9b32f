// The model-export format (core/export.h).
#include "core/export.h"

#include "common/errors.h"
#include "io/safetensors.h"
#include "m3vit/version.h"

namespace m3vit {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

std::string block_key(int block, const std::string& rest) {
  return "backbone.blocks." + std::to_string(block) + "." + rest;
}
std::string head_key(const std::string& task, const std::string& rest) { return "decoders." + task + "." + rest; }

bool has_task_embedding(const ModelConfig& c) { return c.gate == GateType::task_cond && c.task_emb_dim > 0; }
int router_rows(const ModelConfig& c) { return c.embed_dim + (has_task_embedding(c) ? c.task_emb_dim : 0); }
int router_count(const ModelConfig& c) { return c.gate == GateType::multi ? c.num_tasks() : 1; }
std::string router_key(const ModelConfig& c, int block, int task) {
  return block_key(block, c.gate == GateType::multi ? "mlp.gate." + std::to_string(task) + ".w_gate" : "mlp.gate.w_gate");
}

std::vector<TensorSpec> export_tensor_specs(const ModelConfig& c) {
  const int64_t d = c.embed_dim, E = c.moe_experts, hid = c.moe_hidden(), mh = c.mlp_hidden(), ch = c.head_channels;
  std::vector<TensorSpec> s;
  auto add = [&](std::string n, std::vector<int64_t> shape) { s.push_back({std::move(n), std::move(shape)}); };
  add("backbone.cls_token", {1, 1, d});
  add("backbone.pos_embed", {1, c.num_tokens(), d});
  add("backbone.patch_embed.proj.weight", {d, c.in_chans, c.patch, c.patch});
  add("backbone.patch_embed.proj.bias", {d});
  if (has_task_embedding(c)) {
    // One-hot task -> fc1 -> GELU -> fc2 -> LayerNorm (vision_transformer_moe.py:420-423).
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
      add(block_key(i, "mlp.experts.htoh4.weight"), {E, hid, d});
      add(block_key(i, "mlp.experts.htoh4.bias"), {E, hid});
      add(block_key(i, "mlp.experts.h4toh.weight"), {E, d, hid});
      add(block_key(i, "mlp.experts.h4toh.bias"), {E, d});
      for (int t = 0; t < router_count(c); ++t) add(router_key(c, i, t), {router_rows(c), E});
    } else {
      add(block_key(i, "mlp.fc1.weight"), {mh, d});
      add(block_key(i, "mlp.fc1.bias"), {mh});
      add(block_key(i, "mlp.fc2.weight"), {d, mh});
      add(block_key(i, "mlp.fc2.bias"), {d});
    }
  }
  // PUP head (vit_up_head.py:107-116): LayerNorm, 4 x (3x3 conv, BatchNorm), then the 1x1 classifier.
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

bool export_only_key(const std::string& name) {
  return name.rfind("tam_model", 0) == 0 || ends_with(name, "num_batches_tracked");
}

bool training_only_key(const std::string& name) { return name.rfind("tam_model", 0) == 0; }

std::map<std::string, std::string> export_metadata(const ModelConfig& cfg, bool training_weights) {
  return {{"format", kExportFormat},
          {kConfigMetadataKey, config_to_json(cfg)},
          {"m3vit_version", M3VIT_VERSION_STRING},
          {kTrainingWeightsKey, training_weights ? kTrainingWeightsIncluded : kTrainingWeightsOmitted}};
}

bool export_has_training_weights(const std::map<std::string, std::string>& md, const std::string& origin) {
  auto it = md.find(kTrainingWeightsKey);
  if (it == md.end() || it->second == kTrainingWeightsIncluded) return true;
  if (it->second == kTrainingWeightsOmitted) return false;
  throw FormatError(origin + ": metadata \"" + kTrainingWeightsKey + "\" is '" + it->second + "', expected '" +
                    kTrainingWeightsIncluded + "' or '" + kTrainingWeightsOmitted + "'");
}

ModelConfig config_from_metadata(const std::map<std::string, std::string>& md, const std::string& origin) {
  auto js = md.find(kConfigMetadataKey);
  if (js == md.end()) throw FormatError(origin + ": metadata has no \"" + kConfigMetadataKey + "\"");
  try {
    return config_from_json(js->second);
  } catch (const ConfigError& e) {
    throw ConfigError(origin + ": " + e.what());
  }
}

namespace {

// N of "m3vit-export-v<N>", or 0 when the tag is not of that form.
int export_format_version(const std::string& tag) {
  const std::string prefix = kExportFormatPrefix;
  if (tag.size() <= prefix.size() || tag.size() > prefix.size() + 6 || tag.compare(0, prefix.size(), prefix) != 0)
    return 0;
  int n = 0;
  for (size_t i = prefix.size(); i < tag.size(); ++i) {
    if (tag[i] < '0' || tag[i] > '9') return 0;
    n = n * 10 + (tag[i] - '0');
  }
  return n;
}

}  // namespace

ModelConfig read_export_config(const SafeTensorsFile& f) {
  static_assert(M3VIT_EXPORT_FORMAT_VERSION == 1, "kExportFormat names the format version");
  const auto& md = f.metadata();
  auto fmt = md.find("format");
  const int version = fmt == md.end() ? 0 : export_format_version(fmt->second);
  if (version > M3VIT_EXPORT_FORMAT_VERSION) {
    auto writer = md.find("m3vit_version");
    throw FormatError(f.path() + ": model export format v" + std::to_string(version) +
                      (writer == md.end() ? std::string() : " (written by m3vit " + writer->second + ")") +
                      " is newer than this m3vit " M3VIT_VERSION_STRING " reads (export format v" +
                      std::to_string(M3VIT_EXPORT_FORMAT_VERSION) + " at most): upgrade m3vit");
  }
  if (version < 1)
    throw FormatError(f.path() + ": not an m3vit model export (metadata \"format\" is " +
                      (fmt == md.end() ? std::string("missing") : "'" + fmt->second + "'") + ", expected '" +
                      kExportFormat + "'; write one with `m3vit export`)");
  return config_from_metadata(md, f.path());
}

ModelConfig read_export_config(const std::string& path) { return read_export_config(SafeTensorsFile(path)); }

}  // namespace m3vit
