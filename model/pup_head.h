// PUP (progressive upsampling) task head (authors' models/vit_up_head.py:73-224
// `VisionTransformerUpHead` with num_conv 4, num_upsampe_layer 4, bilinear; paper §3.3; forward :149-224).
// One independent head per task, keys decoders.{task}.{norm, conv_0..4, syncbn_fc_0..3}.
//   tokens [B, N, d] -> drop cls -> LayerNorm(d) -> [B, d, h, w]
//   conv_0 3x3 d->C_h, BN, ReLU, x2 -> conv_1 3x3, BN, ReLU (TAM level 0), x2
//   -> conv_2 3x3, BN, ReLU (TAM level 1), x2 -> conv_3 3x3, BN, ReLU (TAM level 2)
//   -> conv_4 1x1 C_h->C_task, x2                              => [B, C_task, 16h, 16w]
// All upsampling is bilinear with align_corners=false. BN: eps 1e-5, momentum 0.1 (the authors' SyncBN:
// over the global batch in a data-parallel run, model/batch_sync.h).
#pragma once

#include "common/pch/torch_pch.h"

#include <array>

#include "model/batch_sync.h"

namespace m3vit {

class PupHeadImpl : public torch::nn::Module {
 public:
  PupHeadImpl(int embed_dim, int head_channels, int out_channels, double ln_eps);
  // tokens: [B, 1 + h*w, d]. Returns [B, C_task, 16h, 16w]. When `tam_features` is given, it receives
  // the three feature maps after conv_1/2/3 (+BN+ReLU): [B, C_h, 2h..8h, 2w..8w]. When `head_in` is
  // given, it receives the normalised token grid [B, d, h, w].
  torch::Tensor forward(const torch::Tensor& tokens, int grid_h, int grid_w,
                        std::array<torch::Tensor, 3>* tam_features = nullptr, torch::Tensor* head_in = nullptr);

  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Conv2d conv[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  SyncBatchNorm2d bn[4] = {nullptr, nullptr, nullptr, nullptr};
};
TORCH_MODULE(PupHead);

// Bilinear resize with align_corners=false (F.interpolate(..., mode='bilinear')); identity when the
// size already matches (bilinear at scale 1 samples exactly the source pixels).
torch::Tensor resize_bilinear(const torch::Tensor& x, int64_t h, int64_t w);

}  // namespace m3vit
