#include "common/pch/torch_pch.h"

// TAM deep supervision (models.py:9-101).
#include "model/tam.h"

#include "common/errors.h"
#include "model/batch_sync.h"

namespace m3vit {

namespace nn = torch::nn;

namespace {

SyncBatchNorm2d bn(int c) { return SyncBatchNorm2d(nn::BatchNormOptions(c).eps(1e-5).momentum(0.1)); }

nn::Sequential conv_bn(int in, int out, int stride) {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1)), bn(out));
}

nn::Sequential deconv_bn(int c) {
  return nn::Sequential(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c, c, 3).stride(2).padding(1).output_padding(1)),
                        bn(c));
}

}  // namespace

TamModuleImpl::TamModuleImpl(const std::vector<TaskSpec>& tasks, int channels) : tasks_(tasks) {
  const int T = static_cast<int>(tasks.size()), C = channels;
  if (T < 2 || T > 5) throw ConfigError("TAM supports 2..5 tasks, got " + std::to_string(T) + " (models.py:62-71)");
  layers0 = register_module("layers0", conv_bn(T * C, C, 1));
  layers1 = register_module("layers1", conv_bn(C, C, 1));
  layers2 = register_module("layers2", conv_bn(T * C, C, 1));
  encoder0 = register_module("encoder0", conv_bn(C, C, 2));
  encoder1 = register_module("encoder1", conv_bn(C, C, 2));
  decoder0 = register_module("decoder0", deconv_bn(C));
  decoder1 = register_module("decoder1", deconv_bn(C));
  layers3 = register_module("layers3", std::make_shared<nn::Module>("ModuleDict"));
  layers4 = register_module("layers4", std::make_shared<nn::Module>("ModuleDict"));
  for (const auto& t : tasks) {
    heads3_.push_back(layers3->register_module(t.name, conv_bn(T * C, C, 1)));
    heads4_.push_back(layers4->register_module(t.name, nn::Sequential(nn::Conv2d(nn::Conv2dOptions(C, t.out_channels, 1)))));
  }
}

std::vector<torch::Tensor> TamModuleImpl::forward(const std::vector<torch::Tensor>& f) {
  const size_t T = f.size();
  const auto& s = f[0].sizes();
  if (s[2] % 4 || s[3] % 4)
    throw ShapeError("TAM feature map " + std::to_string(s[2]) + "x" + std::to_string(s[3]) +
                     " is not a multiple of 4 in both sides (its encoder halves it twice and its decoder doubles it twice)");
  torch::Tensor x = torch::relu(layers0->forward(torch::cat(f, 1)));  // [B, C, H, W]
  torch::Tensor b = torch::sigmoid(layers1->forward(x));               // Bm
  torch::Tensor nb = 1 - b;
  // The authors' weighted concatenation for each task count (models.py:62-71): the first tasks share
  // Bm, the rest share 1-Bm, each half divided by the number of tasks in it (T=3 keeps F0·Bm whole).
  std::vector<torch::Tensor> parts;
  switch (T) {
    case 2: parts = {f[0] * b, f[1] * nb}; break;
    case 3: parts = {f[0] * b, f[1] * nb / 2, f[2] * nb / 2}; break;
    case 4: parts = {f[0] * b / 2, f[1] * b / 2, f[2] * nb / 2, f[3] * nb / 2}; break;
    default: parts = {f[0] * b / 2, f[1] * b / 2, f[2] * nb / 3, f[3] * nb / 3, f[4] * nb / 3}; break;
  }
  torch::Tensor fb = torch::relu(layers2->forward(torch::cat(parts, 1)));
  fb = torch::relu(encoder0->forward(fb));   // [B, C, H/2, W/2]
  fb = torch::relu(encoder1->forward(fb));   // [B, C, H/4, W/4]
  fb = torch::relu(decoder0->forward(fb));   // [B, C, H/2, W/2]
  torch::Tensor m = torch::sigmoid(decoder1->forward(fb));  // M [B, C, H, W]
  std::vector<torch::Tensor> scaled;
  for (const auto& ft : f) scaled.push_back(ft * (1 + m));
  torch::Tensor ftam = torch::cat(scaled, 1);  // [B, T*C, H, W]
  std::vector<torch::Tensor> out;
  for (size_t t = 0; t < T; ++t) {
    torch::Tensor h = torch::relu(heads3_[t]->forward(ftam));
    out.push_back(heads4_[t]->forward(h));
  }
  return out;
}

}  // namespace m3vit
