// Multi-head self-attention core: softmax(q·kᵀ·hd^-0.5)·v per head, from the fused qkv projection.
// Authors: vision_transformer_moe.py:194-224 (`Attention`): qkv = Linear(d, 3d), split along the 3d axis
// as [3, heads, hd] (column s·d + h·hd + j), scale hd^-0.5, softmax over keys, heads concatenated.
//
// Computed per head in blocks of queries × keys, with a running max and running sum per query row
// (the one-pass softmax of Edge-MoE's src/attention.cpp, in the form FlashAttention uses): for
// each key block, S = q·kᵀ, m' = max(m, rowmax S), P = exp(S − m'), l = l·e^(m−m') + ΣP,
// O = O·e^(m−m') + P·v; at the end O / l. (Computed in base 2, log2 e folded into the query scale.) Only a [block_q, block_k] tile of scores ever exists, so a
// long sequence never materialises its N×N score matrix.
// The kernels use AVX-512 when the CPU has it (checked once) and portable C++ otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace m3vit::rt {

class AttentionPlan {
 public:
  static constexpr int kBlockQ = 64;   // query rows per work item
  static constexpr int kBlockK = 256;  // keys per score tile: [64, 256] fp32 = 64 KiB, in L2

  AttentionPlan() = default;
  AttentionPlan(int tokens, int heads, int head_dim);

  // qkv [N, 3d] -> out [N, d] (heads concatenated: column h·hd + j). work: work_floats() floats,
  // 64-byte aligned, any content (the per-head q, kᵀ, v copies).
  void run(const float* qkv, float* out, float* work);
  size_t work_floats() const { return static_cast<size_t>(heads_) * hd_ * (2 * n_ + npad_); }

  // Multiply-adds ×2 of q·kᵀ and P·v: 4·N²·d.
  int64_t flops() const { return 4LL * n_ * n_ * heads_ * hd_; }
  // Test hook: false forces the portable kernels even on an AVX-512 CPU.
  bool use_simd = true;

 private:
  struct Scratch {
    std::vector<float> s;     // [kBlockQ, kBlockK] scores, then probabilities
    std::vector<float> o;     // [kBlockQ, hd] running output
    std::vector<float> m, l;  // [kBlockQ] running max and sum
  };
  void repack(const float* qkv, float* q, float* kt, float* v) const;
  void block(int h, int q0, int nq, const float* q, const float* kt, const float* v, Scratch& sc, float* out,
             bool simd) const;

  int n_ = 0, heads_ = 0, hd_ = 0, npad_ = 0;
  bool cpu_simd_ = false;
  // In the caller's workspace: q [H, N, hd] pre-scaled by hd^-0.5·log2(e), kᵀ [H, hd, npad] (zero beyond N),
  // v [H, N, hd].
  std::vector<Scratch> scratch_;  // one per OpenMP thread
};

}  // namespace m3vit::rt
