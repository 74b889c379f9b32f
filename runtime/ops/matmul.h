// Linear layers on oneDNN matmul: y[M, out] = x[M, in] · Wᵀ + b, with the epilogue (GELU or a
// residual add) fused as a post-op so the output is written once. W is nn.Linear's [out, in].
//
// Two weight forms (style.md §6: create at load, execute at run):
// - packed: W reordered once into the layout the primitive prefers (format_tag::any), kept in a
//   PackedWeights. Used for every resident weight: dense layers, routers, resident experts.
// - plain: W bound per call as the row-major [out, in] rows of the model file (format "ba" of the
//   [in, out] operand). Used for streamed experts, whose bytes arrive in a buffer just before use.
// M is either fixed at plan time (the token count of every dense layer) or a oneDNN runtime
// dimension (DNNL_RUNTIME_DIM_VAL) for expert queues, whose length changes per expert and image:
// one primitive serves every queue length, so no primitive is built in the hot path.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

enum class Epilogue {
  none,
  gelu,      // exact erf GELU (nn.GELU default; spec §1.4)
  residual,  // y += x·Wᵀ + b (dst holds the residual stream; oneDNN sum post-op)
};

enum class WeightForm { packed, plain };

// A weight bound to one MatmulPlan: the reordered matrix (bf16 in bf16 mode) and the fp32 bias.
struct PackedWeights {
  dnnl::memory weights;
  dnnl::memory bias;  // empty when the layer has no bias
  size_t bytes() const;
};

class MatmulPlan {
 public:
  MatmulPlan() = default;
  // rows > 0: fixed M; rows == 0: runtime M (any value up to max_rows at run time).
  MatmulPlan(DnnlContext& ctx, int in, int out, bool has_bias, int rows, int max_rows, Epilogue epi,
             Precision prec, WeightForm form);

  // W [out, in] and b [out] (fp32, row-major) into this plan's packed layout. Only for packed plans.
  PackedWeights pack(const float* w, const float* b) const;

  // x: [rows, in] fp32, contiguous (converted to bf16 in the context's scratch in bf16 mode);
  // y: [rows, out] fp32, contiguous. rows must equal the fixed M, or be in [1, max_rows].
  void run(const float* x, int rows, const PackedWeights& w, float* y) const;
  // Plain form: w [out, in] in the plan's weight type (fp32, or bf16 as uint16_t bits), b [out] fp32.
  void run_plain(const float* x, int rows, const void* w, const float* b, float* y) const;

  int in() const { return in_; }
  int out() const { return out_; }
  Precision precision() const { return prec_; }
  // Bytes of one weight matrix in this plan's weight type (for streaming buffers).
  size_t weight_bytes() const { return static_cast<size_t>(in_) * out_ * act_size(prec_); }

 private:
  void execute(const float* x, int rows, const dnnl::memory& w, const dnnl::memory* b, float* y) const;

  DnnlContext* ctx_ = nullptr;
  int in_ = 0, out_ = 0, rows_ = 0, max_rows_ = 0;
  bool has_bias_ = false;
  Epilogue epi_ = Epilogue::none;
  Precision prec_ = Precision::fp32;
  WeightForm form_ = WeightForm::packed;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
};

}  // namespace m3vit::rt
