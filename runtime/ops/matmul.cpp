// oneDNN matmul plans for every Linear of the runtime (runtime/ops/matmul.h).
#include "runtime/ops/matmul.h"

#include "common/errors.h"
#include "runtime/ops/bf16.h"
#include "runtime/ops/quantize.h"

namespace m3vit::rt {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

size_t PackedWeights::bytes() const {
  size_t n = weights ? weights.get_desc().get_size() : 0;
  if (bias) n += bias.get_desc().get_size();
  if (scale) n += scale.get_desc().get_size() + 4;
  return n;
}

namespace {
// Post-op argument id of an int8 plan's scales: its first post-op multiplies by them
// (runtime/ops/quantize.h).
constexpr int kArgScale = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;
}  // namespace

void bias_in_sum_units(float* bias, const float* scale, int out) {
  for (int n = 0; n < out; ++n) bias[n] /= scale[n];
}

MatmulPlan::MatmulPlan(DnnlContext& ctx, int in, int out, bool has_bias, int rows, Epilogue epi, Precision prec,
                       bool user_scratchpad)
    : ctx_(&ctx), in_(in), out_(out), rows_(rows), has_bias_(has_bias), user_pad_(user_scratchpad), prec_(prec) {
  if (in <= 0 || out <= 0 || rows <= 0)
    throw ConfigError("matmul plan with an empty shape [" + std::to_string(rows) + ", " + std::to_string(in) +
                      "] x [" + std::to_string(in) + ", " + std::to_string(out) + "]");
  const dt at = act_type(prec);
  memory::desc src_md({rows, in}, at, tag::ab);
  memory::desc w_md({in, out}, at, tag::any);  // Wᵀ; its layout is oneDNN's choice
  memory::desc b_md({1, out}, dt::f32, tag::ab);
  memory::desc dst_md({rows, out}, dt::f32, tag::ab);
  dnnl::post_ops po;
  const bool int8 = prec == Precision::int8;
  if (int8) {
    // (s32 sums + b[n]/(s_x·s_w[n])) × (s_x·s_w[n]): oneDNN's bias, stored divided by the scale
    // (bias_in_sum_units), then the scales as a binary post-op whose operand is bound per call, so
    // one primitive serves every layer (and every expert) of this shape. oneDNN 2.6's output scales
    // would do the same, but given at run time (DNNL_RUNTIME_F32_VAL) they push the matmul off
    // brgemm onto its gemm fallback (measured 3.5× slower), and fixed at creation they would need a
    // primitive per layer and expert. The bias as a second post-op (binary_add) instead cost 8-18%
    // of the qkv matmul (measured side by side).
    po.append_binary(dnnl::algorithm::binary_mul, b_md);
  }
  if (epi == Epilogue::gelu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  if (epi == Epilogue::residual) po.append_sum(1.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  if (user_scratchpad) attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto desc = has_bias ? dnnl::matmul::desc(src_md, w_md, b_md, dst_md) : dnnl::matmul::desc(src_md, w_md, dst_md);
  pd_ = dnnl::matmul::primitive_desc(desc, attr, ctx.eng);
  w_desc_ = pd_.weights_desc();
  prim_ = dnnl::matmul(pd_);
  if (!user_scratchpad) {
    if (prec != Precision::fp32) ctx.reserve_bf16(static_cast<size_t>(rows) * in);
    src_m_ = memory(src_md, ctx.eng, nullptr);
    dst_m_ = memory(dst_md, ctx.eng, nullptr);
  }
}

PackedWeights MatmulPlan::pack(const float* w, const float* b) const {
  PackedWeights p;
  // nn.Linear's row-major [out, in] is exactly format "ba" of the [in, out] operand.
  memory user({{in_, out_}, dt::f32, tag::ba}, ctx_->eng, const_cast<float*>(w));
  p.weights = memory(w_desc_, ctx_->eng);
  dnnl::reorder(user, p.weights).execute(ctx_->strm, user, p.weights);
  if (has_bias_) {
    p.bias = memory({{1, out_}, dt::f32, tag::ab}, ctx_->eng);
    std::copy(b, b + out_, static_cast<float*>(p.bias.get_data_handle()));
  }
  ctx_->strm.wait();
  return p;
}

memory::desc MatmulPlan::plain_desc() const { return memory::desc({in_, out_}, dt::s8, tag::ba); }

PackedWeights MatmulPlan::pack_s8(const int8_t* q, const float* w_scale, const float* b, float in_step) const {
  if (prec_ != Precision::int8) throw Error("pack_s8 on a matmul plan that is not int8");
  PackedWeights p;
  memory user(plain_desc(), ctx_->eng, const_cast<int8_t*>(q));
  p.weights = memory(w_desc_, ctx_->eng);  // with oneDNN's compensation for s8 inputs
  dnnl::reorder(user, p.weights).execute(ctx_->strm, user, p.weights);
  p.scale_owner = memory({{out_ + 1}, dt::f32, tag::a}, ctx_->eng);
  float* s = static_cast<float*>(p.scale_owner.get_data_handle());
  for (int n = 0; n < out_; ++n) s[n] = in_step * w_scale[n];
  s[out_] = in_step;
  p.scale = memory({{1, out_}, dt::f32, tag::ab}, ctx_->eng, s);
  p.in_step = s + out_;
  if (has_bias_) {
    p.bias = memory({{1, out_}, dt::f32, tag::ab}, ctx_->eng);
    float* pb = static_cast<float*>(p.bias.get_data_handle());
    std::copy(b, b + out_, pb);
    bias_in_sum_units(pb, s, out_);
  }
  ctx_->strm.wait();
  return p;
}

void MatmulPlan::run(const float* x, const PackedWeights& w, float* y, MatmulScratch* scratch, int valid_rows) const {
  if (user_pad_ && !scratch) throw Error("matmul plan with a user scratchpad run without one");
  const int64_t n_in = static_cast<int64_t>(valid_rows < 0 ? rows_ : valid_rows) * in_;
  if (w.observe) observe_max(w.observe, absmax(x, n_in));
  const void* src = x;
  if (prec_ == Precision::bf16) {
    uint16_t* s = scratch ? scratch->bf16.data() : ctx_->bf16_scratch.data();
    f32_to_bf16(x, s, static_cast<int64_t>(rows_) * in_);
    src = s;
  } else if (prec_ == Precision::int8) {
    if (!w.in_step || !w.scale) throw Error("int8 matmul run with weights that are not int8");
    auto* s = reinterpret_cast<int8_t*>(scratch ? scratch->bf16.data() : ctx_->bf16_scratch.data());
    // A concurrent plan runs inside the experts' parallel region: quantise on this thread.
    quantize_s8(x, s, static_cast<int64_t>(rows_) * in_, *w.in_step, /*parallel=*/!user_pad_);
    src = s;
  }
  // A plan run by one thread rebinds its own memory handles; one run concurrently (an expert chunk)
  // wraps the buffers in fresh handles (a small allocation, no data copied).
  memory src_m = src_m_, dst_m = dst_m_;
  if (user_pad_) {
    src_m = memory({{rows_, in_}, act_type(prec_), tag::ab}, ctx_->eng, const_cast<void*>(src));
    dst_m = memory({{rows_, out_}, dt::f32, tag::ab}, ctx_->eng, y);
  } else {
    src_m.set_data_handle(const_cast<void*>(src));
    dst_m.set_data_handle(y);
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w.weights}, {DNNL_ARG_DST, dst_m}};
  if (prec_ == Precision::int8) args.emplace(kArgScale, w.scale);
  if (has_bias_) args.emplace(DNNL_ARG_BIAS, w.bias);
  if (user_pad_) args.emplace(DNNL_ARG_SCRATCHPAD, scratch->pad);
  // Inside an OpenMP parallel region (the experts) oneDNN runs the primitive on the calling thread.
  dnnl::stream& strm = user_pad_ ? scratch->strm : ctx_->strm;
  prim_.execute(strm, args);
  strm.wait();
}

namespace {
// Grows s to hold a scratchpad of pad bytes and bf16_elems bf16 inputs; never shrinks it, so one
// scratch serves every plan a thread runs.
void grow_scratch(MatmulScratch& s, const dnnl::engine& eng, size_t pad, size_t bf16_elems) {
  if (s.pad) pad = std::max(pad, s.pad.get_desc().get_size());
  s.pad = memory({{static_cast<memory::dim>(std::max<size_t>(pad, 1))}, dt::u8, tag::a}, eng);
  if (!s.strm) s.strm = dnnl::stream(eng);
  if (s.bf16.size() < bf16_elems) s.bf16.resize(bf16_elems);
}
}  // namespace

void MatmulPlan::reserve(MatmulScratch& s) const {
  grow_scratch(s, ctx_->eng, scratchpad_bytes(), prec_ != Precision::fp32 ? static_cast<size_t>(rows_) * in_ : 0);
}

MatmulBank::MatmulBank(DnnlContext& ctx, int in, int out, int max_rows, Epilogue epi, Precision prec)
    : ctx_(&ctx), max_rows_(max_rows) {
  for (int m = std::min(kRowStep, max_rows);; m = std::min(m + kRowStep, max_rows)) {
    plans_.emplace_back(ctx, in, out, true, m, epi, prec, /*user_scratchpad=*/true);
    if (!(plans_.back().weights_desc() == plans_.front().weights_desc()))
      throw Error("oneDNN chose a different weight layout for a " + std::to_string(m) + "-row expert matmul [" +
                  std::to_string(in) + " -> " + std::to_string(out) +
                  "] than for " + std::to_string(plans_.front().rows()) +
                  " rows; one packed copy per expert needs a common layout");
    if (m == max_rows) break;
  }
}

void MatmulBank::reserve(MatmulScratch& s) const {
  size_t pad = 0;
  for (const auto& p : plans_) pad = std::max(pad, p.scratchpad_bytes());
  grow_scratch(s, ctx_->eng, pad, precision() != Precision::fp32 ? static_cast<size_t>(max_rows_) * in() : 0);
}

void MatmulBank::run(const float* x, int rows, const PackedWeights& w, float* y, MatmulScratch& scratch) const {
  if (rows < 1 || rows > max_rows_)
    throw ShapeError("expert matmul called with " + std::to_string(rows) + " rows (1.." + std::to_string(max_rows_) + ")");
  plans_[(padded(rows, max_rows_) - 1) / kRowStep].run(x, w, y, &scratch, rows);
}

}  // namespace m3vit::rt
