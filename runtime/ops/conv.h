// Convolutions of the task head on oneDNN: 3×3 (stride 1, padding 1 left/right, explicit top/bottom
// padding) and 1×1, with ReLU fused as a post-op. BatchNorm (eval mode) is folded into the weights
// and bias once at load (fold_batchnorm), so a head stage is one primitive: conv → (BN) → ReLU.
//
// Activations are oneDNN's channel-blocked layout nChw16c: [ceil(C/16)][H][W][16], channels padded
// to a multiple of 16 with zeros. In this layout oneDNN has a Winograd F(4×4, 3×3) kernel for fp32
// (jit_wino_4x3), which computes a 3×3 conv with about a third of the multiplies of the direct
// convolution: on this machine 2.7× faster than the direct brgemm conv, with the same error against
// a double reference (~1e-6 relative; tests/runtime/test_ops.cpp). Its price is memory: the
// transformed weights take 4× the 3×3 weights (6×6 tiles), 160 MB more for the five PASCAL heads,
// and it needs a large scratchpad (up to 54 MB, shared by all plans through the workspace). fp32 3×3
// plans use it when asked and oneDNN offers it for the shape, and fall back to the direct conv
// otherwise. oneDNN 2.6 has no bf16 Winograd: bf16 3×3 plans asked for Winograd run our F(2×2, 3×3)
// (runtime/ops/winograd.h), which takes an fp32 input and rounds after its transform; otherwise they
// are oneDNN's direct conv on bf16 input. A plan's input may be a band of rows that carries its own
// halo (top/bottom padding 0), which lets the head run its large maps in bands (runtime/pup_head.cpp).
#pragma once

#include <memory>
#include <vector>

#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/winograd.h"
#include "runtime/ops/winograd_int8.h"

namespace m3vit::rt {

// Conv weights [out, in, kh, kw] and bias [out] with an eval-mode BatchNorm folded in:
// W' = W·γ/√(var+eps), b' = (b − mean)·γ/√(var+eps) + β (per output channel).
void fold_batchnorm(std::vector<float>& w, std::vector<float>& b, int out_ch, const float* gamma, const float* beta,
                    const float* mean, const float* var, double eps);
// The same on raw buffers: w holds out_ch × per_out values.
void fold_batchnorm(float* w, size_t per_out, float* b, int out_ch, const float* gamma, const float* beta,
                    const float* mean, const float* var, double eps);

// Channels padded to the 16 of the blocked layout.
inline int padded_channels(int c) { return (c + 15) / 16 * 16; }
// Floats of a [c, h, w] map in nChw16c.
inline size_t blocked_floats(int c, int h, int w) { return static_cast<size_t>(padded_channels(c)) * h * w; }

struct PackedConv {
  dnnl::memory weights;
  dnnl::memory bias;
  // int8 (runtime/ops/quantize.h): [1, cout, 1, 1] fp32 s_x·s_w[o] and the input's step s_x (the
  // float after them); scale_owner holds the buffer of resident weights. observe: fp32 calibration.
  dnnl::memory scale;
  const float* in_step = nullptr;
  dnnl::memory scale_owner;
  float* observe = nullptr;
  size_t bytes() const {
    return weights ? weights.get_desc().get_size() + bias.get_desc().get_size() +
                         (scale ? scale.get_desc().get_size() + 4 : 0)
                   : 0;
  }
};

class ConvPlan {
 public:
  ConvPlan() = default;
  // kernel 3: src [cin, in_h, w] nChw16c in the plan's input type (src_type()); dst [cout, out_h, w] nChw16c
  // fp32, out_h = in_h + pad_top + pad_bottom − 2. kernel 1: no padding, out_h = in_h. (Both ends
  // blocked: a blocked-to-channels-last 1×1 conv is a reference loop in oneDNN 2.6.)
  // bf16 and int8 Winograd plans are F(winograd_tile × winograd_tile, 3×3) (runtime/ops/winograd.h,
  // winograd_int8.h), 4 or 2: F(4×4) where the output is in whole 4×4 tiles, else F(2×2).
  // int8 plans (oneDNN's int8 direct conv, brgconv on VNNI) take the fp32 blocked input too: run()
  // quantises it to 8 bits channels-last (the layout oneDNN's int8 convs take; with blocked input it
  // offers only a reference kernel), runs the conv into fp32 channels-last and reorders that to the
  // blocked output. input_nonneg: the input is ≥ 0 (after ReLU), so it is quantised to u8 (8 bits of
  // range instead of 7); otherwise s8.
  ConvPlan(DnnlContext& ctx, int kernel, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom, bool relu,
           Precision prec, bool winograd = false, bool input_nonneg = false, int winograd_tile = 4);
  // w [cout, cin, k, k] and b [cout], fp32 (BN already folded).
  PackedConv pack(const float* w, const float* b) const;
  // int8 plans: q [cout, cin, k, k] s8 with per-output-channel scales w_scale [cout] (BN folded into
  // them), b [cout] fp32, the input's step in_step.
  PackedConv pack_s8(const int8_t* q, const float* w_scale, const float* b, float in_step) const;
  // The same into a streamed slot: q reordered into `dst` (weights_desc()); w_scale as for pack_s8
  // (the int8 Winograd transforms the dequantised weights).
  void pack_s8_weights(const int8_t* q, const float* w_scale, const dnnl::memory& dst, dnnl::stream& strm) const;
  // True for an int8 plan whose input is quantised to u8.
  bool input_u8() const { return in_u8_; }
  // Only the weights, into dst (weights_desc(); e.g. a streamed slot), on strm.
  void pack_weights(const float* w, const dnnl::memory& dst, dnnl::stream& strm) const;
  // scratch: scratchpad_bytes() of 64-byte aligned memory (the caller's workspace).
  void run(const void* src, const PackedConv& w, float* dst, void* scratch) const;
  // bf16 and int8 Winograd plans (writes_bf16_maps()): the output into rows [row0, row0 + out_h) of a
  // blocked bf16 map of map_rows rows, rounded to nearest even as it leaves the output transform.
  bool writes_bf16_maps() const { return wino_ != nullptr || wino8_ != nullptr; }
  void run_into_map(const void* src, const PackedConv& w, uint16_t* map, int map_rows, int row0, void* scratch) const;
  size_t scratchpad_bytes() const {
    return wino_ ? wino_->scratch_bytes() : wino8_ ? wino8_->scratch_bytes() : pad_off_ + pd_.scratchpad_desc().get_size();
  }
  // The input's data type: fp32 for fp32 plans, the bf16 Winograd and int8 plans, bf16 for bf16
  // direct plans.
  dnnl::memory::data_type src_type() const { return src_type_; }
  size_t src_elem_bytes() const { return src_type_ == dnnl::memory::data_type::bf16 ? 2 : 4; }

  int out_h() const { return out_h_; }
  int cin() const { return cin_; }
  int cout() const { return cout_; }
  int kernel() const { return k_; }
  dnnl::memory::desc weights_desc() const {
    return wino_ ? wino_->weights_desc() : wino8_ ? wino8_->weights_desc() : pd_.weights_desc();
  }
  bool winograd() const { return winograd_; }
  // Our bf16 or int8 Winograd's m of F(m×m) (4 or 2); 0 for other plans.
  int winograd_tile() const { return wino_ ? wino_->tile() : wino8_ ? wino8_->tile() : 0; }
  Precision precision() const { return prec_; }

 private:
  DnnlContext* ctx_ = nullptr;
  int k_ = 3, cin_ = 0, cout_ = 0, in_h_ = 0, w_ = 0, out_h_ = 0;
  bool winograd_ = false;
  Precision prec_ = Precision::fp32;
  bool in_u8_ = false;
  // int8: the scratch holds the quantised input at 0, the fp32 channels-last output at out_off_,
  // oneDNN's scratchpad at pad_off_ (0 for other plans); to_blocked_ moves the output to nChw16c.
  size_t out_off_ = 0, pad_off_ = 0;
  dnnl::reorder to_blocked_;
  dnnl::memory out_nhwc_m_, out_m_;
  dnnl::memory::data_type src_type_ = dnnl::memory::data_type::f32;
  std::shared_ptr<const WinogradBf16> wino_;  // set for bf16 Winograd plans (then pd_ and prim_ are empty)
  std::shared_ptr<const WinogradInt8> wino8_;  // set for int8 Winograd plans (likewise)
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward prim_;
  dnnl::reorder pack_;  // fp32 oihw weights -> pd_'s layout
  dnnl::memory src_m_, dst_m_, pad_m_;  // descriptors fixed at plan time; data handles set per call
};

}  // namespace m3vit::rt
