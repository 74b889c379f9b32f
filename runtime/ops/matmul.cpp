// oneDNN matmul plans for every Linear of the runtime (runtime/ops/matmul.h). The primitive is the
// one oneDNN picks for (M, K, N, post-ops): brgemm for fixed M, jit gemm for runtime M.
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

MatmulPlan::MatmulPlan(DnnlContext& ctx, int in, int out, bool has_bias, int rows, int max_rows, Epilogue epi,
                       Precision prec, WeightForm form)
    : ctx_(&ctx), in_(in), out_(out), rows_(rows), max_rows_(rows > 0 ? rows : max_rows), has_bias_(has_bias),
      epi_(epi), prec_(prec), form_(form) {
  if (in <= 0 || out <= 0 || max_rows_ <= 0)
    throw ConfigError("matmul plan with empty shape [" + std::to_string(max_rows_) + ", " + std::to_string(in) +
                      "] x [" + std::to_string(in) + ", " + std::to_string(out) + "]");
  const memory::dim m = rows > 0 ? rows : DNNL_RUNTIME_DIM_VAL;
  const dt at = act_type(prec);
  memory::desc src_md({m, in}, at, tag::ab);
  // The [in, out] operand is Wᵀ: nn.Linear's row-major [out, in] is exactly format "ba" of [in, out].
  memory::desc w_md({in, out}, at, form == WeightForm::packed ? tag::any : tag::ba);
  memory::desc b_md({1, out}, dt::f32, tag::ab);
  memory::desc dst_md({m, out}, dt::f32, tag::ab);
  dnnl::post_ops po;
  if (epi == Epilogue::gelu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  if (epi == Epilogue::residual) po.append_sum(1.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  auto desc = has_bias ? dnnl::matmul::desc(src_md, w_md, b_md, dst_md) : dnnl::matmul::desc(src_md, w_md, dst_md);
  pd_ = dnnl::matmul::primitive_desc(desc, attr, ctx.eng);
  prim_ = dnnl::matmul(pd_);
  if (prec == Precision::bf16) ctx.reserve_bf16(static_cast<size_t>(max_rows_) * in);
}

PackedWeights MatmulPlan::pack(const float* w, const float* b) const {
  if (form_ != WeightForm::packed) throw Error("MatmulPlan::pack called on a plain-weight plan");
  PackedWeights p;
  memory user({{in_, out_}, dt::f32, tag::ba}, ctx_->eng, const_cast<float*>(w));
  p.weights = memory(pd_.weights_desc(), ctx_->eng);
  dnnl::reorder(user, p.weights).execute(ctx_->strm, user, p.weights);
  if (has_bias_) {
    p.bias = memory({{1, out_}, dt::f32, tag::ab}, ctx_->eng);
    std::copy(b, b + out_, static_cast<float*>(p.bias.get_data_handle()));
  }
  ctx_->strm.wait();
  return p;
}

void MatmulPlan::execute(const float* x, int rows, const memory& w, const memory* b, float* y) const {
  if (rows_ > 0 ? rows != rows_ : (rows < 1 || rows > max_rows_))
    throw ShapeError("matmul [" + std::to_string(in_) + " -> " + std::to_string(out_) + "] planned for " +
                     std::to_string(rows_ > 0 ? rows_ : max_rows_) + " rows, called with " + std::to_string(rows));
  const void* src = x;
  if (prec_ == Precision::bf16) {
    uint16_t* s = ctx_->bf16_scratch.data();
    f32_to_bf16(x, s, static_cast<int64_t>(rows) * in_);
    src = s;
  }
  memory src_m({{rows, in_}, act_type(prec_), tag::ab}, ctx_->eng, const_cast<void*>(src));
  memory dst_m({{rows, out_}, dt::f32, tag::ab}, ctx_->eng, y);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst_m}};
  if (b) args.emplace(DNNL_ARG_BIAS, *b);
  prim_.execute(ctx_->strm, args);
  ctx_->strm.wait();
}

void MatmulPlan::run(const float* x, int rows, const PackedWeights& w, float* y) const {
  execute(x, rows, w.weights, has_bias_ ? &w.bias : nullptr, y);
}

void MatmulPlan::run_plain(const float* x, int rows, const void* w, const float* b, float* y) const {
  if (form_ != WeightForm::plain) throw Error("MatmulPlan::run_plain called on a packed-weight plan");
  memory w_m({{in_, out_}, act_type(prec_), tag::ba}, ctx_->eng, const_cast<void*>(w));
  memory b_m;
  if (has_bias_) b_m = memory({{1, out_}, dt::f32, tag::ab}, ctx_->eng, const_cast<float*>(b));
  execute(x, rows, w_m, has_bias_ ? &b_m : nullptr, y);
}

}  // namespace m3vit::rt
