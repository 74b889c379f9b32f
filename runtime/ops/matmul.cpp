// oneDNN matmul plans for every Linear of the runtime (runtime/ops/matmul.h).
#include "runtime/ops/matmul.h"

#include "common/errors.h"
#include "runtime/ops/bf16.h"

namespace m3vit::rt {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

size_t PackedWeights::bytes() const {
  size_t n = weights ? weights.get_desc().get_size() : 0;
  if (bias) n += bias.get_desc().get_size();
  return n;
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
    if (prec == Precision::bf16) ctx.reserve_bf16(static_cast<size_t>(rows) * in);
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

void MatmulPlan::run(const float* x, const PackedWeights& w, float* y, MatmulScratch* scratch) const {
  if (user_pad_ && !scratch) throw Error("matmul plan with a user scratchpad run without one");
  const void* src = x;
  if (prec_ == Precision::bf16) {
    uint16_t* s = scratch ? scratch->bf16.data() : ctx_->bf16_scratch.data();
    f32_to_bf16(x, s, static_cast<int64_t>(rows_) * in_);
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
  grow_scratch(s, ctx_->eng, scratchpad_bytes(), prec_ == Precision::bf16 ? static_cast<size_t>(rows_) * in_ : 0);
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
  grow_scratch(s, ctx_->eng, pad, precision() == Precision::bf16 ? static_cast<size_t>(max_rows_) * in() : 0);
}

void MatmulBank::run(const float* x, int rows, const PackedWeights& w, float* y, MatmulScratch& scratch) const {
  if (rows < 1 || rows > max_rows_)
    throw ShapeError("expert matmul called with " + std::to_string(rows) + " rows (1.." + std::to_string(max_rows_) + ")");
  plans_[(padded(rows, max_rows_) - 1) / kRowStep].run(x, w, y, &scratch);
}

}  // namespace m3vit::rt
