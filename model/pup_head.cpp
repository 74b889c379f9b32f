#include "common/pch/torch_pch.h"

// PUP task head (vit_up_head.py:73-224).
#include "model/pup_head.h"

namespace m3vit {

namespace F = torch::nn::functional;

torch::Tensor resize_bilinear(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(-2) == h && x.size(-1) == w) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

namespace {
torch::Tensor up2(const torch::Tensor& x) { return resize_bilinear(x, 2 * x.size(-2), 2 * x.size(-1)); }
}  // namespace

PupHeadImpl::PupHeadImpl(int embed_dim, int head_channels, int out_channels, double ln_eps) {
  // Convs keep torch's default init; LayerNorm 1/0 (vit_up_head.py:139-147).
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim}).eps(ln_eps)));
  auto conv3 = [](int in, int out) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)); };
  conv[0] = register_module("conv_0", conv3(embed_dim, head_channels));
  for (int i = 1; i < 4; ++i) conv[i] = register_module("conv_" + std::to_string(i), conv3(head_channels, head_channels));
  conv[4] = register_module("conv_4", torch::nn::Conv2d(torch::nn::Conv2dOptions(head_channels, out_channels, 1)));
  for (int i = 0; i < 4; ++i)
    bn[i] = register_module("syncbn_fc_" + std::to_string(i),
                            SyncBatchNorm2d(torch::nn::BatchNormOptions(head_channels).eps(1e-5).momentum(0.1)));
}

torch::Tensor PupHeadImpl::forward(const torch::Tensor& tokens, int grid_h, int grid_w,
                                   std::array<torch::Tensor, 3>* tam_features, torch::Tensor* head_in) {
  // Quirk Q15: the authors drop the cls token only when N mod 48 != 0 (vit_up_head.py:153-154), which
  // holds for every size they use (1025, 1201) but would keep it, and fail the reshape, for others.
  // We always drop it.
  torch::Tensor x = norm->forward(tokens.narrow(1, 1, tokens.size(1) - 1));  // [B, h*w, d]
  const int64_t B = x.size(0), d = x.size(2);
  x = x.transpose(1, 2).reshape({B, d, grid_h, grid_w});                     // [B, d, h, w]
  if (head_in) *head_in = x;
  auto cbr = [&](int i, const torch::Tensor& in) { return torch::relu(bn[i]->forward(conv[i]->forward(in))); };
  x = up2(cbr(0, x));                 // [B, C_h, 2h, 2w]
  x = cbr(1, x);                      // TAM level 0 (stride 8 for patch 16)
  if (tam_features) (*tam_features)[0] = x;
  x = cbr(2, up2(x));                 // [B, C_h, 4h, 4w], TAM level 1
  if (tam_features) (*tam_features)[1] = x;
  x = cbr(3, up2(x));                 // [B, C_h, 8h, 8w], TAM level 2
  if (tam_features) (*tam_features)[2] = x;
  return up2(conv[4]->forward(x));    // [B, C_task, 16h, 16w]
}

}  // namespace m3vit
