#include "common/pch/torch_pch.h"

// Checkpoint import/export (model/checkpoint.h, docs/WEIGHTS.md). The authors load pretrained
// weights in two places: timm/DeiT weights in utils/helpers.py:207-316 (quirk Q28, docs/AUTHORS_CODE.md) and an
// ImageNet MoE checkpoint or a shard directory in utils/common_config.py:29-97 and :208-247
// (cvt_state_dict; docs/WEIGHTS.md). Their key edits are re-derived here in checkpoint_filter();
// the file readers are the torch-free ones in io/.
#include "model/checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/errors.h"
#include "io/pth_reader.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "model/tensor_io.h"

namespace m3vit {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

std::string shape_of(const torch::Tensor& t) { return shape_str(t.sizes().vec()); }

// Expert tensors are the ones FastMoE shards across ranks (utils/moe_utils.py:32-38 filter_state, 95-101).
bool is_expert_key(const std::string& k) { return contains(k, "mlp.experts.htoh4") || contains(k, "mlp.experts.h4toh"); }

std::map<std::string, torch::Tensor> read_file_tensors(const std::string& path) {
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("cannot read checkpoint " + path);
    in.read(magic, 4);
  }
  std::map<std::string, torch::Tensor> out;
  const bool zip = std::memcmp(magic, "PK\x03\x04", 4) == 0;
  const bool legacy_pickle = static_cast<unsigned char>(magic[0]) == 0x80;
  if (zip || legacy_pickle) {
    for (auto& [k, t] : read_pth_tensors(path)) out[k] = tensor_from_bytes(t.dtype, t.shape, t.bytes.data(), t.bytes.size(), k);
  } else {
    SafeTensorsFile f(path);
    for (const auto& k : f.names()) out[k] = to_tensor(f.get(k));
  }
  return out;
}

// An authors' checkpoint directory: {rank}.pth shards (utils/moe_utils.py:68-79 writes them;
// train_fastmoe.py:323-345 and common_config.py:214-231 merge them). Rank 0 holds every tensor,
// rank r > 0 only its expert tensors, which are appended along dim 0 (the expert axis) in rank order.
// Our expert-parallel runs write the same layout as {rank}.safetensors (train/expert_shards.h).
std::map<std::string, torch::Tensor> read_shard_dir(const std::string& dir) {
  std::map<int, std::string> shards;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const size_t ext = ends_with(name, ".pth") ? 4 : ends_with(name, ".safetensors") ? 12 : 0;
    if (ext == 0) continue;
    const std::string stem = name.substr(0, name.size() - ext);
    if (stem.empty() || stem.size() > 6 || stem.find_first_not_of("0123456789") != std::string::npos) continue;
    const int rank = std::stoi(stem);
    if (shards.count(rank))
      throw FormatError(dir + ": two shards of rank " + stem + " (" + std::filesystem::path(shards[rank]).filename().string() +
                        " and " + name + ")");
    shards[rank] = e.path().string();
  }
  if (shards.empty())
    throw FormatError(dir + ": no {rank}.pth or {rank}.safetensors shards (0.pth, 1.pth, ...) in the checkpoint directory");
  const std::string ext = std::filesystem::path(shards.begin()->second).extension().string();  // as the others
  for (int r = 0; r < static_cast<int>(shards.size()); ++r)
    if (!shards.count(r))
      throw FormatError(dir + ": shard " + std::to_string(r) + ext + " is missing (" + std::to_string(shards.size()) +
                        " shards found, ranks must be 0.." + std::to_string(shards.size() - 1) + ")");
  std::map<std::string, torch::Tensor> out = read_file_tensors(shards.at(0));
  std::map<std::string, std::vector<torch::Tensor>> parts;
  for (int r = 1; r < static_cast<int>(shards.size()); ++r) {
    for (auto& [k, t] : read_file_tensors(shards.at(r))) {
      if (!is_expert_key(k)) continue;  // rank r > 0 stores only experts (filter_state); ignore anything else
      auto base = out.find(k);
      if (base == out.end())
        throw FormatError(shards.at(r) + ": expert tensor '" + k + "' has no counterpart in shard 0");
      auto a = base->second.sizes().vec(), b = t.sizes().vec();
      if (a.size() != b.size() || a.empty() || !std::equal(a.begin() + 1, a.end(), b.begin() + 1))
        throw ShapeError(shards.at(r) + ": expert tensor '" + k + "' has shape " + shape_of(t) +
                         ", which cannot be appended to shard 0's " + shape_of(base->second));
      parts[k].push_back(t);
    }
  }
  for (auto& [k, ts] : parts) {
    ts.insert(ts.begin(), out.at(k));
    out[k] = torch::cat(ts, 0);
  }
  return out;
}

}  // namespace

std::string LoadReport::summary() const {
  return "loaded " + std::to_string(loaded.size()) + ", missing " + std::to_string(missing.size()) + ", unexpected " +
         std::to_string(unexpected.size()) + ", remapped " + std::to_string(remapped.size()) + ", ignored " +
         std::to_string(ignored.size());
}

torch::Tensor resize_pos_embed(const torch::Tensor& pos, int h, int w) {
  if (pos.dim() != 3 || pos.size(0) != 1 || h <= 0 || w <= 0)
    throw ShapeError("pos_embed of shape " + shape_of(pos) + " cannot be resized to a " + std::to_string(h) + "x" +
                     std::to_string(w) + " grid (expected [1, N, d])");
  const int64_t n = pos.size(1), d = pos.size(2);
  int64_t g = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while ((g + 1) * (g + 1) <= n) ++g;
  while (g * g > n) --g;
  // The authors take g = int(sqrt(N)) over all N rows (helpers.py:283-285): with a cls token (and a
  // DeiT-distilled dist token) in front of a g x g grid that is the grid size. Anything else is not a
  // square grid and would be silently scrambled.
  if (n - g * g != 1 && n - g * g != 2)
    throw ShapeError("pos_embed of shape " + shape_of(pos) + " is not a cls row (plus at most a distillation row) "
                     "followed by a square grid; cannot resize it to " + std::to_string(h) + "x" + std::to_string(w));
  torch::NoGradGuard no_grad;
  torch::Tensor grid = pos.narrow(1, n - g * g, g * g).to(torch::kFloat);     // [1, g*g, d]
  grid = grid.transpose(1, 2).reshape({1, d, g, g});                          // [1, d, g, g]
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{h, w})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));                     // [1, d, h, w]
  grid = grid.reshape({1, d, static_cast<int64_t>(h) * w}).transpose(1, 2);    // [1, h*w, d]
  return torch::cat({pos.narrow(1, 0, 1).to(torch::kFloat), grid}, 1).contiguous();  // [1, 1+h*w, d]
}

std::map<std::string, torch::Tensor> checkpoint_filter(const std::map<std::string, torch::Tensor>& src,
                                                       const std::map<std::string, std::vector<int64_t>>& model_shapes,
                                                       const ModelConfig& cfg, const FilterOptions& opt,
                                                       const std::string& source, LoadReport& report) {
  std::map<std::string, torch::Tensor> out;
  auto has = [&](const std::string& k) { return model_shapes.count(k) != 0; };
  // Every tensor reaches the model through here: its shape must be the model's.
  auto put = [&](const std::string& key, const torch::Tensor& t, const std::string& from) {
    const auto& want = model_shapes.at(key);
    if (t.sizes().vec() != want)
      throw ShapeError(source + ": tensor '" + from + "' has shape " + shape_of(t) + " but the model's '" + key +
                       "' is " + shape_str(want));
    out[key] = t;
  };

  // 1. The state dict inside a training checkpoint {'state_dict': ..., 'optimizer': ..., 'epoch': ...}
  //    (train_fastmoe.py:323-345) or a DeiT file {'model': ...} (helpers.py:150-155).
  std::string root;
  for (const char* r : {"state_dict.", "model."}) {
    for (const auto& [k, t] : src)
      if (starts_with(k, r)) {
        root = r;
        break;
      }
    if (!root.empty()) break;
  }
  size_t n_module = 0, n_backbone = 0;
  std::map<int, std::map<std::string, torch::Tensor>> dense_mlp;  // MoE block -> its DeiT fc1/fc2 tensors

  for (const auto& [raw, t] : src) {
    if (!starts_with(raw, root)) {
      report.ignored.push_back(raw + " (outside the state dict '" + root.substr(0, root.size() - 1) + "')");
      continue;
    }
    std::string k = raw.substr(root.size());
    // 2. DistributedDataParallel's prefix (cvt_state_dict strips it, common_config.py:31-42).
    if (starts_with(k, "module.")) {
      k = k.substr(7);
      ++n_module;
    }
    // 3. Decoupled-activation gate weights `w_gate_aux` (common_config.py:36-38; quirk Q8, unused).
    if (contains(k, "_aux")) {
      report.ignored.push_back(raw + " (auxiliary gate weight)");
      continue;
    }
    // 4. A backbone-only checkpoint: the ImageNet classifier, its final norm and DeiT's distillation
    //    token have no place in the dense-prediction model (helpers.py:267-278; common_config.py:35).
    if (!starts_with(k, "backbone.") && !starts_with(k, "decoders.") && !starts_with(k, "tam_model")) {
      if (starts_with(k, "head") || starts_with(k, "norm") || starts_with(k, "fc_norm") || k == "dist_token") {
        report.ignored.push_back(raw + " (ImageNet classifier, final norm or distillation token)");
        continue;
      }
      k = "backbone." + k;
      ++n_backbone;
    }
    // 5. Multi-gate: one pretrained router copied into every task's router.
    if (ends_with(k, "mlp.gate.w_gate") && !has(k)) {
      const std::string stem = k.substr(0, k.size() - 6);  // "...mlp.gate."
      if (has(stem + "0.w_gate")) {
        for (int task = 0; has(stem + std::to_string(task) + ".w_gate"); ++task) {
          const std::string dst = stem + std::to_string(task) + ".w_gate";
          put(dst, t, raw);
          report.remapped.push_back(raw + " -> " + dst + ": single router copied to task " + std::to_string(task));
        }
        continue;
      }
    }
    // 6. Task-conditioned gate: zero rows for the task-embedding inputs, so routing starts as pretrained.
    if (ends_with(k, "mlp.gate.w_gate") && has(k) && t.dim() == 2) {
      const auto& want = model_shapes.at(k);
      if (want.size() == 2 && t.size(0) == cfg.embed_dim && want[0] > t.size(0) && t.size(1) == want[1]) {
        put(k, torch::cat({t, torch::zeros({want[0] - t.size(0), want[1]}, t.options())}, 0), raw);
        report.remapped.push_back(raw + " -> " + k + ": " + std::to_string(want[0] - t.size(0)) +
                                  " zero rows appended for the task embedding");
        continue;
      }
    }
    // 7. Positional embedding of another grid (helpers.py:280-301).
    if (k == "backbone.pos_embed" && has(k) && t.sizes().vec() != model_shapes.at(k)) {
      torch::Tensor r = resize_pos_embed(t, cfg.grid_h(), cfg.grid_w()).to(t.scalar_type());
      put(k, r, raw);
      report.remapped.push_back(raw + " -> " + k + ": grid of " + shape_of(t) + " resized to " +
                                std::to_string(cfg.grid_h()) + "x" + std::to_string(cfg.grid_w()));
      continue;
    }
    // 8. Patch embedding stored as a linear layer [d, C*p*p] (some ViT ports) -> conv [d, C, p, p].
    if (k == "backbone.patch_embed.proj.weight" && has(k) && t.dim() == 2 && model_shapes.at(k).size() == 4 &&
        t.numel() == shape_numel(model_shapes.at(k))) {
      put(k, t.reshape(model_shapes.at(k)), raw);
      report.remapped.push_back(raw + " -> " + k + ": linear layout reshaped to conv " + shape_str(model_shapes.at(k)));
      continue;
    }
    // 9. A dense MLP where the model has a MoE layer: DeiT's odd blocks (helpers.py:302-313 is
    //    disabled, so the authors leave those experts random).
    if (starts_with(k, "backbone.blocks.") && contains(k, ".mlp.fc") && !has(k)) {
      const std::string rest = k.substr(16);  // "{i}.mlp.fc1.weight"
      const size_t dot = rest.find('.');
      const std::string block = rest.substr(0, dot);
      if (dot != std::string::npos && block.find_first_not_of("0123456789") == std::string::npos && !block.empty() &&
          has("backbone.blocks." + block + ".mlp.experts.htoh4.weight")) {
        if (opt.split_experts) dense_mlp[std::stoi(block)][rest.substr(dot + 5)] = t;  // "fc1.weight" ...
        else report.ignored.push_back(raw + " (dense MLP of a MoE block; experts keep their initialisation)");
        continue;
      }
    }
    // 10. Everything else: the same key and shape in the model, or unexpected.
    if (has(k)) put(k, t, raw);
    else report.unexpected.push_back(raw);
  }
  if (n_module) report.remapped.push_back("module.* -> *: DistributedDataParallel prefix stripped from " + std::to_string(n_module) + " keys");
  if (n_backbone) report.remapped.push_back("* -> backbone.*: backbone-only checkpoint, " + std::to_string(n_backbone) + " keys prefixed");

  // 9b. split_experts: expert e takes hidden units u = (e*hid + j) mod H of the dense MLP.
  for (auto& [block, parts] : dense_mlp) {
    const std::string pre = "backbone.blocks." + std::to_string(block) + ".mlp.";
    for (const char* need : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"})
      if (!parts.count(need))
        throw FormatError(source + ": cannot split block " + std::to_string(block) + "'s dense MLP into experts: '" +
                          pre + need + "' is missing");
    const auto& ws = model_shapes.at(pre + "experts.htoh4.weight");  // [E, hid, d]
    const int64_t E = ws[0], hid = ws[1], d = ws[2];
    const torch::Tensor w1 = parts["fc1.weight"], b1 = parts["fc1.bias"];  // [H, d], [H]
    const torch::Tensor w2 = parts["fc2.weight"], b2 = parts["fc2.bias"];  // [d, H], [d]
    const int64_t H = w1.dim() == 2 ? w1.size(0) : -1;
    if (H <= 0 || w1.size(1) != d || b1.sizes().vec() != std::vector<int64_t>{H} ||
        w2.sizes().vec() != std::vector<int64_t>{d, H} || b2.sizes().vec() != std::vector<int64_t>{d})
      throw ShapeError(source + ": block " + std::to_string(block) + "'s dense MLP fc1 " + shape_of(w1) + " / fc2 " +
                       shape_of(w2) + " does not fit experts of width d=" + std::to_string(d));
    const torch::Tensor idx = torch::arange(E * hid, torch::kLong).remainder(H);  // [E*hid]
    put(pre + "experts.htoh4.weight", w1.index_select(0, idx).reshape({E, hid, d}), pre + "fc1.weight");
    put(pre + "experts.htoh4.bias", b1.index_select(0, idx).reshape({E, hid}), pre + "fc1.bias");
    put(pre + "experts.h4toh.weight", w2.index_select(1, idx).reshape({d, E, hid}).permute({1, 0, 2}).contiguous(),
        pre + "fc2.weight");
    // Each expert carries its share hid/H of the output bias, so a full cover of H units adds up to b2.
    put(pre + "experts.h4toh.bias", (b2 * (static_cast<double>(hid) / static_cast<double>(H))).unsqueeze(0).expand({E, d}).contiguous(),
        pre + "fc2.bias");
    report.remapped.push_back(pre + "fc1/fc2 -> " + pre + "experts: dense MLP (hidden " + std::to_string(H) +
                              ") split into " + std::to_string(E) + " experts of " + std::to_string(hid) + " units");
  }
  return out;
}

LoadReport load_state(torch::nn::Module& m, const ModelConfig& cfg, const std::map<std::string, torch::Tensor>& src,
                      bool strict, const FilterOptions& opt, const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : m.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : m.named_buffers(true)) targets[b.key()] = b.value();
  for (const auto& [k, t] : targets) shapes[k] = t.sizes().vec();

  LoadReport report;
  std::map<std::string, torch::Tensor> filtered = checkpoint_filter(src, shapes, cfg, opt, source, report);
  for (const auto& [k, t] : targets) {
    if (filtered.count(k)) report.loaded.push_back(k);
    else if (opt.allow_missing_training_only && training_only_key(k))
      report.ignored.push_back(k + ": training-only, not in this inference export (keeps its initial values)");
    else report.missing.push_back(k);
  }
  if (strict && !report.missing.empty()) {
    std::string list;
    for (size_t i = 0; i < report.missing.size() && i < 5; ++i) list += (i ? ", " : "") + report.missing[i];
    if (report.missing.size() > 5) list += ", ...";
    throw FormatError(source + ": checkpoint lacks " + std::to_string(report.missing.size()) + " of the model's " +
                      std::to_string(targets.size()) + " tensors: " + list);
  }
  for (const auto& [k, t] : filtered)
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw NumericError(source + ": tensor for '" + k + "' contains NaN or Inf");
  // Nothing is copied before every check above has passed.
  torch::NoGradGuard no_grad;
  for (const auto& [k, t] : filtered) targets.at(k).copy_(t);
  return report;
}

std::map<std::string, torch::Tensor> read_checkpoint_tensors(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return read_shard_dir(path);
  return read_file_tensors(path);
}

void export_module(torch::nn::Module& m, const ModelConfig& cfg, const std::string& path, bool training_weights,
                   const std::map<std::string, std::string>& extra_metadata) {
  SafeTensorsWriter w;
  auto add = [&](const std::string& k, const torch::Tensor& v) {
    if (!training_weights && training_only_key(k)) return;  // inference never reads them
    torch::Tensor t = v.detach().to(torch::kCPU).to(torch::kFloat);
    if (!torch::isfinite(t).all().item<bool>()) throw NumericError("cannot export " + path + ": '" + k + "' contains NaN or Inf");
    add_tensor(w, k, t);
  };
  for (const auto& p : m.named_parameters(true)) add(p.key(), p.value());
  for (const auto& b : m.named_buffers(true)) add(b.key(), b.value());
  for (const auto& [k, v] : export_metadata(cfg, training_weights)) w.set_metadata(k, v);
  for (const auto& [k, v] : extra_metadata) w.set_metadata(k, v);
  w.write(path);
}

void export_model(MultiTaskModelImpl& m, const std::string& path, bool training_weights,
                  const std::map<std::string, std::string>& extra_metadata) {
  export_module(m, m.config(), path, training_weights, extra_metadata);
}

MultiTaskModel load_exported(const std::string& path) {
  MultiTaskModel m(read_export_config(path));
  LoadReport r = load_checkpoint(*m, path, /*strict=*/true);
  if (!r.unexpected.empty())
    throw FormatError(path + ": export holds " + std::to_string(r.unexpected.size()) +
                      " tensors its own config does not build, first '" + r.unexpected.front() + "'");
  m->eval();
  return m;
}

namespace {

// True when `path` is one of our exports whose metadata says the training-only tensors were left out.
bool inference_export(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return false;
  std::map<std::string, std::string> md;
  try {
    md = SafeTensorsFile(path).metadata();
  } catch (const Error&) {
    return false;  // not safetensors (a .pth zip) or unreadable: read_checkpoint_tensors says what it is
  }
  auto f = md.find("format");
  if (f == md.end() || f->second.rfind(kExportFormatPrefix, 0) != 0) return false;
  return !export_has_training_weights(md, path);
}

}  // namespace

LoadReport load_checkpoint(MultiTaskModelImpl& m, const std::string& path, bool strict, LoadFor use) {
  FilterOptions opt;
  if (strict && inference_export(path)) {
    std::vector<std::string> need;
    for (const auto& p : m.named_parameters(true))
      if (training_only_key(p.key())) need.push_back(p.key());
    for (const auto& b : m.named_buffers(true))
      if (training_only_key(b.key())) need.push_back(b.key());
    if (!need.empty() && use == LoadFor::training)
      throw FormatError(path + ": an inference export without training weights (metadata \"" + kTrainingWeightsKey +
                        "\": \"" + kTrainingWeightsOmitted + "\"): it lacks the TAM's " + std::to_string(need.size()) +
                        " tensors (" + need.front() + ", ...), which loading it as a full checkpoint needs; export "
                        "the trained model with `m3vit export --with-training-weights`");
    opt.allow_missing_training_only = true;
  }
  return load_state(m, m.config(), read_checkpoint_tensors(path), strict, opt, path);
}

LoadReport load_deit(MultiTaskModelImpl& m, const std::string& path, bool split_experts) {
  FilterOptions opt;
  opt.split_experts = split_experts;
  return load_state(m, m.config(), read_checkpoint_tensors(path), /*strict=*/false, opt, path);
}

}  // namespace m3vit
