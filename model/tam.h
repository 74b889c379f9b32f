// TAM: the training-only task-aware deep-supervision module (authors' models/models.py:9-101
// `TamModule`; docs/AUTHORS_CODE.md Q39). One instance tam_model{L} per enabled feature level L of the PUP heads.
// With T tasks and per-task head features F_t [B, C, H, W] (C = head width, 256 for the authors):
//   Bm   = sigmoid(layers1(relu(layers0(cat_t F_t))))                 layers0: T*C->C, layers1: C->C
//   Fb   = weighted concat of F_t by Bm / (1 - Bm)  (T = 2..5, the authors' fixed rules)
//   M    = sigmoid(decoder1(relu(decoder0(relu(encoder1(relu(encoder0(relu(layers2(Fb))))))))))
//   out_t = layers4.{t}(relu(layers3.{t}(cat_t F_t·(1+M))))          -> [B, C_t, H, W]
// Every conv is 3x3 pad 1 followed by BN (eps 1e-5, momentum 0.1) in a Sequential (keys .0 conv, .1 BN);
// encoders have stride 2; decoders are ConvTranspose2d(k 3, s 2, p 1, output_padding 1);
// layers4.{t} is Sequential(conv1x1). H and W must be multiples of 4 (two halvings, two doublings).
#pragma once

#include "common/pch/torch_pch.h"

#include <vector>

#include "core/config.h"

namespace m3vit {

class TamModuleImpl : public torch::nn::Module {
 public:
  // channels: the head width C; the authors' layers3 output width is also 256 = their head width,
  // so we use C there too.
  TamModuleImpl(const std::vector<TaskSpec>& tasks, int channels);
  // features[t]: [B, C, H, W] of task t (model task order) -> per task [B, C_t, H, W].
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& features);

  torch::nn::Sequential layers0{nullptr}, layers1{nullptr}, layers2{nullptr};
  torch::nn::Sequential encoder0{nullptr}, encoder1{nullptr}, decoder0{nullptr}, decoder1{nullptr};
  // Containers keyed by task name (the authors' nn.ModuleDict): layers3.{task}, layers4.{task}.
  std::shared_ptr<torch::nn::Module> layers3, layers4;

 private:
  std::vector<TaskSpec> tasks_;
  std::vector<torch::nn::Sequential> heads3_, heads4_;  // the same modules, in task order
};
TORCH_MODULE(TamModule);

}  // namespace m3vit
