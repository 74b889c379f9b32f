// 3×3 convolutions of the task head on oneDNN (stride 1, padding 1 left/right), channels-last (nhwc)
// activations, ReLU fused as a post-op. BatchNorm (eval mode) is folded into the weights and bias
// once at load (fold_batchnorm), so a head stage is one primitive: conv → (BN folded) → ReLU.
//
// Channels-last keeps a block of output rows contiguous in memory, which lets the head run its large
// maps in row bands (runtime/pup_head.cpp): the plan takes an input of in_h rows with explicit
// top/bottom padding (1/1 for a whole map, 0/0 for a band that carries its own halo rows).
// oneDNN picks its brgemm convolution for nhwc on AVX-512.
#pragma once

#include <vector>

#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

// Conv weights [out, in, kh, kw] and bias [out] with an eval-mode BatchNorm folded in:
// W' = W·γ/√(var+eps), b' = (b − mean)·γ/√(var+eps) + β (per output channel).
void fold_batchnorm(std::vector<float>& w, std::vector<float>& b, int out_ch, const float* gamma, const float* beta,
                    const float* mean, const float* var, double eps);

struct PackedConv {
  dnnl::memory weights;
  dnnl::memory bias;
  size_t bytes() const { return weights.get_desc().get_size() + bias.get_desc().get_size(); }
};

class ConvPlan {
 public:
  ConvPlan() = default;
  // src [in_h, w, cin] (act type of prec), dst [in_h + pad_top + pad_bottom - 2, w, cout] fp32.
  ConvPlan(DnnlContext& ctx, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom, bool relu,
           Precision prec);
  // w [cout, cin, 3, 3] and b [cout], fp32 (BN already folded).
  PackedConv pack(const float* w, const float* b) const;
  bool same_weight_layout(const ConvPlan& other) const { return pd_.weights_desc() == other.pd_.weights_desc(); }
  // src in the plan's activation type (fp32, or bf16 bits), dst fp32.
  void run(const void* src, const PackedConv& w, float* dst) const;

  int out_h() const { return out_h_; }
  int64_t flops() const { return 2LL * out_h_ * w_ * cout_ * cin_ * 9; }

 private:
  DnnlContext* ctx_ = nullptr;
  int cin_ = 0, cout_ = 0, in_h_ = 0, w_ = 0, out_h_ = 0;
  Precision prec_ = Precision::fp32;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward prim_;
  dnnl::memory src_m_, dst_m_;  // descriptors fixed at plan time; data handles set per call
};

}  // namespace m3vit::rt
