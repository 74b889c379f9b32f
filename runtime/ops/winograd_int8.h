// The head's 3×3 convolutions in int8 as Winograd F(m×m, 3×3), m = 4 (the default where the output
// is in whole 4×4 tiles) or 2 (Lavin & Gray, CVPR 2016), for `--precision int8`
// (runtime/ops/winograd.h has the bf16 form and the transforms' definitions).
//
// Why: oneDNN 2.6's int8 direct conv does all 9 multiply-adds per output, and in int8 mode the head
// (the largest part of the multiply-adds) held the whole pass back. F(4×4) does 4× fewer, F(2×2)
// 2.25×, as α² = (m + 2)² independent matrix products per chunk of tiles, each an s8 × s8 oneDNN
// matmul (VNNI, s32 sums):
//   V_α [tiles, cin]  = (Bᵀ d B)_α   in fp32 from the fp32 band, then s8 with one step per α and tile,
//                                    sv_α[t] = max_ci |V_α[t, ci]| / 127 (dynamic: V's range depends on
//                                    α and on the tile, so one calibrated step for the input would waste
//                                    bits on most of them). A tile's V stays in a 36 KiB buffer until
//                                    its steps are known: only s8 leaves it.
//   U_α [cin, cout]   = (G g Gᵀ)_α   from the dequantised s8 weights (BatchNorm folded) in double,
//                                    then s8 with one scale per α and output channel, su_α[o]
//   M_α [tiles, cout] = V_α·U_α                      oneDNN s8 matmul, s32 sums as fp32
//   y   [m×m]         = Aᵀ (M_α × sv_α[t]·su_α[o]) A + bias, ReLU   fp32, into the blocked output
// Accuracy: two roundings more than the direct int8 conv (V per α, U re-quantised); F(4×4)'s
// transforms weigh them more (Bᵀ up to 2.5, Aᵀ up to 8): 5-7% of max|y| against 1.5-2% for F(2×2).
// tests/runtime/test_int8.cpp bounds both against a double conv.
// Layouts as WinogradBf16: src [cin, in_h, w] and dst [cout, out_h, w] nChw16c fp32, padding 1
// left/right, pad_top / pad_bottom rows of zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/winograd.h"

namespace m3vit::rt {

class WinogradInt8 {
 public:
  // Tiles per matmul. Per thread at 256 channels: F(2×2) V̂ 0.25 MiB s8, M 1 MiB fp32; F(4×4) (36 α)
  // V̂ 0.3 MiB, M 1.1 MiB; and one tile's fp32 V (16 or 36 KiB).
  static constexpr int kMaxChunk = 64, kMaxChunk4 = 32;

  // The same shapes as the bf16 form (runtime/ops/winograd.h).
  static bool supports(int cin, int cout, int out_h, int w, int tile = 2) {
    return WinogradBf16::supports(cin, cout, out_h, w, tile);
  }

  WinogradInt8() = default;
  WinogradInt8(DnnlContext& ctx, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom, bool relu,
               int tile = 2);
  int tile() const { return tile_; }

  // α² × (U_α s8 in the matmul's layout, then su_α [cout] fp32), one byte buffer.
  const dnnl::memory::desc& weights_desc() const { return w_desc_; }
  // q [cout, cin, 3, 3] s8 with per-output-channel scales w_scale [cout] (BatchNorm folded) -> dst.
  void pack_to(const int8_t* q, const float* w_scale, const dnnl::memory& dst, dnnl::stream& strm) const;
  size_t scratch_bytes() const { return per_thread_bytes_ * threads_; }
  using Out = WinogradOut;  // runtime/ops/winograd.h
  // src fp32 blocked -> out = ReLU?(conv(src) + bias). bias [cout].
  void run(const float* src, const dnnl::memory& weights, const float* bias, const Out& out, void* scratch) const;
  int out_h() const { return out_h_; }

 private:
  // V̂ (s8) of tiles [t0, t0 + nt) into vq [α², chunk, cin] and their steps into sv [α², chunk], one
  // tile at a time through buf (fp32 [α², cin]).
  void input_transform(const float* src, int t0, int nt, float* buf, int8_t* vq, float* sv) const;
  // y = Aᵀ (M_α × su_α[o] × sv_α[t]) A + bias (ReLU); u: the packed weights (su_α in each α's slice).
  void output_transform(const float* m, const uint8_t* u, const float* sv, const float* bias, int t0, int nt,
                        const Out& out) const;

  DnnlContext* ctx_ = nullptr;
  int cin_ = 0, cout_ = 0, in_h_ = 0, w_ = 0, out_h_ = 0, pad_top_ = 0;
  int tiles_x_ = 0, tiles_ = 0, chunk_ = 0, threads_ = 1;
  bool relu_ = false;
  int tile_ = 2, alphas_ = 16;  // outputs per tile side (m), and α² = (m + 2)² matmuls
  dnnl::memory::desc w_desc_, u_desc_;
  dnnl::reorder pack_u_;  // s8 [cin, cout] -> u_desc_ (oneDNN's s8-input compensation added)
  size_t u_bytes_ = 0, su_off_ = 0, alpha_bytes_ = 0;  // per α: U at 0, su at su_off_
  dnnl::matmul prim_;
  mutable std::vector<dnnl::stream> streams_;
  size_t v_plane_ = 0, m_plane_ = 0;  // elements between α planes of V̂ (s8) and M (fp32)
  size_t vq_off_ = 0, m_off_ = 0, sv_off_ = 0, pad_off_ = 0, per_thread_bytes_ = 0, pad_bytes_ = 0;
};

}  // namespace m3vit::rt
