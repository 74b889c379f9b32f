// SGD / Adam / AdamW with named state (see optimizer.h). The update sequences follow torch.optim 1.13
// (_single_tensor_sgd, _single_tensor_adam, _single_tensor_adamw) op for op.
#include "common/pch/torch_pch.h"

#include "train/optimizer.h"

#include <cmath>
#include <set>

#include "common/errors.h"
#include "io/tensor_data.h"

namespace m3vit {

Optimizer::Optimizer(std::vector<NamedParameter> params, OptimizerConfig cfg)
    : params_(std::move(params)), slots_(params_.size()), cfg_(std::move(cfg)) {
  if (cfg_.type != "sgd" && cfg_.type != "adam" && cfg_.type != "adamw")
    throw ConfigError("unknown optimizer '" + cfg_.type + "' (sgd, adam, adamw)");
  if (cfg_.momentum < 0 || cfg_.weight_decay < 0 || cfg_.expert_grad_scale <= 0 || cfg_.expert_lr_scale <= 0)
    throw ConfigError("optimizer: momentum and weight decay must be >= 0, expert scales > 0");
  if (cfg_.nesterov && cfg_.momentum <= 0) throw ConfigError("optimizer: nesterov needs momentum > 0");
  std::set<std::string> seen;
  for (const auto& p : params_)
    if (!seen.insert(p.name).second) throw ConfigError("optimizer: parameter '" + p.name + "' listed twice");
}

void Optimizer::zero_grad() {
  for (auto& p : params_) {
    auto& g = p.param.mutable_grad();
    if (g.defined()) {
      g = g.detach();
      g.zero_();
    }
  }
}

void Optimizer::sgd_update(const NamedParameter& p, Slot& s, const torch::Tensor& grad, double lr) {
  // d_p = g + wd·p; buf = d_p (first step) or m·buf + d_p; p -= lr·(nesterov ? d_p + m·buf : buf)
  torch::Tensor d_p = cfg_.weight_decay != 0 ? grad.add(p.param, cfg_.weight_decay) : grad;
  if (cfg_.momentum != 0) {
    if (!s.momentum_buffer.defined()) {
      s.momentum_buffer = d_p.clone().detach();
    } else {
      s.momentum_buffer.mul_(cfg_.momentum).add_(d_p, 1.0);  // dampening 0
    }
    d_p = cfg_.nesterov ? d_p.add(s.momentum_buffer, cfg_.momentum) : s.momentum_buffer;
  }
  p.param.add_(d_p, -lr);
}

void Optimizer::adam_update(const NamedParameter& p, Slot& s, const torch::Tensor& grad_in, double lr,
                            bool decoupled) {
  if (!s.exp_avg.defined()) {
    s.exp_avg = torch::zeros_like(p.param, torch::MemoryFormat::Preserve);
    s.exp_avg_sq = torch::zeros_like(p.param, torch::MemoryFormat::Preserve);
  }
  s.step += 1;
  torch::Tensor grad = grad_in;
  if (decoupled)
    p.param.mul_(1 - lr * cfg_.weight_decay);  // AdamW: decay the weights, not the gradient
  else if (cfg_.weight_decay != 0)
    grad = grad.add(p.param, cfg_.weight_decay);  // Adam: L2 in the gradient
  s.exp_avg.mul_(cfg_.beta1).add_(grad, 1 - cfg_.beta1);
  s.exp_avg_sq.mul_(cfg_.beta2).addcmul_(grad, grad, 1 - cfg_.beta2);
  const double bias_correction1 = 1 - std::pow(cfg_.beta1, s.step);
  const double bias_correction2 = 1 - std::pow(cfg_.beta2, s.step);
  const double step_size = lr / bias_correction1;
  auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(cfg_.eps);
  p.param.addcdiv_(s.exp_avg, denom, -step_size);
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const auto& g = p.param.grad();
    if (!g.defined()) continue;
    torch::Tensor grad = g;
    double plr = lr;
    if (p.expert) {
      // Quirk Q13 (docs/AUTHORS_CODE.md): experts' gradients are not averaged across GPUs in the authors' run.
      if (cfg_.expert_grad_scale != 1) grad = grad * cfg_.expert_grad_scale;
      plr = lr * cfg_.expert_lr_scale;
    }
    if (cfg_.type == "sgd")
      sgd_update(p, slots_[i], grad, plr);
    else
      adam_update(p, slots_[i], grad, plr, cfg_.type == "adamw");
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Optimizer::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& s = slots_[i];
    const auto& n = params_[i].name;
    if (s.momentum_buffer.defined()) out.emplace_back("momentum_buffer/" + n, s.momentum_buffer);
    if (s.exp_avg.defined()) {
      out.emplace_back("exp_avg/" + n, s.exp_avg);
      out.emplace_back("exp_avg_sq/" + n, s.exp_avg_sq);
    }
  }
  return out;
}

std::map<std::string, torch::Tensor> Optimizer::state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [key, t] : state_tensors()) out[key] = t.clone();
  for (size_t i = 0; i < params_.size(); ++i)
    if (slots_[i].exp_avg.defined()) out["step/" + params_[i].name] = torch::tensor(slots_[i].step, torch::kFloat64);
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, torch::Tensor>& state) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) index[params_[i].name] = i;
  std::vector<Slot> slots(params_.size());
  for (const auto& [key, t] : state) {
    const auto slash = key.find('/');
    const std::string kind = slash == std::string::npos ? "" : key.substr(0, slash);
    auto it = slash == std::string::npos ? index.end() : index.find(key.substr(slash + 1));
    if (it == index.end())
      throw FormatError("optimizer state '" + key + "' names no parameter of this model");
    const auto& p = params_[it->second];
    Slot& s = slots[it->second];
    if (kind == "step") {
      if (t.numel() != 1) throw FormatError("optimizer state '" + key + "' must be a scalar");
      s.step = t.to(torch::kFloat64).item<double>();
      continue;
    }
    if (t.sizes() != p.param.sizes())
      throw FormatError("optimizer state '" + key + "' has shape " + shape_str(t.sizes().vec()) + ", parameter " +
                        shape_str(p.param.sizes().vec()));
    auto copy = t.to(p.param.scalar_type()).clone();
    if (kind == "momentum_buffer" && cfg_.type == "sgd") s.momentum_buffer = copy;
    else if (kind == "exp_avg" && cfg_.type != "sgd") s.exp_avg = copy;
    else if (kind == "exp_avg_sq" && cfg_.type != "sgd") s.exp_avg_sq = copy;
    else throw FormatError("optimizer state '" + key + "' does not belong to a " + cfg_.type + " optimizer");
  }
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].exp_avg.defined() != slots[i].exp_avg_sq.defined())
      throw FormatError("optimizer state of '" + params_[i].name + "' has only one of exp_avg / exp_avg_sq");
  slots_ = std::move(slots);
}

std::vector<NamedParameter> name_parameters(const torch::nn::Module& module,
                                            const std::vector<torch::Tensor>& experts) {
  std::set<const void*> expert_ids;
  for (const auto& e : experts) expert_ids.insert(e.unsafeGetTensorImpl());
  std::vector<NamedParameter> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const bool is_expert = expert_ids.count(item.value().unsafeGetTensorImpl()) != 0;
    out.push_back({item.key(), item.value(), is_expert});
  }
  return out;
}

}  // namespace m3vit
