// Optimizers of the training recipe (docs/TRAINING.md): SGD with momentum and weight decay on every parameter
// (the authors' single parameter group, utils/common_config.py:709-714), Adam and AdamW (their
// `optimizer: adam|adamw` branches). The update rules are torch.optim's (1.13), step for step, so a
// run matches one made with torch.optim; they are written here so that the state has names: every
// buffer is saved as "<kind>/<parameter name>" in the training checkpoint and can be inspected.
//
// Experts get two extra knobs (quirk Q13, docs/AUTHORS_CODE.md): in the authors' 2-GPU FastMoE run, dense and
// router gradients are averaged across GPUs but expert gradients are not, so experts see 2x the
// gradient of the global-mean loss. `expert_grad_scale` = 2 reproduces exactly that (weight decay is
// not scaled); `expert_lr_scale` multiplies the experts' learning rate instead (decay included),
// the common single-device approximation. With SGD and no weight decay both are the same.
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace m3vit {

struct OptimizerConfig {
  std::string type = "sgd";      // sgd | adam | adamw
  double momentum = 0.9;         // SGD
  bool nesterov = false;         // SGD
  double weight_decay = 1e-4;    // SGD/Adam: L2 added to the gradient; AdamW: decoupled p *= 1 - lr·wd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam/AdamW
  double expert_grad_scale = 1;  // expert gradients multiplied by this before the update
  double expert_lr_scale = 1;    // expert learning rate = lr · this
};

struct NamedParameter {
  std::string name;  // the authors' state-dict key
  torch::Tensor param;
  bool expert = false;
};

class Optimizer {
 public:
  // Throws ConfigError for an unknown type or a negative hyper-parameter.
  Optimizer(std::vector<NamedParameter> params, OptimizerConfig cfg);

  void zero_grad();  // sets every gradient to zero (keeps the buffers, as set_to_none = false)
  // One update with base learning rate `lr`. A parameter whose gradient is undefined is skipped and
  // keeps no state, as in torch.optim.
  void step(double lr);

  const OptimizerConfig& config() const { return cfg_; }
  const std::vector<NamedParameter>& parameters() const { return params_; }

  // State for checkpoints: "momentum_buffer/<name>" (SGD), "exp_avg/<name>", "exp_avg_sq/<name>",
  // "step/<name>" (Adam/AdamW; float64 scalar as torch keeps it). Tensors are copies.
  std::map<std::string, torch::Tensor> state_dict() const;
  // Replaces the state. Throws FormatError naming the entry on an unknown name or a wrong shape.
  void load_state_dict(const std::map<std::string, torch::Tensor>& state);
  // The state tensors themselves (no copies), named as in state_dict() without the "step/" scalars:
  // what the trainer checks for NaN/Inf after every update, before a checkpoint can be written.
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;

 private:
  struct Slot {
    torch::Tensor momentum_buffer, exp_avg, exp_avg_sq;
    double step = 0;
  };
  void sgd_update(const NamedParameter& p, Slot& s, const torch::Tensor& grad, double lr);
  void adam_update(const NamedParameter& p, Slot& s, const torch::Tensor& grad, double lr, bool decoupled);

  std::vector<NamedParameter> params_;
  std::vector<Slot> slots_;
  OptimizerConfig cfg_;
};

// Pairs a module's named parameters with the expert flag: a parameter is an expert parameter when it
// is one of `experts` (compared by identity, e.g. MultiTaskModel::expert_parameters()).
std::vector<NamedParameter> name_parameters(const torch::nn::Module& module,
                                            const std::vector<torch::Tensor>& experts);

}  // namespace m3vit
