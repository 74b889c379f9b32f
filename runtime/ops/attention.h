// Multi-head self-attention core: softmax(q·kᵀ·hd^-0.5)·v per head, from the fused qkv projection.
// Authors: vision_transformer_moe.py:194-224 (`Attention`): qkv = Linear(d, 3d), split along the 3d axis
// as [3, heads, hd] (column s·d + h·hd + j), scale hd^-0.5, softmax over keys, heads concatenated.
//
// Computed per head for groups of kRowGroup query rows at a time, walking the keys in blocks of at most
// kBlockK with a running max and running sum per query row (the one-pass softmax of Edge-MoE's
// src/attention.cpp, in the form FlashAttention uses): for each key block, S = q·kᵀ,
// m' = max(m, rowmax S), P = 2^(S − m'), l = l·2^(m−m') + ΣP, O = O·2^(m−m') + P·v; at the end O / l.
// (Base 2: log2 e is folded, with hd^-0.5, into the packed keys.) Only a [kRowGroup, kBlockK] tile of
// scores ever exists, so a long sequence never materialises its N×N score matrix.
//
// Why rows in groups of 12 against whole key blocks: the register tiles are 6 query rows × 64 keys
// (q·kᵀ) and 6 rows × 64 output columns (P·v at hd 64; 12 rows × 32 at hd 32), 24 zmm accumulators
// each, so every 64-byte load of keys or values feeds 6-12 FMAs; the 12 rows of a group reuse each
// 64-key slice of packed keys (64 × hd floats = 8 KiB at hd 32) from L1. The keys are packed once per
// call into 16-key panels [N/16, hd, 16] (contiguous, one stream for the prefetcher); q and v are
// read in place from qkv. The q·kᵀ tiles also keep the rows' maxima, so the softmax is one pass.
//
// Precision::bf16 (the engine's bf16 mode, AVX512-BF16 CPUs): q, k, v and the probabilities P are
// rounded to bfloat16 and multiplied with vdpbf16ps (pairs of bf16 products summed into fp32); the
// scores, the running max and sum, the softmax and the output stay fp32. The keys are packed as
// [N/16, hd/2, 16, 2], the values as [N/2, hd, 2] (the pair a vdpbf16ps lane sums), q as [N, hd].
// Precision::int8 (int8 mode, AVX512-VNNI CPUs): q, k, v are quantised as the core runs (they have no
// weights to calibrate): q per query row to u8 (q̂ + 128), k per key and v per channel to s8, with
// steps max|x| / 127, and the probabilities to u8 (round(255·P), P ≤ 1 under the running max); the
// products run as vpdpbusd (u8 × s8, four pairs summed into s32), the +128 of q̂ taken back with each
// key's 128·Σk̂. Keys are packed [N/16, hd/4, 16, 4], values [N/4, hd, 4], q as [N, hd] u8. Scores,
// softmax and O stay fp32. Without VNNI the plan runs as bf16 (precision() says which).
// Error against exact attention: fp32 ~1e-6 of max|out|, bf16 ~3e-3, int8 ~1e-2
// (tests/runtime/test_attention.cpp).
//
// Speed (paper model: 1025 tokens, 12 heads of 32; 2-core Zen 5 that retires one 512-bit FMA or
// vdpbf16ps per cycle: 117 fp32 / 235 bf16 GFLOP/s per core): fp32 ~100 GFLOP/s per core (the
// softmax's 2^x is most of the rest), bf16 ~160; per block on 2 threads 8.9 and 5.2 ms, where the
// previous 64 queries × 256 keys kernels took 9.9 ms (docs/RUNTIME.md).
//
// The kernels use AVX-512 when the CPU has it (checked once) and hd is 16, 32 or 64; other CPUs and
// head sizes get portable C++ loops with the same arithmetic (bf16 rounding emulated).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

class AttentionPlan {
 public:
  static constexpr int kRowGroup = 12;  // query rows sharing one pass over a key block (2 register tiles)
  static constexpr int kBlockQ = 48;    // query rows per work item (4 groups): 264 items at N = 1025, 12 heads
  static constexpr int kBlockK = 384;   // most keys per score tile: [12, 384] fp32 = 18 KiB, in L1

  AttentionPlan() = default;
  AttentionPlan(int tokens, int heads, int head_dim, Precision prec = Precision::fp32);

  // qkv [N, 3d] -> out [N, d] (heads concatenated: column h·hd + j). work: work_floats() floats,
  // 64-byte aligned, any content (the packed keys and, in bf16 or portable mode, q or v copies).
  void run(const float* qkv, float* out, float* work);
  size_t work_floats() const { return static_cast<size_t>(heads_) * (key_floats() + value_floats()); }

  // Multiply-adds ×2 of q·kᵀ and P·v: 4·N²·d.
  int64_t flops() const { return 4LL * n_ * n_ * heads_ * hd_; }
  // As constructed. bf16 runs the vdpbf16ps kernels on AVX512-BF16 CPUs and the portable loops
  // (rounding emulated, slow) elsewhere; the engine refuses bf16 mode on such CPUs anyway.
  Precision precision() const { return prec_; }
  // Test hook: false forces the portable kernels even on an AVX-512 CPU.
  bool use_simd = true;

 private:
  // One per OpenMP thread: scores [kRowGroup, bk], bf16 probabilities [kRowGroup, bk], running output
  // [kRowGroup, hd], max, sum and rescale factor [kRowGroup], the block's maxima per lane
  // [kRowGroup, 16], one query row (portable), each piece 64-byte aligned at the offsets below (the
  // same for every thread).
  struct Scratch {
    std::vector<float> buf;
    float* base() { return buf.data() + (-reinterpret_cast<uintptr_t>(buf.data()) / 4 & 15); }
  };
  size_t off_s_ = 0, off_p16_ = 0, off_o_ = 0, off_m_ = 0, off_l_ = 0, off_alpha_ = 0, off_vmax_ = 0, off_q_ = 0;
  size_t scratch_floats_ = 0;
  // The workspace, per head: a key region of key_floats() (fp32 panels [N/16, hd, 16]; bf16 panels
  // [N/16, hd/2, 16, 2] in its first half and bf16 q [N, hd] in the second; portable: k [N, hd]) and
  // a value region of value_floats() (bf16 pairs [N/2, hd, 2]; portable: v [N, hd]; fp32: unused).
  int64_t key_floats() const { return static_cast<int64_t>(npanel_) * 16 * hd_; }
  int64_t value_floats() const { return static_cast<int64_t>(n_ + 1) / 2 * 2 * hd_; }
  void pack(const float* qkv, float* work, bool simd) const;
  // int8 mode's quantised q, k, v of head h in the workspace (attention.cpp s8_view).
  struct S8View {
    int8_t* k8;
    float *kscale, *kcomp;
    uint8_t* q8;
    float* qscale;
    int8_t* v8;
    float* vscale;
  };
  S8View s8_view(const float* work, int h) const;
  // The s8 kernels' walk over the key blocks for rows r0..r0+nr of head h (m, l, O left in sb).
  void rows_s8(int h, int r0, int nr, const float* work, float* sb) const;
  // Rows r0..r0+nr (nr <= kRowGroup) of head h, with one thread's scratch sb.
  void rows(int h, int r0, int nr, const float* qkv, const float* work, float* sb, float* out, bool simd) const;

  int n_ = 0, heads_ = 0, hd_ = 0;
  int npanel_ = 0;  // 16-key panels: ceil(N/16)
  int bk_ = 0;      // keys per block: N split evenly into ceil(N/kBlockK) blocks, rounded up to 16
  int ldp16_ = 0;   // row stride of the bf16 probabilities: bk rounded up to 32
  Precision prec_ = Precision::fp32;
  bool cpu_simd_ = false;  // AVX-512 and hd in {16, 32, 64}
  bool cpu_bf16_ = false;  // and AVX512-BF16
  bool cpu_s8_ = false;    // and AVX512-VNNI (int8's kernels)
  std::vector<Scratch> scratch_;  // one per OpenMP thread
};

}  // namespace m3vit::rt
