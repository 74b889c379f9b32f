// Patch embedding of the ViT backbone (authors' vision_transformer_moe.py:285-310 `PatchEmbed`;
// paper §3.1): a Conv2d(in_chans -> d, kernel = stride = patch) whose output grid is flattened
// row-major into tokens. Key: patch_embed.proj.{weight,bias}.
#pragma once

#include "common/pch/torch_pch.h"

namespace m3vit {

class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int in_chans, int embed_dim, int patch);
  // images [B, C, H, W] -> tokens [B, (H/p)*(W/p), d], row-major over the patch grid.
  torch::Tensor forward(const torch::Tensor& images);

  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

}  // namespace m3vit
