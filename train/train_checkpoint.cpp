// Training checkpoints (see train_checkpoint.h).
#include "common/pch/torch_pch.h"

#include "train/train_checkpoint.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "common/errors.h"
#include "common/fileutil.h"
#include "io/safetensors.h"
#include "train/finite_check.h"
#include "train/optimizer.h"
#include "model/tensor_io.h"

namespace m3vit {

namespace {

const std::string kModelPrefix = "model/";
const std::string kOptPrefix = "optimizer/";
const std::string kRngKey = "rng/torch_cpu";

}  // namespace

std::string optimizer_state_param(const std::string& key) {
  const auto slash = key.find('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

std::string position_to_json(const TrainPosition& p) {
  nlohmann::json j;
  j["epoch"] = p.epoch;
  j["batch_in_epoch"] = p.batch_in_epoch;
  j["step"] = p.step;
  j["images"] = p.images;
  // JSON has no infinity: "no validation yet" is stored as null.
  if (std::isfinite(p.best_delta_m)) j["best_delta_m"] = p.best_delta_m;
  else j["best_delta_m"] = nullptr;
  j["best_step"] = p.best_step;
  return j.dump();
}

TrainPosition position_from_json(const std::string& text) {
  TrainPosition p;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("training position is not valid JSON: ") + e.what());
  }
  auto get = [&](const char* k, int64_t& v) {
    if (!j.contains(k) || !j[k].is_number_integer()) throw FormatError(std::string("training position: missing integer '") + k + "'");
    v = j[k].get<int64_t>();
  };
  get("epoch", p.epoch);
  get("batch_in_epoch", p.batch_in_epoch);
  get("step", p.step);
  get("images", p.images);
  get("best_step", p.best_step);
  if (j.contains("best_delta_m") && j["best_delta_m"].is_number()) p.best_delta_m = j["best_delta_m"].get<double>();
  if (p.epoch < 0 || p.batch_in_epoch < 0 || p.step < 0) throw FormatError("training position: negative counter");
  return p;
}

std::vector<std::pair<std::string, torch::Tensor>> model_state(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& it : model.named_parameters(true)) out.emplace_back(it.key(), it.value());
  for (const auto& it : model.named_buffers(true)) out.emplace_back(it.key(), it.value());
  return out;
}

void save_train_checkpoint(const std::string& path, const torch::nn::Module& model, const std::string& config_json,
                           const Optimizer& opt, const TrainPosition& pos, const std::string& train_options_json,
                           const ExpertShardSet* shards) {
  // An expert-parallel checkpoint leaves the experts (this rank holds E/N of them) to the shards.
  auto in_shards = [&](const std::string& param, const torch::Tensor& t) {
    return shards && t.dim() > 0 && shards->params.count(param);
  };
  SafeTensorsWriter w;
  for (const auto& [name, t] : model_state(model))
    if (!in_shards(name, t)) add_tensor(w, kModelPrefix + name, t);
  for (const auto& [name, t] : opt.state_dict())
    if (!in_shards(optimizer_state_param(name), t)) add_tensor(w, kOptPrefix + name, t);  // Adam's step counts stay
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    add_tensor(w, kRngKey, gen.get_state());
  }
  w.set_metadata("format", kTrainCheckpointFormat);
  w.set_metadata("m3vit_config", config_json);
  w.set_metadata("train_options", train_options_json);
  w.set_metadata("position", position_to_json(pos));
  if (shards) w.set_metadata("expert_shards", nlohmann::json{{"world", shards->world}, {"dir", shards->dir}}.dump());
  w.write(path);  // atomic: temp file, fsync, rename
}

namespace {

LoadedCheckpoint metadata_of(const SafeTensorsFile& f) {
  const auto& md = f.metadata();
  auto it = md.find("format");
  if (it == md.end() || it->second != kTrainCheckpointFormat)
    throw FormatError(f.path() + ": not a training checkpoint (metadata format is '" +
                      (it == md.end() ? std::string("missing") : it->second) + "', expected " + kTrainCheckpointFormat + ")");
  LoadedCheckpoint c;
  for (const char* k : {"m3vit_config", "train_options", "position"})
    if (!md.count(k)) throw FormatError(f.path() + ": training checkpoint without metadata '" + k + "'");
  c.config_json = md.at("m3vit_config");
  c.train_options_json = md.at("train_options");
  try {
    c.position = position_from_json(md.at("position"));
  } catch (const FormatError& e) {
    throw FormatError(f.path() + ": " + e.what());
  }
  return c;
}

}  // namespace

void assign_model_tensors(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& tensors,
                          const std::string& what) {
  torch::NoGradGuard no_grad;
  size_t used = 0;
  for (auto& [name, t] : model_state(model)) {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw FormatError(what + ": no tensor '" + name + "'");
    if (it->second.sizes() != t.sizes())
      throw ShapeError(what + ": tensor '" + name + "' has shape " + shape_str(it->second.sizes().vec()) +
                       ", the model expects " + shape_str(t.sizes().vec()));
    t.copy_(it->second);
    ++used;
  }
  if (used != tensors.size()) {
    std::set<std::string> known;
    for (auto& [name, t] : model_state(model)) known.insert(name);
    for (const auto& [name, t] : tensors)
      if (!known.count(name)) throw FormatError(what + ": tensor '" + name + "' belongs to no part of this model");
  }
}

namespace {

// An expert-parallel checkpoint's experts (see train_checkpoint.h): rank r's pair of shard files,
// concatenated in rank order into `model_t` (the keys the checkpoint itself lacks) and `opt_t`.
void add_expert_shards(const SafeTensorsFile& ckpt, int64_t step, bool with_optimizer,
                       std::map<std::string, torch::Tensor>& model_t, std::map<std::string, torch::Tensor>& opt_t) {
  int world = 0;
  std::string dir;
  try {
    const nlohmann::json j = nlohmann::json::parse(ckpt.metadata().at("expert_shards"));
    world = j.at("world").get<int>();
    dir = j.at("dir").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(ckpt.path() + ": metadata 'expert_shards' is not {\"world\": N, \"dir\": D}: " + e.what());
  }
  if (world < 1) throw FormatError(ckpt.path() + ": metadata 'expert_shards' names " + std::to_string(world) + " shards");
  const std::filesystem::path folder = std::filesystem::path(ckpt.path()).parent_path() / dir;
  // The shard of this step: in the folder, or still in next/ when the run stopped before moving it.
  auto shard_file = [&](int r, const std::string& suffix) {
    const std::string name = std::to_string(r) + suffix;
    std::string seen;
    for (const auto& p : {folder / name, folder / "next" / name}) {
      if (!std::filesystem::exists(p)) continue;
      SafeTensorsFile s(p.string());
      auto it = s.metadata().find("step");
      if (it != s.metadata().end() && it->second == std::to_string(step)) return p.string();
      seen += (seen.empty() ? "" : ", ") + p.string() + " is of step " + (it == s.metadata().end() ? "?" : it->second);
    }
    throw FormatError(ckpt.path() + " (step " + std::to_string(step) + ") keeps its experts in shards, but " +
                      (seen.empty() ? (folder / name).string() + " is missing" : seen) +
                      ": this checkpoint's shards are missing or from another step; restore them, or start "
                      "again with --overwrite");
  };
  auto gather = [&](const std::string& suffix, const std::string& prefix, std::map<std::string, torch::Tensor>& into) {
    std::map<std::string, std::vector<torch::Tensor>> parts;
    std::set<std::string> first;
    for (int r = 0; r < world; ++r) {
      const std::string path = shard_file(r, suffix);
      SafeTensorsFile s(path);
      std::set<std::string> keys;
      for (const auto& name : s.names()) {
        if (name.rfind(prefix, 0) != 0) continue;
        const std::string key = name.substr(prefix.size());
        if (r == 0 && into.count(key)) continue;  // rank 0's weights shard holds the dense tensors too
        if (r > 0 && !first.count(key))
          throw FormatError(path + ": tensor '" + name + "' is in no other shard of " + ckpt.path());
        keys.insert(key);
        parts[key].push_back(to_tensor(s.get(name)));
      }
      if (r == 0) first = keys;
      else if (keys.size() != first.size())
        throw FormatError(path + ": holds " + std::to_string(keys.size()) + " expert tensors, shard 0 holds " +
                          std::to_string(first.size()));
    }
    for (auto& [key, ts] : parts) into[key] = torch::cat(ts, 0);
  };
  gather(".safetensors", "", model_t);
  if (with_optimizer) gather(".optimizer.safetensors", kOptPrefix, opt_t);
}

}  // namespace

LoadedCheckpoint load_train_checkpoint(const std::string& path, torch::nn::Module& model, Optimizer* opt) {
  SafeTensorsFile f(path);
  LoadedCheckpoint c = metadata_of(f);
  std::map<std::string, torch::Tensor> model_t, opt_t;
  torch::Tensor rng;
  for (const auto& name : f.names()) {
    if (name.rfind(kModelPrefix, 0) == 0) model_t[name.substr(kModelPrefix.size())] = to_tensor(f.get(name));
    else if (name.rfind(kOptPrefix, 0) == 0) opt_t[name.substr(kOptPrefix.size())] = to_tensor(f.get(name));
    else if (name == kRngKey) rng = to_tensor(f.get(name));
    else throw FormatError(path + ": unexpected tensor '" + name + "' in a training checkpoint");
  }
  if (f.metadata().count("expert_shards")) add_expert_shards(f, c.position.step, opt != nullptr, model_t, opt_t);
  // A NaN or Inf in a checkpoint (a corrupt file: the trainer never writes one, docs/TRAINING.md "Bad
  // numbers") is refused before anything is copied, naming the tensor, rather than let the resumed run
  // fail at its first step with a message that points at the training instead of the file.
  NamedTensors used;
  for (const auto& [name, t] : model_t) used.emplace_back(kModelPrefix + name, t);
  if (opt)
    for (const auto& [name, t] : opt_t) used.emplace_back(kOptPrefix + name, t);
  if (auto bad = non_finite_entries(used); !bad.empty()) {
    const auto& [name, t] = used[bad.front()];
    throw NumericError(path + ": tensor '" + name + "' holds NaN or Inf (" + non_finite_summary(t) + ")" +
                       (bad.size() > 1 ? " and " + std::to_string(bad.size() - 1) + " more tensors do" : "") +
                       ": the checkpoint is corrupt; restore a good copy, or start again with --overwrite");
  }
  assign_model_tensors(model, model_t, path);
  if (opt) {
    try {
      opt->load_state_dict(opt_t);
    } catch (const FormatError& e) {
      throw FormatError(path + ": " + e.what());
    }
    if (!rng.defined()) throw FormatError(path + ": no tensor '" + kRngKey + "'");
    try {
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    } catch (const c10::Error& e) {
      throw FormatError(path + ": tensor '" + kRngKey + "' is not a CPU generator state");
    }
  }
  return c;
}

LoadedCheckpoint read_train_checkpoint_metadata(const std::string& path) {
  SafeTensorsFile f(path);
  return metadata_of(f);
}

bool is_train_checkpoint(const std::string& path) {
  try {
    SafeTensorsFile f(path);
    auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == kTrainCheckpointFormat;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace m3vit
