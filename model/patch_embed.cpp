#include "common/pch/torch_pch.h"

// Patch embedding (vision_transformer_moe.py:285-310).
#include "model/patch_embed.h"

namespace m3vit {

PatchEmbedImpl::PatchEmbedImpl(int in_chans, int embed_dim, int patch) {
  // torch's default Conv2d init (kaiming-uniform a=sqrt(5), bias U(±1/sqrt(fan_in))): the authors'
  // init_weights touches only Linear and LayerNorm (vision_transformer_moe.py:471-479).
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, patch).stride(patch)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  torch::Tensor x = proj->forward(images);  // [B, d, h, w]
  return x.flatten(2).transpose(1, 2);      // [B, h*w, d]
}

}  // namespace m3vit
