// Linear layers on oneDNN matmul: y[M, out] = x[M, in] · Wᵀ + b, with the epilogue (GELU or a
// residual add) fused as a post-op so the output is written once. W is nn.Linear's [out, in],
// reordered once at load into the layout the primitive prefers (format_tag::any) and kept in a
// PackedWeights (created at load, only executed at run: nothing is packed in the hot path).
//
// M is fixed per plan: every dense layer sees all N tokens. Expert queues have any length; they run
// in chunks through a MatmulBank, which holds one primitive per multiple of kRowStep rows up to a
// maximum; a chunk runs on the next multiple (the extra rows are computed and ignored). oneDNN's
// brgemm matmul picks the same packed weight layout for all of them (checked at construction), so
// one packed copy of an expert serves every chunk, and nothing is created in the hot path.
// Alternatives measured: oneDNN's runtime-M matmul falls back to jit gemm, which repacks the
// weights on every call; one primitive per row count costs ~80 KB of JIT code each (42 MB for two
// banks of 256).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

enum class Epilogue {
  none,
  gelu,      // exact erf GELU (nn.GELU default; vision_transformer_moe.py:156-172)
  residual,  // y += x·Wᵀ + b (dst holds the residual stream; oneDNN sum post-op)
};

// A weight bound to a plan's layout: the reordered matrix (bf16 in bf16 mode, s8 in int8 mode) and
// the fp32 bias.
struct PackedWeights {
  dnnl::memory weights;
  dnnl::memory bias;  // empty when the layer has no bias
  // int8 (runtime/ops/quantize.h): [1, out] fp32 s_x·s_w[n], applied by a post-op to the s32 sums,
  // and the input's step s_x (the float after the out scales, in the same buffer). The bias is then
  // held in units of the sums: b[n] / (s_x·s_w[n]) (bias_in_sum_units).
  dnnl::memory scale;
  const float* in_step = nullptr;
  dnnl::memory scale_owner;  // resident int8 weights: the buffer under `scale` and `in_step`
  // fp32 calibration (m3vit calibrate): the largest |input| seen is recorded here; null otherwise.
  float* observe = nullptr;
  size_t bytes() const;
};

// Per-thread buffers for plans run concurrently from several OpenMP threads (the experts).
struct MatmulScratch {
  std::vector<uint16_t> bf16;  // bf16 copy of x in bf16 mode (s8 in int8 mode)
  dnnl::memory pad;            // oneDNN's scratchpad (user-managed, one per thread)
  dnnl::stream strm;           // streams are not thread-safe: one per thread
};

// int8 plans add the bias to the s32 sums before the scales multiply them (runtime/ops/matmul.cpp):
// bias[n] /= scale[n] (scale = s_x·s_w[n], finite and > 0), for the stores that fill PackedWeights.
void bias_in_sum_units(float* bias, const float* scale, int out);

class MatmulPlan {
 public:
  MatmulPlan() = default;
  // user_scratchpad: the caller passes a MatmulScratch to run(), so that several threads can
  // execute the plan at once; otherwise oneDNN's own scratchpad and the context's bf16 buffer.
  MatmulPlan(DnnlContext& ctx, int in, int out, bool has_bias, int rows, Epilogue epi, Precision prec,
             bool user_scratchpad = false);

  // W [out, in] and b [out] (fp32, row-major) into this plan's packed layout.
  PackedWeights pack(const float* w, const float* b) const;
  // int8 plans: q [out, in] s8 with scales w_scale [out] (runtime/ops/quantize.h), b [out] fp32 or
  // null, and the input's step in_step (from calibration).
  PackedWeights pack_s8(const int8_t* q, const float* w_scale, const float* b, float in_step) const;
  // x: [rows, in] fp32 (converted to bf16 first in bf16 mode, quantised with w.in_step in int8 mode);
  // y: [rows, out] fp32. rows must be the plan's. scratch: required for a user-scratchpad plan.
  // valid_rows: the rows that hold data (an expert chunk's padding is not), for w.observe.
  void run(const float* x, const PackedWeights& w, float* y, MatmulScratch* scratch = nullptr,
           int valid_rows = -1) const;
  // The plain s8 [out, in] weights in file order ("ba" of the [in, out] operand), for streamed
  // int8 weights (reordered into weights_desc(), which carries oneDNN's s8-input compensation).
  dnnl::memory::desc plain_desc() const;

  // Sizes a thread's scratch for this (user-scratchpad) plan; keeps what other plans need.
  void reserve(MatmulScratch& s) const;

  int in() const { return in_; }
  int out() const { return out_; }
  int rows() const { return rows_; }
  Precision precision() const { return prec_; }
  const dnnl::memory::desc& weights_desc() const { return w_desc_; }
  size_t scratchpad_bytes() const { return pd_.scratchpad_desc().get_size(); }

 private:
  DnnlContext* ctx_ = nullptr;
  int in_ = 0, out_ = 0, rows_ = 0;
  bool has_bias_ = false, user_pad_ = false;
  Precision prec_ = Precision::fp32;
  dnnl::matmul::primitive_desc pd_;
  dnnl::memory::desc w_desc_;
  dnnl::matmul prim_;
  dnnl::memory src_m_, dst_m_;  // shared-scratchpad plans (one thread): handles rebound per call
};

// One plan per multiple of kRowStep rows up to max_rows, sharing one packed weight layout.
class MatmulBank {
 public:
  static constexpr int kRowStep = 8;
  // Rows a chunk of `rows` really computes: the next multiple of kRowStep (or the maximum).
  static int padded(int rows, int max_rows) { return std::min(max_rows, (rows + kRowStep - 1) / kRowStep * kRowStep); }

  MatmulBank() = default;
  MatmulBank(DnnlContext& ctx, int in, int out, int max_rows, Epilogue epi, Precision prec);
  PackedWeights pack(const float* w, const float* b) const { return plans_.back().pack(w, b); }
  PackedWeights pack_s8(const int8_t* q, const float* w_scale, const float* b, float in_step) const {
    return plans_.back().pack_s8(q, w_scale, b, in_step);
  }
  const MatmulPlan& plan() const { return plans_.back(); }
  // rows in [1, max_rows]. x and y must have room for padded(rows) rows: the rows past `rows` are
  // read (any values) and written (garbage). Thread-safe with one scratch per thread.
  void run(const float* x, int rows, const PackedWeights& w, float* y, MatmulScratch& scratch) const;
  // Sizes a thread's scratch for every plan of the bank.
  void reserve(MatmulScratch& s) const;

  int max_rows() const { return max_rows_; }
  const dnnl::memory::desc& weights_desc() const { return plans_.back().weights_desc(); }
  Precision precision() const { return plans_.empty() ? Precision::fp32 : plans_.back().precision(); }
  int in() const { return plans_.back().in(); }
  int out() const { return plans_.back().out(); }

 private:
  DnnlContext* ctx_ = nullptr;
  int max_rows_ = 0;
  std::vector<MatmulPlan> plans_;  // plans_[i] runs padded row count (i + 1)·kRowStep (last: max_rows)
};

}  // namespace m3vit::rt
