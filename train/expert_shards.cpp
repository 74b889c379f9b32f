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

// "momentum_buffer/backbone.blocks.1.mlp.experts.htoh4.weight" -> the parameter's key.
std::string param_of_state(const std::string& key) {
  const auto slash = key.find('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
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
  const std::string name = param_of_state(key);
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

void ExpertShards::write_shard(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create " + dir + ": " + ec.message());
  const std::string path = dir + "/" + std::to_string(dist_.rank()) + ".safetensors";
  if (dist_.rank() == 0) {
    export_model(model_, path, /*training_weights=*/true);  // every tensor, rank 0's experts
    return;
  }
  SafeTensorsWriter w;  // rank r > 0: its experts only (utils/moe_utils.py:32-38 filter_state)
  for (const auto& p : experts_) add_tensor(w, p.name, p.param.detach().contiguous());
  w.set_metadata("format", "m3vit-expert-shard");
  w.set_metadata("shard", std::to_string(dist_.rank()) + " of " + std::to_string(dist_.world_size()));
  w.write(path);
}

}  // namespace m3vit
