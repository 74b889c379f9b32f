#include "common/pch/torch_pch.h"

// MultiTaskModel: shared MoE ViT backbone, one PUP head per task, training-only TAM
// (authors' models/models.py:118-263; paper §3).
#include "model/multitask_model.h"

#include <set>

#include "common/errors.h"

namespace m3vit {

namespace {

std::string shape_str(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace

MultiTaskModelImpl::MultiTaskModelImpl(ModelConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  backbone = register_module("backbone", VisionTransformerMoE(cfg_));
  // A plain container module, so each head is keyed decoders.{task} (the authors' nn.ModuleDict).
  auto dict = register_module("decoders", std::make_shared<torch::nn::Module>("ModuleDict"));
  for (const auto& t : cfg_.tasks) {
    decoders.push_back(PupHead(cfg_.embed_dim, cfg_.head_channels, t.out_channels, cfg_.ln_eps));
    dict->register_module(t.name, decoders.back());
  }
  if (cfg_.tam)
    for (int l = 0; l < 3; ++l)
      if (cfg_.tam_levels[l])
        tam_model[l] = register_module("tam_model" + std::to_string(l), TamModule(cfg_.tasks, cfg_.head_channels));
}

void MultiTaskModelImpl::check_input(const torch::Tensor& images) const {
  const auto s = images.sizes();
  if (s.size() != 4 || s[1] != cfg_.in_chans || s[2] != cfg_.img_h || s[3] != cfg_.img_w)
    throw ShapeError("model input has shape " + shape_str(s) + " but this model needs [B, " +
                     std::to_string(cfg_.in_chans) + ", " + std::to_string(cfg_.img_h) + ", " +
                     std::to_string(cfg_.img_w) + "] (the positional embedding fixes the size)");
}

void MultiTaskModelImpl::check_task(int task) const {
  if (task < 0 || task >= cfg_.num_tasks())
    throw ConfigError("task index " + std::to_string(task) + " is outside 0.." + std::to_string(cfg_.num_tasks() - 1));
}

torch::Tensor MultiTaskModelImpl::forward_features(const torch::Tensor& images, int task, ForwardTrace* trace) {
  check_input(images);
  check_task(task);
  return backbone->forward(images, task, trace);  // [B, N, d]
}

torch::Tensor MultiTaskModelImpl::forward_task(const torch::Tensor& images, int task, ForwardTrace* trace) {
  torch::Tensor feats = forward_features(images, task, trace);
  torch::Tensor y = decoders[task]->forward(feats, cfg_.grid_h(), cfg_.grid_w(), nullptr,
                                            trace ? &trace->head_in : nullptr);
  return resize_bilinear(y, images.size(2), images.size(3));  // [B, C_t, H, W] (models.py:248)
}

std::map<std::string, torch::Tensor> MultiTaskModelImpl::forward_all(const torch::Tensor& images) {
  check_input(images);
  const int T = cfg_.num_tasks();
  const int64_t H = images.size(2), W = images.size(3);
  const bool tam_on = cfg_.tam && is_training();  // TAM is deep supervision: training only (models.py:240)
  std::vector<std::array<torch::Tensor, 3>> tam_feats(T);
  std::map<std::string, torch::Tensor> out;
  // Shared gate: the routing ignores the task, so one backbone pass serves every head (models.py:190-199).
  // Multi / task-conditioned gate: one pass per task with that task's routing (models.py:225-249).
  // Those passes agree up to the first MoE layer's routing, so that prefix (embedding, the dense
  // blocks before it, its attention half) is computed once and each task continues from it: the
  // authors recompute it per task; the values are the same (no dropout or drop path anywhere) and
  // its gradient is the sum of the tasks' as before, in one backward instead of T.
  torch::Tensor shared, prefix;
  if (cfg_.gate == GateType::shared)
    shared = backbone->forward(images, 0);
  else
    prefix = backbone->forward_prefix(images);  // [B, N, d]
  for (int t = 0; t < T; ++t) {
    torch::Tensor rep = shared.defined() ? shared : backbone->forward_from_prefix(prefix, t);  // [B, N, d]
    torch::Tensor y = decoders[t]->forward(rep, cfg_.grid_h(), cfg_.grid_w(), tam_on ? &tam_feats[t] : nullptr);
    out[cfg_.tasks[t].name] = resize_bilinear(y, H, W);
  }
  if (tam_on) {
    for (int l = 0; l < 3; ++l) {
      if (!tam_model[l]) continue;
      std::vector<torch::Tensor> f;
      for (int t = 0; t < T; ++t) f.push_back(tam_feats[t][l]);
      std::vector<torch::Tensor> y = tam_model[l]->forward(f);
      for (int t = 0; t < T; ++t)
        out["tam_level" + std::to_string(l) + "_" + cfg_.tasks[t].name] = resize_bilinear(y[t], H, W);
    }
  }
  return out;
}

torch::Tensor MultiTaskModelImpl::take_aux_loss() {
  torch::Tensor sum;
  for (auto& r : backbone->routers()) {
    torch::Tensor l = r->take_loss();
    if (l.defined()) sum = sum.defined() ? sum + l : l;
  }
  if (!sum.defined()) sum = torch::zeros({}, backbone->pos_embed.options());
  return sum;
}

std::vector<torch::Tensor> MultiTaskModelImpl::expert_parameters() {
  std::vector<torch::Tensor> p;
  for (size_t i = 0; i < backbone->blocks->size(); ++i) {
    auto b = backbone->blocks->ptr<BlockImpl>(i);
    if (!b->is_moe()) continue;
    for (auto& t : b->moe_mlp->experts->parameters()) p.push_back(t);
  }
  return p;
}

std::vector<torch::Tensor> MultiTaskModelImpl::non_expert_parameters() {
  std::set<const void*> experts;
  for (auto& t : expert_parameters()) experts.insert(t.unsafeGetTensorImpl());
  std::vector<torch::Tensor> p;
  for (auto& t : parameters())
    if (!experts.count(t.unsafeGetTensorImpl())) p.push_back(t);
  return p;
}

}  // namespace m3vit
