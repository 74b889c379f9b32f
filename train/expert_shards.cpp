#include "common/pch/torch_pch.h"

// Expert parallelism in training (see expert_shards.h).
#include "train/expert_shards.h"

#include <filesystem>
#include <map>

#include "common/errors.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/tensor_io.h"

namespace m3vit {

namespace {

// Replaces a parameter's values (and shape) in place: the module, the optimizer and the gradient
// hooks keep the same tensor. Its gradient, of the old shape, is dropped.
void set_values(torch::Tensor& p, const torch::Tensor& v) {
  torch::NoGradGuard no_grad;
  p.set_data(v);
  p.mutable_grad() = torch::Tensor();
}

}  // namespace

ExpertShards::ExpertShards(Distributed& dist, MultiTaskModelImpl& model) : dist_(dist), model_(model) {
  const int N = dist.world_size();
  total_ = model.config().moe_experts;
  if (model.config().moe_blocks.empty())
    throw ConfigError("train.expert_parallel: the model has no MoE layer to shard");
  if (total_ % N != 0)
    throw ConfigError("train.expert_parallel: " + std::to_string(N) + " processes do not divide the " +
                      std::to_string(total_) + " experts of each MoE layer (each process holds E/N of them)");
  local_ = total_ / N;
  for (auto& p : name_parameters(model, model.expert_parameters()))
    if (p.expert) experts_.push_back(p);
  dist.start_expert_exchange();
}

bool ExpertShards::is_expert_state(const std::string& key) const {
  const std::string name = optimizer_state_param(key);
  for (const auto& p : experts_)
    if (p.name == name) return true;
  return false;
}

void ExpertShards::keep_own(Optimizer& opt) {
  if (experts_.front().param.size(0) == local_) return;  // already this rank's shard
  std::map<std::string, torch::Tensor> state = opt.state_dict();
  const int64_t first = first_expert();
  for (auto& p : experts_) set_values(p.param, p.param.detach().narrow(0, first, local_).clone());
  for (auto& [key, t] : state)
    if (t.dim() > 0 && is_expert_state(key)) t = t.narrow(0, first, local_).clone();  // not Adam's step scalars
  opt.load_state_dict(state);
}

void ExpertShards::gather_to_lead(Optimizer& opt) {
  const bool lead = dist_.rank() == 0;
  std::map<std::string, torch::Tensor> state = opt.state_dict();
  // The same state entries on every rank (the ranks step together); said, not hung on, if not.
  int64_t mine = 0;
  for (const auto& [key, t] : state) mine += t.dim() > 0 && is_expert_state(key);
  std::vector<torch::Tensor> counts{torch::tensor({static_cast<double>(mine)}, torch::kDouble)};
  dist_.sum_in_place(counts);
  if (counts[0].item<double>() != static_cast<double>(mine * dist_.world_size()))
    throw Error("expert parallel: the ranks hold different optimizer states for their experts");
  for (auto& p : experts_) {
    torch::Tensor all = dist_.all_gather_cat(p.param.detach());  // [E, ...] in rank order
    if (lead) set_values(p.param, all);
  }
  for (auto& [key, t] : state)
    if (t.dim() > 0 && is_expert_state(key)) t = dist_.all_gather_cat(t);  // std::map: one order everywhere
  if (lead) opt.load_state_dict(state);
}

void ExpertShards::average_expert_gradients() {
  torch::NoGradGuard no_grad;
  const double inv = 1.0 / dist_.world_size();
  for (auto& p : experts_)
    if (p.param.grad().defined()) p.param.mutable_grad().mul_(inv);
}

ExpertShardSet ExpertShards::shard_set() const {
  ExpertShardSet set;
  set.world = dist_.world_size();
  for (const auto& p : experts_) set.params.insert(p.name);
  return set;
}

void ExpertShards::write_checkpoint_shards(const std::string& dir, const Optimizer& opt, int64_t step,
                                           const std::function<void()>& write_checkpoint) {
  namespace fs = std::filesystem;
  const int rank = dist_.rank(), N = dist_.world_size();
  const std::string next = dir + "/next";
  std::error_code ec;
  fs::create_directories(next, ec);
  if (ec) throw IoError("cannot create " + next + ": " + ec.message());
  const std::map<std::string, std::string> md{{"step", std::to_string(step)},
                                              {"shard", std::to_string(rank) + " of " + std::to_string(N)}};
  const std::string weights = std::to_string(rank) + ".safetensors", state = std::to_string(rank) + ".optimizer.safetensors";
  // 1. This rank's pair into next/.
  if (rank == 0) {
    export_model(model_, next + "/" + weights, /*training_weights=*/true, md);  // every tensor, rank 0's experts
  } else {
    SafeTensorsWriter w;  // rank r > 0: its experts only (utils/moe_utils.py:32-38 filter_state)
    for (const auto& p : experts_) add_tensor(w, p.name, p.param.detach().contiguous());
    w.set_metadata("format", "m3vit-expert-shard");
    for (const auto& [k, v] : md) w.set_metadata(k, v);
    w.write(next + "/" + weights);
  }
  SafeTensorsWriter o;  // the experts' optimizer state, as the checkpoint names it
  for (const auto& [key, t] : opt.state_dict())
    if (t.dim() > 0 && is_expert_state(key)) add_tensor(o, "optimizer/" + key, t.contiguous());
  o.set_metadata("format", "m3vit-expert-optimizer-shard");
  for (const auto& [k, v] : md) o.set_metadata(k, v);
  o.write(next + "/" + state);
  // 2. The commit.
  dist_.barrier();
  if (rank == 0) write_checkpoint();
  dist_.barrier();
  // 3. Into place.
  for (const auto& f : {weights, state}) {
    fs::rename(next + "/" + f, dir + "/" + f, ec);
    if (ec) throw IoError("cannot move " + next + "/" + f + " to " + dir + ": " + ec.message());
  }
  if (rank != 0) return;
  std::vector<fs::path> stale;
  for (const auto& folder : {dir, next})
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      const std::string name = e.path().filename().string();
      const std::string stem = name.substr(0, name.find('.'));
      if (!stem.empty() && stem.size() <= 6 && stem.find_first_not_of("0123456789") == std::string::npos &&
          std::stoi(stem) >= N)
        stale.push_back(e.path());
    }
  for (const auto& p : stale) fs::remove(p, ec);
}

}  // namespace m3vit
