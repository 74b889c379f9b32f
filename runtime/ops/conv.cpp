// oneDNN convolution plans for the task head (runtime/ops/conv.h) and the BatchNorm folding.
// The head's convs are `nn.Conv2d(k=3, padding=1)` + SyncBN + ReLU and a 1×1 conv_4
// (vit_up_head.py:126-129, 197-219).
#include "runtime/ops/conv.h"

#include <cmath>

#include "common/errors.h"
#include "runtime/ops/quantize.h"

namespace m3vit::rt {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

void fold_batchnorm(std::vector<float>& w, std::vector<float>& b, int out_ch, const float* gamma, const float* beta,
                    const float* mean, const float* var, double eps) {
  fold_batchnorm(w.data(), w.size() / static_cast<size_t>(out_ch), b.data(), out_ch, gamma, beta, mean, var, eps);
}

void fold_batchnorm(float* w, size_t per_out, float* b, int out_ch, const float* gamma, const float* beta,
                    const float* mean, const float* var, double eps) {
  for (int o = 0; o < out_ch; ++o) {
    // Folded in double so the fold itself adds no rounding beyond the final fp32 store.
    const double s = static_cast<double>(gamma[o]) / std::sqrt(static_cast<double>(var[o]) + eps);
    for (size_t i = 0; i < per_out; ++i) w[o * per_out + i] = static_cast<float>(w[o * per_out + i] * s);
    b[o] = static_cast<float>((static_cast<double>(b[o]) - mean[o]) * s + beta[o]);
  }
}

namespace {
// Post-op argument ids of an int8 plan: × scales, + bias (runtime/ops/matmul.cpp does the same).
constexpr int kArgScale = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;
constexpr int kArgBias = DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1;
}  // namespace

ConvPlan::ConvPlan(DnnlContext& ctx, int kernel, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom,
                   bool relu, Precision prec, bool winograd, bool input_nonneg, int winograd_tile)
    : ctx_(&ctx), k_(kernel), cin_(cin), cout_(cout), in_h_(in_h), w_(w),
      out_h_(kernel == 3 ? in_h + pad_top + pad_bottom - 2 : in_h), prec_(prec) {
  if ((kernel != 1 && kernel != 3) || out_h_ < 1 || w < 1 || cin < 1 || cout < 1)
    throw ConfigError("conv plan with an unsupported kernel or an empty output");
  const int pw = kernel == 3 ? 1 : 0, pt = kernel == 3 ? pad_top : 0, pb = kernel == 3 ? pad_bottom : 0;
  // F(4×4) where the output is in whole 4×4 tiles, else F(2×2) (the rule of both forms).
  if (winograd_tile == 4 && !WinogradBf16::supports(cin, cout, out_h_, w, 4)) winograd_tile = 2;
  if (winograd && kernel == 3 && prec == Precision::bf16 && cpu_has_bf16() &&
      WinogradBf16::supports(cin, cout, out_h_, w, winograd_tile)) {
    wino_ = std::make_shared<const WinogradBf16>(ctx, cin, cout, in_h, w, pt, pb, relu, winograd_tile);
    winograd_ = true;
    src_type_ = dt::f32;  // the transform reads fp32 and rounds once, after it
    return;
  }
  if (winograd && kernel == 3 && prec == Precision::int8 && WinogradInt8::supports(cin, cout, out_h_, w, winograd_tile)) {
    wino8_ = std::make_shared<const WinogradInt8>(ctx, cin, cout, in_h, w, pt, pb, relu, winograd_tile);
    winograd_ = true;
    in_u8_ = input_nonneg;
    src_type_ = dt::f32;  // the transform reads fp32 and quantises V per α
    return;
  }
  if (prec == Precision::int8) {
    // [1, cin, in_h, w] u8/s8 nhwc * s8 -> [1, cout, out_h, w] f32 nhwc, then × s_x·s_w[o] + b[o]
    // (binary post-ops with per-call operands, as in runtime/ops/matmul.cpp) and ReLU.
    in_u8_ = input_nonneg;
    src_type_ = dt::f32;
    memory::desc q_md({1, cin, in_h, w}, in_u8_ ? dt::u8 : dt::s8, tag::nhwc);
    memory::desc o_md({1, cout, out_h_, w}, dt::f32, tag::nhwc);
    memory::desc v_md({1, cout, 1, 1}, dt::f32, tag::nchw);
    dnnl::post_ops po;
    po.append_binary(dnnl::algorithm::binary_mul, v_md);
    po.append_binary(dnnl::algorithm::binary_add, v_md);
    if (relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, q_md,
                                      memory::desc({cout, cin, kernel, kernel}, dt::s8, tag::any), o_md, {1, 1},
                                      {pt, pw}, {pb, pw});
    pd_ = dnnl::convolution_forward::primitive_desc(d, attr, ctx.eng);
    prim_ = dnnl::convolution_forward(pd_);
    out_off_ = align64(static_cast<size_t>(cin) * in_h * w);
    pad_off_ = out_off_ + align64(o_md.get_size());
    src_m_ = memory(q_md, ctx.eng, nullptr);
    out_nhwc_m_ = memory(o_md, ctx.eng, nullptr);
    const memory::desc blocked({1, cout, out_h_, w}, dt::f32, tag::nChw16c);
    out_m_ = memory(blocked, ctx.eng, nullptr);
    to_blocked_ = dnnl::reorder(dnnl::reorder::primitive_desc(ctx.eng, o_md, ctx.eng, blocked));
    pad_m_ = memory(pd_.scratchpad_desc(), ctx.eng, nullptr);
    pack_ = dnnl::reorder(dnnl::reorder::primitive_desc(
        ctx.eng, memory::desc({cout, cin, kernel, kernel}, dt::s8, tag::oihw), ctx.eng, pd_.weights_desc()));
    return;
  }
  src_type_ = act_type(prec);
  memory::desc src_md({1, cin, in_h, w}, act_type(prec), tag::nChw16c);
  memory::desc dst_md({1, cout, out_h_, w}, dt::f32, tag::nChw16c);
  memory::desc w_md({cout, cin, kernel, kernel}, act_type(prec), tag::any);
  memory::desc b_md({cout}, dt::f32, tag::a);
  dnnl::post_ops po;
  if (relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // one buffer for every plan: the workspace
  auto make = [&](dnnl::algorithm alg) {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, w_md, b_md, dst_md, {1, 1},
                                      {pt, pw}, {pb, pw});
    return dnnl::convolution_forward::primitive_desc(d, attr, ctx.eng);
  };
  if (winograd && kernel == 3 && prec == Precision::fp32) {
    try {
      pd_ = make(dnnl::algorithm::convolution_winograd);
      winograd_ = true;
    } catch (const dnnl::error&) {
      winograd_ = false;  // not offered for this shape or CPU: the direct conv below
    }
  }
  if (!winograd_) pd_ = make(dnnl::algorithm::convolution_direct);
  prim_ = dnnl::convolution_forward(pd_);
  src_m_ = memory(src_md, ctx.eng, nullptr);
  dst_m_ = memory(dst_md, ctx.eng, nullptr);
  pad_m_ = memory(pd_.scratchpad_desc(), ctx.eng, nullptr);
  // oihw fp32 -> the plan's weight layout, made once: streamed head convs are packed per image.
  pack_ = dnnl::reorder(dnnl::reorder::primitive_desc(
      ctx.eng, memory::desc({cout, cin, kernel, kernel}, dt::f32, tag::oihw), ctx.eng, pd_.weights_desc()));
}

PackedConv ConvPlan::pack(const float* w, const float* b) const {
  PackedConv p;
  p.weights = memory(weights_desc(), ctx_->eng);
  pack_weights(w, p.weights, ctx_->strm);
  p.bias = memory({{cout_}, dt::f32, tag::a}, ctx_->eng);
  std::copy(b, b + cout_, static_cast<float*>(p.bias.get_data_handle()));
  return p;
}

PackedConv ConvPlan::pack_s8(const int8_t* q, const float* w_scale, const float* b, float in_step) const {
  if (prec_ != Precision::int8) throw Error("pack_s8 on a conv plan that is not int8");
  PackedConv p;
  p.weights = memory(weights_desc(), ctx_->eng);
  pack_s8_weights(q, w_scale, p.weights, ctx_->strm);
  p.bias = memory({{1, cout_, 1, 1}, dt::f32, tag::nchw}, ctx_->eng);
  std::copy(b, b + cout_, static_cast<float*>(p.bias.get_data_handle()));
  p.scale_owner = memory({{cout_ + 1}, dt::f32, tag::a}, ctx_->eng);
  float* s = static_cast<float*>(p.scale_owner.get_data_handle());
  for (int o = 0; o < cout_; ++o) s[o] = in_step * w_scale[o];
  s[cout_] = in_step;
  p.scale = memory({{1, cout_, 1, 1}, dt::f32, tag::nchw}, ctx_->eng, s);
  p.in_step = s + cout_;
  return p;
}

void ConvPlan::pack_s8_weights(const int8_t* q, const float* w_scale, const memory& dst, dnnl::stream& strm) const {
  if (wino8_) return wino8_->pack_to(q, w_scale, dst, strm);
  memory user({{cout_, cin_, k_, k_}, dt::s8, tag::oihw}, ctx_->eng, const_cast<int8_t*>(q));
  pack_.execute(strm, user, const_cast<memory&>(dst));
  strm.wait();
}

void ConvPlan::pack_weights(const float* w, const memory& dst, dnnl::stream& strm) const {
  if (wino_) return wino_->pack_to(w, dst, strm);
  memory user({{cout_, cin_, k_, k_}, dt::f32, tag::oihw}, ctx_->eng, const_cast<float*>(w));
  pack_.execute(strm, user, const_cast<memory&>(dst));
  strm.wait();
}

void ConvPlan::run_into_map(const void* src, const PackedConv& w, uint16_t* map, int map_rows, int row0,
                            void* scratch) const {
  const auto* x = static_cast<const float*>(src);
  const auto* b = static_cast<const float*>(w.bias.get_data_handle());
  if (wino8_) return wino8_->run(x, w.weights, b, {map, true, map_rows, row0}, scratch);
  if (wino_) return wino_->run(x, w.weights, b, {map, true, map_rows, row0}, scratch);
  throw Error("run_into_map on a conv plan that is not a bf16 or int8 Winograd");
}

void ConvPlan::run(const void* src, const PackedConv& w, float* dst, void* scratch) const {
  if (w.observe)  // fp32 calibration: the blocked fp32 input (its padded channels are zeros)
    observe_max(w.observe, absmax(static_cast<const float*>(src), static_cast<int64_t>(blocked_floats(cin_, in_h_, w_))));
  if (wino8_)  // V's steps are measured per tile: the calibrated input step is not used
    return wino8_->run(static_cast<const float*>(src), w.weights, static_cast<const float*>(w.bias.get_data_handle()),
                       {dst, false, out_h_, 0}, scratch);
  if (prec_ == Precision::int8) {
    if (!w.in_step || !w.scale) throw Error("int8 conv run with weights that are not int8");
    uint8_t* base = static_cast<uint8_t*>(scratch);
    quantize_blocked_to_nhwc(static_cast<const float*>(src), cin_, in_h_, w_, *w.in_step, in_u8_, base);
    src_m_.set_data_handle(base);
    out_nhwc_m_.set_data_handle(base + out_off_);
    pad_m_.set_data_handle(base + pad_off_);
    prim_.execute(ctx_->strm, {{DNNL_ARG_SRC, src_m_},
                               {DNNL_ARG_WEIGHTS, w.weights},
                               {DNNL_ARG_DST, out_nhwc_m_},
                               {kArgScale, w.scale},
                               {kArgBias, w.bias},
                               {DNNL_ARG_SCRATCHPAD, pad_m_}});
    out_m_.set_data_handle(dst);
    memory from = out_nhwc_m_, to = out_m_;  // shallow handles: the reorder takes non-const ones
    to_blocked_.execute(ctx_->strm, from, to);
    ctx_->strm.wait();
    return;
  }
  if (wino_)
    return wino_->run(static_cast<const float*>(src), w.weights, static_cast<const float*>(w.bias.get_data_handle()),
                      {dst, false, out_h_, 0}, scratch);
  // memory objects are shallow handles: rebinding the data handle keeps the plan's descriptor.
  src_m_.set_data_handle(const_cast<void*>(src));
  dst_m_.set_data_handle(dst);
  pad_m_.set_data_handle(scratch);
  prim_.execute(ctx_->strm, {{DNNL_ARG_SRC, src_m_},
                             {DNNL_ARG_WEIGHTS, w.weights},
                             {DNNL_ARG_BIAS, w.bias},
                             {DNNL_ARG_DST, dst_m_},
                             {DNNL_ARG_SCRATCHPAD, pad_m_}});
  ctx_->strm.wait();
}

}  // namespace m3vit::rt
