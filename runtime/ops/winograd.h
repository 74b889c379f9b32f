// The head's 3×3 convolutions in bf16 as Winograd F(4×4, 3×3) or F(2×2, 3×3) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", CVPR 2016), for `--precision bf16`.
//
// Why our own: oneDNN 2.6 has Winograd only for fp32 (jit_wino_4x3), and its bf16 direct conv
// computes all 9 multiply-adds per output, so in bf16 the head was slower than the fp32 Winograd head.
// F(m×m, 3×3) computes an m×m output tile from an α×α input tile, α = m + 2, with α² multiplies
// instead of 9m² (F(2×2): 16 for 36, 2.25× fewer; F(4×4): 36 for 144, 4× fewer), as α² independent
// matrix products, one per position α of the transformed tile:
//   V_α [tiles, cin]  = (Bᵀ d B)_α      input transform, per α×α input tile d (fp32, then rounded to bf16)
//   U_α [cin, cout]   = (G g Gᵀ)_α      weight transform, once at pack time (double, then bf16)
//   M_α [tiles, cout] = V_α · U_α       one bf16 oneDNN matmul per α (fp32 accumulation)
//   y   [m×m]         = Aᵀ M A + bias   output transform, then ReLU, into the blocked fp32 output
// F(2×2): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
// Aᵀ = [1 1 1 0; 0 1 −1 −1]: its transforms only add and subtract, so bf16's 8-bit mantissa costs
// about what it costs the direct conv. F(4×4) (points 0, ±1, 2, −½; matrices in winograd.cpp) scales
// by up to 8 around the rounding of V and U: ~5-6× the direct conv's error, 1.5% of the largest
// output (tests/runtime/test_winograd.cpp), and 1.6-1.8× faster than F(2×2). The task metrics of
// trained models move by ≤ 0.13% (docs/BENCHMARKS.md "bf16 accuracy"), so F(4×4) is the default
// where the output is in whole 4×4 tiles; `--conv winograd-f2` keeps F(2×2).
//
// The input is fp32 (the upsampled band, runtime/pup_head.cpp) and is rounded once, after the
// transform. Tiles are processed in chunks small enough that V and M stay in cache; each OpenMP
// thread takes whole chunks (transform, α² matmuls on its own stream, output transform), so a call
// has one fork/join instead of one per step: on a busy machine every join waits for the slowest
// thread's time slice (measured: 6× slower with per-step parallel loops while other work ran).
// The matmul primitive is made once for a chunk; a partial last chunk runs on zeroed rows.
// Layouts: src [cin, in_h, w] and dst [cout, out_h, w] in nChw16c (runtime/ops/conv.h); padding 1
// left and right, pad_top / pad_bottom rows of zeros above and below (0 for a band with its halo).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/ops/dnnl_context.h"

namespace m3vit::rt {

// Where a Winograd conv writes its [cout, out_h, w] output: rows [row0, row0 + out_h) of a blocked
// map of map_rows rows (its own output: row0 0, map_rows out_h), fp32 or bf16 (rounded to nearest
// even). The head writes conv_1's and conv_2's int8 bands straight into the bf16 maps the next stage
// upsamples, and conv_3's bands in bf16 for a bf16 conv_4 (runtime/pup_head.h), with no fp32 band
// and copy between.
struct WinogradOut {
  void* data = nullptr;
  bool bf16 = false;
  int map_rows = 0, row0 = 0;
};

class WinogradBf16 {
 public:
  // Tiles per matmul, per thread at 256 channels. F(2×2): V 2 MiB, M 4 MiB. F(4×4) (16 outputs per
  // tile, 36 α): V 0.6 MiB, M 1.2 MiB; 32 tiles measured 5-15% faster than 16, 64 or 128 (one band
  // of conv_3, 2 threads).
  static constexpr int kMaxChunk = 256, kMaxChunk4 = 32;

  // F(m×m), m = tile (2 or 4), needs out_h and w multiples of m, and the channels multiples of 16.
  static bool supports(int cin, int cout, int out_h, int w, int tile = 2) {
    return (tile == 2 || tile == 4) && out_h % tile == 0 && w % tile == 0 && cin % 16 == 0 && cout % 16 == 0;
  }

  WinogradBf16() = default;
  WinogradBf16(DnnlContext& ctx, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom, bool relu,
               int tile = 2);

  // U: α² matrices [cin, cout] in bf16, each in the layout the matmul prefers, as one byte buffer.
  const dnnl::memory::desc& weights_desc() const { return w_desc_; }
  // g [cout, cin, 3, 3] fp32 (BatchNorm folded) -> U into dst (weights_desc()).
  void pack_to(const float* g, const dnnl::memory& dst, dnnl::stream& strm) const;
  // Bytes of the caller's scratch for run(): V, M and the matmul's scratchpad per thread, 64-byte aligned.
  size_t scratch_bytes() const { return per_thread_bytes_ * threads_; }
  // src fp32 blocked -> out = ReLU?(conv(src) + bias). bias [cout].
  void run(const float* src, const dnnl::memory& weights, const float* bias, const WinogradOut& out,
           void* scratch) const;

  int out_h() const { return out_h_; }
  int tile() const { return tile_; }

 private:
  // One chunk of tiles [t0, t0 + nt): V for its α² α (rows past nt zeroed), then y from M.
  void input_transform(const float* src, int t0, int nt, uint16_t* v) const;
  void output_transform(const float* m, const float* bias, int t0, int nt, const WinogradOut& out) const;

  DnnlContext* ctx_ = nullptr;
  int cin_ = 0, cout_ = 0, in_h_ = 0, w_ = 0, out_h_ = 0, pad_top_ = 0;
  bool relu_ = false;
  int tile_ = 2, alphas_ = 16;  // outputs per tile side (m), and α² = (m + 2)² matmuls
  int tiles_x_ = 0, tiles_ = 0, chunk_ = 0, threads_ = 1;
  dnnl::memory::desc w_desc_;  // α² × u_bytes_ bytes: U_α one after another
  dnnl::memory::desc u_desc_;  // one U_α [cin, cout] bf16, blocked as the matmul prefers
  dnnl::reorder pack_u_;       // fp32 [cin, cout] -> u_desc_
  size_t u_bytes_ = 0;
  dnnl::matmul prim_;          // M_α [chunk, cout] = V_α [chunk, cin] · U_α, run once per α
  mutable std::vector<dnnl::stream> streams_;  // one per thread (streams are not thread-safe)
  size_t v_plane_ = 0, m_plane_ = 0;  // elements between the α planes of V (bf16) and M (fp32)
  size_t m_off_ = 0, pad_off_ = 0, per_thread_bytes_ = 0;  // within one thread's scratch
  size_t pad_bytes_ = 0;
};

}  // namespace m3vit::rt
