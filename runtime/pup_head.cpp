// PUP head on oneDNN, banded (runtime/pup_head.h).
#include "runtime/pup_head.h"

#include <algorithm>

#include "common/errors.h"
#include "runtime/model_file.h"
#include "runtime/ops/bf16.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/resize.h"

namespace m3vit::rt {

namespace {
// SyncBatchNorm's eps (mmcv default, spec §3.1); not part of ModelConfig.
constexpr double kBnEps = 1e-5;

// Largest divisor of rows whose band keeps at most kBandPixels output pixels (at least one row), so
// every band has the same height and one conv primitive serves them all.
int band_rows(int rows, int width) {
  const int cap = std::max(1, PupHead::kBandPixels / std::max(1, width));
  for (int r = std::min(rows, cap); r > 1; --r)
    if (rows % r == 0) return r;
  return 1;
}
}  // namespace

size_t HeadWeights::bytes() const {
  size_t n = (norm_w.size() + norm_b.size()) * 4 + conv4.bytes();
  for (const auto& c : conv) n += c.bytes();
  return n;
}

PupHead::PupHead(DnnlContext& ctx, const ModelConfig& cfg, Precision prec)
    : ctx_(&ctx), prec_(prec), h_(cfg.grid_h()), w_(cfg.grid_w()), d_(cfg.embed_dim), c_(cfg.head_channels),
      img_h_(cfg.img_h), img_w_(cfg.img_w), ln_eps_(cfg.ln_eps) {
  conv0_ = ConvPlan(ctx, d_, c_, h_, w_, 1, 1, /*relu=*/true, prec);
  size_t band_in = 0;
  for (int s = 0; s < 3; ++s) {
    UpStage& st = up_[s];
    st.in_h = h_ << s;
    st.in_w = w_ << s;
    st.band = band_rows(2 * st.in_h, 2 * st.in_w);
    // The band buffer carries its halo rows (zeros at the map's top and bottom), so no vertical padding.
    st.plan = ConvPlan(ctx, c_, c_, st.band + 2, 2 * st.in_w, 0, 0, /*relu=*/true, prec);
    band_in = std::max(band_in, static_cast<size_t>(st.band + 2) * 2 * st.in_w * c_ * act_size(prec));
    map_[s].assign(static_cast<size_t>(h_ << s) * (w_ << s) * c_, 0.f);
  }
  band_in_.assign(band_in, 0);
  band_out_.assign(static_cast<size_t>(up_[2].band) * 2 * up_[2].in_w * c_, 0.f);
  ln_.assign(static_cast<size_t>(h_) * w_ * d_, 0.f);
  if (prec == Precision::bf16) ln_bf16_.assign(ln_.size(), 0);
  int cmax = 1;
  for (const auto& t : cfg.tasks) {
    cmax = std::max(cmax, t.out_channels);
    conv4_plan(t.out_channels);
  }
  c4_.assign(static_cast<size_t>(8 * h_) * (8 * w_) * cmax, 0.f);
  if (16 * h_ != img_h_ || 16 * w_ != img_w_) resized_.assign(static_cast<size_t>(cmax) * (16 * h_) * (16 * w_), 0.f);
}

MatmulPlan& PupHead::conv4_plan(int out_channels) {
  auto it = conv4_.find(out_channels);
  if (it == conv4_.end()) {
    const int rows = up_[2].band * 2 * up_[2].in_w;  // pixels of one conv_3 band
    it = conv4_.emplace(out_channels, MatmulPlan(*ctx_, c_, out_channels, true, rows, Epilogue::none, prec_)).first;
  }
  return it->second;
}

HeadWeights PupHead::pack(const ModelFile& f, const std::string& task, int out_channels) {
  HeadWeights hw;
  hw.out_channels = out_channels;
  auto key = [&](const std::string& rest) { return head_key(task, rest); };
  const float* nw = f.data(key("norm.weight"));
  const float* nb = f.data(key("norm.bias"));
  hw.norm_w.assign(nw, nw + d_);
  hw.norm_b.assign(nb, nb + d_);
  for (int j = 0; j < 4; ++j) {
    const std::string cj = "conv_" + std::to_string(j) + ".", bj = "syncbn_fc_" + std::to_string(j) + ".";
    const int cin = j == 0 ? d_ : c_;
    const float* w = f.data(key(cj + "weight"));
    const float* b = f.data(key(cj + "bias"));
    std::vector<float> wf(w, w + static_cast<size_t>(c_) * cin * 9), bf(b, b + c_);
    fold_batchnorm(wf, bf, c_, f.data(key(bj + "weight")), f.data(key(bj + "bias")), f.data(key(bj + "running_mean")),
                   f.data(key(bj + "running_var")), kBnEps);
    hw.conv[j] = (j == 0 ? conv0_ : up_[j - 1].plan).pack(wf.data(), bf.data());
    f.release(key(cj + "weight"));
  }
  // conv_4.weight [C, c, 1, 1] is exactly a row-major [C, c] Linear weight.
  hw.conv4 = conv4_plan(out_channels).pack(f.data(key("conv_4.weight")), f.data(key("conv_4.bias")));
  return hw;
}

void PupHead::forward(const float* tokens, const HeadWeights& w, float* out) {
  const int C = w.out_channels;
  // Drop cls (quirk Q15 aside, vit_up_head.py:153-154), LayerNorm: [h·w, d] = nhwc [h, w, d].
  layer_norm(tokens + d_, ln_.data(), static_cast<int64_t>(h_) * w_, d_, w.norm_w.data(), w.norm_b.data(), ln_eps_);
  const void* src0 = ln_.data();
  if (prec_ == Precision::bf16) {
    f32_to_bf16(ln_.data(), ln_bf16_.data(), static_cast<int64_t>(ln_.size()));
    src0 = ln_bf16_.data();
  }
  conv0_.run(src0, w.conv[0], map_[0].data());  // [h, w, c]
  MatmulPlan& c4 = conv4_plan(C);
  for (int s = 0; s < 3; ++s) {
    const UpStage& st = up_[s];
    const int H = 2 * st.in_h, W = 2 * st.in_w;
    for (int r0 = 0; r0 < H; r0 += st.band) {
      // Rows r0-1 .. r0+band of the ×2 map (zeros outside it): the band's 3×3 input with halo.
      if (prec_ == Precision::bf16)
        upsample2x_rows_nhwc(map_[s].data(), st.in_h, st.in_w, c_, r0 - 1, r0 + st.band + 1,
                             reinterpret_cast<uint16_t*>(band_in_.data()));
      else
        upsample2x_rows_nhwc(map_[s].data(), st.in_h, st.in_w, c_, r0 - 1, r0 + st.band + 1,
                             reinterpret_cast<float*>(band_in_.data()));
      if (s < 2) {
        st.plan.run(band_in_.data(), w.conv[s + 1], map_[s + 1].data() + static_cast<int64_t>(r0) * W * c_);
      } else {
        st.plan.run(band_in_.data(), w.conv[3], band_out_.data());  // [band, W, c]
        c4.run(band_out_.data(), w.conv4, c4_.data() + static_cast<int64_t>(r0) * W * C);
      }
    }
  }
  // conv_4 output [8h, 8w, C] -> ×2 -> [C, 16h, 16w] (-> input size).
  const int H4 = 8 * h_, W4 = 8 * w_;
  if (resized_.empty()) {
    resize_nhwc_to_chw(c4_.data(), H4, W4, C, out, 2 * H4, 2 * W4);
  } else {
    resize_nhwc_to_chw(c4_.data(), H4, W4, C, resized_.data(), 2 * H4, 2 * W4);
    resize_chw(resized_.data(), C, 2 * H4, 2 * W4, out, img_h_, img_w_);
  }
}

int64_t PupHead::flops(int out_channels) const {
  int64_t f = conv0_.flops();
  for (int s = 0; s < 3; ++s) f += up_[s].plan.flops() * (2 * up_[s].in_h / up_[s].band);
  return f + 2LL * (8 * h_) * (8 * w_) * c_ * out_channels;
}

}  // namespace m3vit::rt
