// The experts' two matmuls on their token queues, forward and backward written out (a custom autograd
// function), so that the E experts run side by side: one expert per thread at a time, each matmul a
// single-threaded BLAS call on that expert's rows only.
//
// Why not autograd on torch ops: libtorch's batched matmul (baddbmm) is one BLAS call per expert,
// each split over the threads, on queues padded to the longest. On the small blocks of a MoE layer
// (tiny_synthetic: 8 experts × [~75, 192]·[192, 384]) a split gemm runs at about half the speed of
// the dense MLP's large one, and the padding adds ~15% (docs/TRAINING.md, "Training speed"). Whole
// gemms per thread, no padding, and weight gradients written once in place are what this buys.
//
// Shapes (expert e owns rows off_e .. off_e + count[e] of xs, the queues one after another):
//   xs [Σ count, d], w1 [E, hid, d], b1 [E, hid], w2 [E, d, hid], b2 [E, d] -> y [Σ count, d]
//   y_e = GELU(x_e · w1_eᵀ + b1_e) · w2_eᵀ + b2_e                 (exact erf GELU, nn.GELU's default)
// Backward (dy_e the rows of the output gradient):
//   dw2_e = dy_eᵀ · h_e, db2_e = Σ dy_e, dh = dy_e · w2_e, dpre = dh ⊙ GELU'(pre_e),
//   dw1_e = dpreᵀ · x_e, db1_e = Σ dpre, dx_e = dpre · w1_e
// An expert with no rows gets zero weight gradients, as autograd would give it.
#pragma once

#include <vector>

#include "common/pch/torch_pch.h"

namespace m3vit {

torch::Tensor expert_mlp(const torch::Tensor& xs, const std::vector<int64_t>& count, const torch::Tensor& w1,
                         const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2);

}  // namespace m3vit
