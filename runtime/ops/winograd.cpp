// bf16 Winograd F(2×2, 3×3) for the head's 3×3 convs (runtime/ops/winograd.h).
// The transforms work on 16 channels at once (one zmm register = one nChw16c channel block), so the
// 4×4 tile arithmetic is plain adds and subtracts of vectors.
#include "runtime/ops/winograd.h"
#include "runtime/ops/winograd_int8.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/errors.h"
#include "runtime/ops/quantize.h"
#include "runtime/ops/simd.h"

namespace m3vit::rt {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

// Bᵀ applied to four vectors (a row or a column of the 4×4 tile): [d0 − d2, d1 + d2, d2 − d1, d1 − d3].
M3VIT_BF16_AVX512 inline void bt4(const __m512 d[4], __m512 o[4]) {
  o[0] = _mm512_sub_ps(d[0], d[2]);
  o[1] = _mm512_add_ps(d[1], d[2]);
  o[2] = _mm512_sub_ps(d[2], d[1]);
  o[3] = _mm512_sub_ps(d[1], d[3]);
}

// One channel block of one tile: d = the 4×4 input patch at (y0, x0) of src (zeros outside the map),
// V = Bᵀ d B into v[4·i + j] (α = 4·i + j), in registers.
M3VIT_BF16_AVX512 inline void transform_input(const float* src, int in_h, int w, int y0, int x0, __m512 v[16]) {
  __m512 d[4][4];
  for (int r = 0; r < 4; ++r) {
    const int y = y0 + r;
    for (int c = 0; c < 4; ++c) {
      const int x = x0 + c;
      d[r][c] = (y >= 0 && y < in_h && x >= 0 && x < w) ? _mm512_loadu_ps(src + (static_cast<int64_t>(y) * w + x) * 16)
                                                       : _mm512_setzero_ps();
    }
  }
  // Rows: t[i][c] = (Bᵀ d)[i][c], column by column.
  __m512 t[4][4];
  for (int c = 0; c < 4; ++c) {
    const __m512 col[4] = {d[0][c], d[1][c], d[2][c], d[3][c]};
    __m512 o[4];
    bt4(col, o);
    for (int i = 0; i < 4; ++i) t[i][c] = o[i];
  }
  // Columns: V[i][j] = (t B)[i][j].
  for (int i = 0; i < 4; ++i) bt4(t[i], v + 4 * i);
}

// V in bf16: v points at V[0][row][cb·16]; consecutive α are `stride` bf16 apart.
M3VIT_BF16_AVX512 void input_tile(const float* src, int in_h, int w, int y0, int x0, uint16_t* v, size_t stride) {
  __m512 t[16];
  transform_input(src, in_h, w, y0, x0, t);
  for (int a = 0; a < 16; ++a)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(v + a * stride), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(t[a])));
}

// V kept in fp32 (int8 mode quantises it per α once the chunk is done), with the running max |V_α|
// of each α's 16 lanes in amax[α].
M3VIT_BF16_AVX512 void input_tile_f32(const float* src, int in_h, int w, int y0, int x0, float* v, size_t stride,
                                      __m512* amax) {
  __m512 t[16];
  transform_input(src, in_h, w, y0, x0, t);
  for (int a = 0; a < 16; ++a) {
    _mm512_storeu_ps(v + a * stride, t[a]);
    amax[a] = _mm512_max_ps(amax[a], _mm512_abs_ps(t[a]));
  }
}

// One channel block's plane of a blocked output (16 values per pixel), fp32 or bf16 bits.
struct BlockedOut {
  void* data;
  bool bf16;
};

// Pixel i (its 16 channels) of a channel block's plane: fp32, or rounded to bf16 where int8 mode
// writes a map it keeps in bf16 (runtime/pup_head.h). The rounding is f32_to_bf16's (nearest even,
// NaN kept) in AVX-512F integer operations, not vcvtneps2bf16: int8 mode needs VNNI, not
// AVX512-BF16, and CPUs with the one and not the other exist (Cascade Lake).
M3VIT_BF16_AVX512 inline void store_px(BlockedOut dst, int64_t i, __m512 v) {
  if (!dst.bf16) return _mm512_storeu_ps(static_cast<float*>(dst.data) + i * 16, v);
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i h = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  h = _mm512_mask_mov_epi32(h, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<uint16_t*>(dst.data) + i * 16), _mm512_cvtepi32_epi16(h));
}

// Channel block ob's plane of `out`, at the output's row 0.
inline BlockedOut block_out(const WinogradOut& out, int ob, int w) {
  const int64_t at = (static_cast<int64_t>(ob) * out.map_rows + out.row0) * w * 16;
  return {out.bf16 ? static_cast<void*>(static_cast<uint16_t*>(out.data) + at)
                   : static_cast<void*>(static_cast<float*>(out.data) + at),
          out.bf16};
}

// y = Aᵀ m A + bias (ReLU) of one channel block of one tile, m[α] = M_α, into the 2×2 output pixels
// at (oy, ox) of dst (a channel block's plane).
M3VIT_BF16_AVX512 inline void transform_output(const __m512 m[16], __m512 bias, bool relu, BlockedOut dst, int w,
                                               int oy, int ox) {
  // Aᵀ on rows: r0[j] = m0j + m1j + m2j, r1[j] = m1j − m2j − m3j.
  __m512 r0[4], r1[4];
  for (int j = 0; j < 4; ++j) {
    const __m512 a = m[0 + j], b = m[4 + j], c = m[8 + j], e = m[12 + j];
    r0[j] = _mm512_add_ps(_mm512_add_ps(a, b), c);
    r1[j] = _mm512_sub_ps(_mm512_sub_ps(b, c), e);
  }
  // A on columns.
  __m512 y[2][2];
  const __m512* r[2] = {r0, r1};
  for (int i = 0; i < 2; ++i) {
    y[i][0] = _mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]);
    y[i][1] = _mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]);
  }
  const __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      __m512 o = _mm512_add_ps(y[i][j], bias);
      if (relu) o = _mm512_max_ps(o, zero);
      store_px(dst, static_cast<int64_t>(oy + i) * w + ox + j, o);
    }
}

// M_α for the 16 α, consecutive α `stride` floats apart.
M3VIT_BF16_AVX512 void output_tile(const float* m, size_t stride, __m512 bias, bool relu, BlockedOut dst, int w,
                                   int oy, int ox) {
  __m512 v[16];
  for (int a = 0; a < 16; ++a) v[a] = _mm512_loadu_ps(m + a * stride);
  transform_output(v, bias, relu, dst, w, oy, ox);
}

// int8 mode: M_α holds s32 sums as fp32, each scaled as it is read by its α's su[α·su_stride + o]
// (the weights' step) and sv[α·sv_stride] (the tile's step), which oneDNN's post-op would do a pass
// earlier.
M3VIT_BF16_AVX512 void output_tile_scaled(const float* m, size_t stride, const float* su, size_t su_stride,
                                          const float* sv, size_t sv_stride, __m512 bias, bool relu, BlockedOut dst,
                                          int w, int oy, int ox) {
  __m512 v[16];
  for (int a = 0; a < 16; ++a)
    v[a] = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(m + a * stride), _mm512_loadu_ps(su + a * su_stride)),
                         _mm512_set1_ps(sv[a * sv_stride]));
  transform_output(v, bias, relu, dst, w, oy, ox);
}

// ---- F(4×4, 3×3) ----
// Interpolation points 0, 1, −1, 2, −½ and ∞. Of the point sets tried in a float64 emulation with
// bf16 rounding of V and U (ReLU'd inputs, He-scaled weights), this one had the smallest error:
// 1.5e-2 of the output's RMS against 2.2e-2 for the usual 0, ±1, ±2 and 2.3e-3 for the direct bf16
// conv (F(2×2): 4.1e-3). Bᵀ and Aᵀ hold halves and eighths (exact in fp32); G's thirds and
// fifteenths are applied in double at pack time. Derived so that Aᵀ[(G g) ⊙ (Bᵀ d)] is the 3-tap
// correlation exactly (checked in float64); a wrong entry is off by O(1) in tests/runtime/test_winograd.cpp.
constexpr float kBt4[6][6] = {{1, 1.5f, -2, -1.5f, 1, 0},  {0, -1, -2.5f, -0.5f, 1, 0}, {0, 1, 0.5f, -2.5f, 1, 0},
                              {0, -0.5f, -1, 0.5f, 1, 0}, {0, 2, -1, -2, 1, 0},        {0, 1, 1.5f, -2, -1.5f, 1}};
constexpr float kAt4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -0.5f, 0}, {0, 1, 1, 4, 0.25f, 0}, {0, 1, -1, 8, -0.125f, 1}};
// F(2×2)'s G (its Bᵀ and Aᵀ are written out in bt4 and transform_output above).
constexpr double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
constexpr double kG4[6][3] = {{1, 0, 0},
                              {-1.0 / 3, -1.0 / 3, -1.0 / 3},
                              {1.0 / 3, -1.0 / 3, 1.0 / 3},
                              {1.0 / 15, 2.0 / 15, 4.0 / 15},
                              {-16.0 / 15, 8.0 / 15, -4.0 / 15},
                              {0, 0, 1}};

// out[i] = Σ_k T[i][k]·in[k] for a constant matrix T [N][6]: after unrolling, zero entries vanish
// and ±1 become adds and subtracts.
template <int N>
M3VIT_BF16_AVX512 inline void apply6(const float (&t)[N][6], const __m512 in[6], __m512 out[N]) {
#pragma GCC unroll 6
  for (int i = 0; i < N; ++i) {
    __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int k = 0; k < 6; ++k) {
      const float c = t[i][k];
      if (c == 0.f) continue;
      if (c == 1.f) acc = _mm512_add_ps(acc, in[k]);
      else if (c == -1.f) acc = _mm512_sub_ps(acc, in[k]);
      else acc = _mm512_fmadd_ps(_mm512_set1_ps(c), in[k], acc);
    }
    out[i] = acc;
  }
}

// One channel block of one F(4×4) tile: d = the 6×6 input patch at (y0, x0) (zeros outside the map),
// V = Bᵀ d B, each V_α handed to store(α, V_α), α = 6·i + j. Columns first through a small buffer
// (36 vectors do not fit the 32 registers alongside the results). store is inlined: bf16 rounds and
// stores, int8 stores fp32 and keeps the running max. (The lambdas carry the target attribute
// themselves: GCC does not pass it on from the enclosing function.)
template <class Store>
M3VIT_BF16_AVX512 inline void transform_input4(const float* src, int in_h, int w, int y0, int x0, Store store) {
  __m512 t[6][6];  // t[i][c] = (Bᵀ d)[i][c]
  for (int c = 0; c < 6; ++c) {
    const int x = x0 + c;
    __m512 col[6], o[6];
    for (int r = 0; r < 6; ++r) {
      const int y = y0 + r;
      col[r] = (y >= 0 && y < in_h && x >= 0 && x < w) ? _mm512_loadu_ps(src + (static_cast<int64_t>(y) * w + x) * 16)
                                                      : _mm512_setzero_ps();
    }
    apply6<6>(kBt4, col, o);
    for (int i = 0; i < 6; ++i) t[i][c] = o[i];
  }
  for (int i = 0; i < 6; ++i) {
    __m512 o[6];
    apply6<6>(kBt4, t[i], o);
    for (int j = 0; j < 6; ++j) store(6 * i + j, o[j]);
  }
}

// V rounded to bf16 into v + α·stride.
M3VIT_BF16_AVX512 void input_tile4(const float* src, int in_h, int w, int y0, int x0, uint16_t* v, size_t stride) {
  transform_input4(src, in_h, w, y0, x0, [&](int a, __m512 x) M3VIT_BF16_AVX512 {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(v + a * stride), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x)));
  });
}

// int8 mode: V kept in fp32, with the running max |V_α| of each α's 16 lanes in amax[α] (as
// input_tile_f32 for F(2×2)).
M3VIT_BF16_AVX512 void input_tile4_f32(const float* src, int in_h, int w, int y0, int x0, float* v, size_t stride,
                                       __m512* amax) {
  transform_input4(src, in_h, w, y0, x0, [&](int a, __m512 x) M3VIT_BF16_AVX512 {
    _mm512_storeu_ps(v + a * stride, x);
    amax[a] = _mm512_max_ps(amax[a], _mm512_abs_ps(x));
  });
}

// y = Aᵀ M A + bias (ReLU) of one channel block of one F(4×4) tile into the 4×4 outputs at (oy, ox),
// M_α = load(α): as stored (bf16 mode) or scaled as it is read (int8 mode).
template <class Load>
M3VIT_BF16_AVX512 inline void transform_output4(Load load, __m512 bias, bool relu, BlockedOut dst, int w, int oy,
                                                int ox) {
  __m512 r[4][6];  // r[i][j] = (Aᵀ M)[i][j]
  for (int j = 0; j < 6; ++j) {
    __m512 col[6], o[4];
    for (int a = 0; a < 6; ++a) col[a] = load(6 * a + j);
    apply6<4>(kAt4, col, o);
    for (int i = 0; i < 4; ++i) r[i][j] = o[i];
  }
  const __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    __m512 y[4];
    apply6<4>(kAt4, r[i], y);
    for (int j = 0; j < 4; ++j) {
      __m512 o = _mm512_add_ps(y[j], bias);
      if (relu) o = _mm512_max_ps(o, zero);
      store_px(dst, static_cast<int64_t>(oy + i) * w + ox + j, o);
    }
  }
}

// M_α for the 36 α, consecutive α `stride` floats apart.
M3VIT_BF16_AVX512 void output_tile4(const float* m, size_t stride, __m512 bias, bool relu, BlockedOut dst, int w,
                                    int oy, int ox) {
  transform_output4([&](int a) M3VIT_BF16_AVX512 { return _mm512_loadu_ps(m + a * stride); }, bias, relu, dst, w, oy,
                    ox);
}

// int8 mode: M_α (s32 sums as fp32) scaled as it is read, as output_tile_scaled.
M3VIT_BF16_AVX512 void output_tile4_scaled(const float* m, size_t stride, const float* su, size_t su_stride,
                                           const float* sv, size_t sv_stride, __m512 bias, bool relu, BlockedOut dst,
                                           int w, int oy, int ox) {
  transform_output4(
      [&](int a) M3VIT_BF16_AVX512 {
        return _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(m + a * stride), _mm512_loadu_ps(su + a * su_stride)),
                             _mm512_set1_ps(sv[a * sv_stride]));
      },
      bias, relu, dst, w, oy, ox);
}

// Tiles of m×m outputs and their chunks: at most max_chunk tiles, and at least one per thread when
// the map is small (conv_0). Shared by the bf16 and int8 forms.
struct TilePlan {
  int tiles_x, tiles, threads, chunk;
};
TilePlan plan_tiles(int out_h, int w, int max_chunk, int m = 2) {
  TilePlan p;
  p.tiles_x = w / m;
  p.tiles = (out_h / m) * p.tiles_x;
  p.threads = std::max(1, omp_get_max_threads());
  const int per_thread = (p.tiles + p.threads - 1) / p.threads;
  p.chunk = std::min(max_chunk, (per_thread + 15) / 16 * 16);
  return p;
}

// M_α [chunk, cout] fp32 = V_α [chunk, cin] · U_α [cin, cout], both of type `in` (bf16 or s8), U_α in
// the layout the primitive prefers, the scratchpad the caller's. One 2-D matmul per α, all with this
// primitive: oneDNN 2.6's batched matmul keeps its weights in a plain layout and repacks them on
// every call (half the speed measured in bf16); the 2-D one takes them pre-blocked.
dnnl::matmul::primitive_desc alpha_matmul(DnnlContext& ctx, int chunk, int cin, int cout, dt in) {
  const memory::dim T = chunk;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(memory::desc({T, cin}, in, tag::ab),
                                                         memory::desc({cin, cout}, in, tag::any),
                                                         memory::desc({T, cout}, dt::f32, tag::ab)),
                                      attr, ctx.eng);
}

// A band of out_h rows must lie inside the map it is written into.
void check_rows(const WinogradOut& out, int out_h) {
  if (out.row0 < 0 || out.row0 + out_h > out.map_rows)
    throw ShapeError("Winograd conv writes rows " + std::to_string(out.row0) + ".." + std::to_string(out.row0 + out_h) +
                     " of a map of " + std::to_string(out.map_rows) + " rows");
}

}  // namespace

WinogradBf16::WinogradBf16(DnnlContext& ctx, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom,
                           bool relu, int tile)
    : ctx_(&ctx), cin_(cin), cout_(cout), in_h_(in_h), w_(w), out_h_(in_h + pad_top + pad_bottom - 2),
      pad_top_(pad_top), relu_(relu), tile_(tile), alphas_((tile + 2) * (tile + 2)) {
  if (!supports(cin, cout, out_h_, w, tile))
    throw ConfigError("bf16 Winograd F(" + std::to_string(tile) + "x" + std::to_string(tile) +
                      ") conv needs an output in whole tiles and channels in multiples of 16");
  if (!cpu_has_bf16()) throw ConfigError("bf16 Winograd conv needs a CPU with AVX512-BF16");
  const TilePlan plan = plan_tiles(out_h_, w, tile == 4 ? kMaxChunk4 : kMaxChunk, tile);
  tiles_x_ = plan.tiles_x;
  tiles_ = plan.tiles;
  threads_ = plan.threads;
  chunk_ = plan.chunk;
  const memory::dim T = chunk_;
  const dnnl::matmul::primitive_desc pd = alpha_matmul(ctx, chunk_, cin, cout, dt::bf16);
  u_desc_ = pd.weights_desc();
  // One U_α, fp32 [cin, cout] -> bf16 in u_desc_ (rounding to nearest even), made once.
  pack_u_ = dnnl::reorder(dnnl::reorder::primitive_desc(ctx.eng, memory::desc({cin, cout}, dt::f32, tag::ab), ctx.eng,
                                                        u_desc_));
  u_bytes_ = align64(u_desc_.get_size());
  w_desc_ = memory::desc({static_cast<memory::dim>(alphas_ * u_bytes_)}, dt::u8, tag::a);
  prim_ = dnnl::matmul(pd);
  pad_bytes_ = pd.scratchpad_desc().get_size();
  for (int t = 0; t < threads_; ++t) streams_.emplace_back(ctx.eng);
  // The α planes of V and M are padded by 128 bytes: a power-of-two stride would map the same
  // tile's α into the same cache sets (the transforms touch all of them at once; measured 5× slower).
  v_plane_ = static_cast<size_t>(T) * cin + 64;   // bf16 elements
  m_plane_ = static_cast<size_t>(T) * cout + 32;  // floats
  m_off_ = align64(alphas_ * v_plane_ * 2);
  pad_off_ = m_off_ + align64(alphas_ * m_plane_ * 4);
  per_thread_bytes_ = pad_off_ + align64(pad_bytes_);
}

void WinogradBf16::pack_to(const float* g, const memory& dst, dnnl::stream& strm) const {
  // U_α[ci][co] = (G g Gᵀ)_α in double, stored [α²][cin][cout] fp32, then reordered (rounded) to bf16.
  std::vector<float> u(static_cast<size_t>(alphas_) * cin_ * cout_);
  const int na = tile_ + 2;  // α per side
  const double(*G)[3] = tile_ == 4 ? kG4 : kG2;
#pragma omp parallel for schedule(static)
  for (int co = 0; co < cout_; ++co)
    for (int ci = 0; ci < cin_; ++ci) {
      const float* k = g + (static_cast<size_t>(co) * cin_ + ci) * 9;
      double gk[6][3];  // G·g, rows 0 .. na − 1
      for (int i = 0; i < na; ++i)
        for (int c = 0; c < 3; ++c) gk[i][c] = G[i][0] * k[c] + G[i][1] * k[3 + c] + G[i][2] * k[6 + c];
      for (int i = 0; i < na; ++i)
        for (int j = 0; j < na; ++j)
          u[(static_cast<size_t>(na * i + j) * cin_ + ci) * cout_ + co] =
              static_cast<float>(gk[i][0] * G[j][0] + gk[i][1] * G[j][1] + gk[i][2] * G[j][2]);
    }
  uint8_t* base = static_cast<uint8_t*>(dst.get_data_handle());
  for (int a = 0; a < alphas_; ++a) {
    memory user({{cin_, cout_}, dt::f32, tag::ab}, ctx_->eng, u.data() + static_cast<size_t>(a) * cin_ * cout_);
    memory ua(u_desc_, ctx_->eng, base + a * u_bytes_);
    pack_u_.execute(strm, user, ua);
  }
  strm.wait();
}

M3VIT_BF16_AVX512 void WinogradBf16::input_transform(const float* src, int t0, int nt, uint16_t* v) const {
  const int cblocks = cin_ / 16;
  const size_t stride = v_plane_;  // between α planes of V
  const size_t plane = static_cast<size_t>(in_h_) * w_ * 16;  // one channel block of src
  const int m = tile_;
  for (int t = 0; t < nt; ++t)
    for (int cb = 0; cb < cblocks; ++cb) {
      const int tile = t0 + t, y0 = m * (tile / tiles_x_) - pad_top_, x0 = m * (tile % tiles_x_) - 1;
      uint16_t* vt = v + static_cast<size_t>(t) * cin_ + cb * 16;
      if (m == 4)
        input_tile4(src + cb * plane, in_h_, w_, y0, x0, vt, stride);
      else
        input_tile(src + cb * plane, in_h_, w_, y0, x0, vt, stride);
    }
  // A partial chunk: the matmul still computes chunk_ rows; give the extra ones zeros, not stale bytes.
  if (nt < chunk_)
    for (int a = 0; a < alphas_; ++a)
      std::memset(v + a * stride + static_cast<size_t>(nt) * cin_, 0, static_cast<size_t>(chunk_ - nt) * cin_ * 2);
}

M3VIT_BF16_AVX512 void WinogradBf16::output_transform(const float* m, const float* bias, int t0, int nt,
                                                     const WinogradOut& out) const {
  const int oblocks = cout_ / 16;
  const size_t stride = m_plane_;
  const int mt = tile_;
  for (int t = 0; t < nt; ++t)
    for (int ob = 0; ob < oblocks; ++ob) {
      const int tile = t0 + t, oy = mt * (tile / tiles_x_), ox = mt * (tile % tiles_x_);
      const float* mtile = m + static_cast<size_t>(t) * cout_ + ob * 16;
      const __m512 b = _mm512_loadu_ps(bias + ob * 16);
      if (mt == 4)
        output_tile4(mtile, stride, b, relu_, block_out(out, ob, w_), w_, oy, ox);
      else
        output_tile(mtile, stride, b, relu_, block_out(out, ob, w_), w_, oy, ox);
    }
}

void WinogradBf16::run(const float* src, const memory& weights, const float* bias, const WinogradOut& out,
                       void* scratch) const {
  check_rows(out, out_h_);
  uint8_t* u = static_cast<uint8_t*>(weights.get_data_handle());
  const int chunks = (tiles_ + chunk_ - 1) / chunk_;
  const int nt = std::min({threads_, chunks, omp_get_max_threads()});
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    uint8_t* base = static_cast<uint8_t*>(scratch) + tid * per_thread_bytes_;
    auto* v = reinterpret_cast<uint16_t*>(base);
    auto* m = reinterpret_cast<float*>(base + m_off_);
    const memory::dim T = chunk_;
    memory v_m({{T, cin_}, dt::bf16, tag::ab}, ctx_->eng, v);
    memory m_m({{T, cout_}, dt::f32, tag::ab}, ctx_->eng, m);
    memory u_m(u_desc_, ctx_->eng, u);
    memory pad_m({{static_cast<memory::dim>(std::max<size_t>(pad_bytes_, 1))}, dt::u8, tag::a}, ctx_->eng,
                 base + pad_off_);
    dnnl::stream& strm = streams_[tid];
    // Inside the parallel region oneDNN runs each matmul on the calling thread.
    for (int c = tid; c < chunks; c += nt) {
      const int t0 = c * chunk_, n = std::min(chunk_, tiles_ - t0);
      input_transform(src, t0, n, v);
      for (int a = 0; a < alphas_; ++a) {  // M_α = V_α · U_α
        v_m.set_data_handle(v + a * v_plane_);
        m_m.set_data_handle(m + a * m_plane_);
        u_m.set_data_handle(u + a * u_bytes_);
        prim_.execute(strm, {{DNNL_ARG_SRC, v_m}, {DNNL_ARG_WEIGHTS, u_m}, {DNNL_ARG_DST, m_m},
                             {DNNL_ARG_SCRATCHPAD, pad_m}});
      }
      strm.wait();
      output_transform(m, bias, t0, n, out);
    }
  }
}

// ---- int8 (runtime/ops/winograd_int8.h) ----

WinogradInt8::WinogradInt8(DnnlContext& ctx, int cin, int cout, int in_h, int w, int pad_top, int pad_bottom,
                           bool relu, int tile)
    : ctx_(&ctx), cin_(cin), cout_(cout), in_h_(in_h), w_(w), out_h_(in_h + pad_top + pad_bottom - 2),
      pad_top_(pad_top), relu_(relu), tile_(tile), alphas_((tile + 2) * (tile + 2)) {
  if (!supports(cin, cout, out_h_, w, tile))
    throw ConfigError("int8 Winograd F(" + std::to_string(tile) + "x" + std::to_string(tile) +
                      ") conv needs an output in whole tiles and channels in multiples of 16");
  const TilePlan plan = plan_tiles(out_h_, w, tile == 4 ? kMaxChunk4 : kMaxChunk, tile);
  tiles_x_ = plan.tiles_x;
  tiles_ = plan.tiles;
  threads_ = plan.threads;
  chunk_ = plan.chunk;
  const memory::dim T = chunk_;
  // M_α = V_α s8 · U_α s8 as fp32 sums; the output transform scales them by sv_α·su_α[o] as it reads
  // them (a binary post-op here measured 20% of the matmul).
  const dnnl::matmul::primitive_desc pd = alpha_matmul(ctx, chunk_, cin, cout, dt::s8);
  u_desc_ = pd.weights_desc();
  pack_u_ = dnnl::reorder(dnnl::reorder::primitive_desc(ctx.eng, memory::desc({cin, cout}, dt::s8, tag::ab), ctx.eng,
                                                        u_desc_));
  u_bytes_ = align64(u_desc_.get_size());
  su_off_ = u_bytes_;
  alpha_bytes_ = u_bytes_ + align64(static_cast<size_t>(cout) * 4);
  w_desc_ = memory::desc({static_cast<memory::dim>(alphas_ * alpha_bytes_)}, dt::u8, tag::a);
  prim_ = dnnl::matmul(pd);
  pad_bytes_ = pd.scratchpad_desc().get_size();
  for (int t = 0; t < threads_; ++t) streams_.emplace_back(ctx.eng);
  // Planes padded off a power-of-two stride (the bf16 form measured 5× slower without).
  v_plane_ = static_cast<size_t>(T) * cin + 64;
  m_plane_ = static_cast<size_t>(T) * cout + 32;
  // Per thread: one tile's fp32 V [α², cin] (the transform's buffer), the chunk's s8 V̂ [α², T, cin]
  // (planes v_plane_ apart), M [α², T, cout] fp32 and the steps sv [α², T].
  vq_off_ = align64(static_cast<size_t>(alphas_) * cin * 4);
  m_off_ = vq_off_ + align64(alphas_ * v_plane_);
  sv_off_ = m_off_ + align64(alphas_ * m_plane_ * 4);
  pad_off_ = sv_off_ + align64(alphas_ * static_cast<size_t>(T) * 4);
  per_thread_bytes_ = pad_off_ + align64(pad_bytes_);
}

void WinogradInt8::pack_to(const int8_t* q, const float* w_scale, const memory& dst, dnnl::stream& strm) const {
  // U_α[ci][co] = (G g Gᵀ)_α of g = q·w_scale[co], in double, one α at a time (this runs on the
  // weight ring's reader thread for streamed convs: an [α², cin, cout] buffer would be 12.6 MB of
  // peak memory at cin 384 for F(2×2)); then s8 per (α, co).
  const int na = tile_ + 2;  // α per side
  const double(*G)[3] = tile_ == 4 ? kG4 : kG2;
  uint8_t* base = static_cast<uint8_t*>(dst.get_data_handle());
  std::vector<double> ua(static_cast<size_t>(cin_) * cout_);
  std::vector<int8_t> uq(ua.size());
  for (int a = 0; a < alphas_; ++a) {
    const int ai = a / na, aj = a % na;
#pragma omp parallel for schedule(static)
    for (int co = 0; co < cout_; ++co)
      for (int ci = 0; ci < cin_; ++ci) {
        const int8_t* k = q + (static_cast<size_t>(co) * cin_ + ci) * 9;
        double u = 0;  // Σ_r Σ_c G[ai][r]·g[r][c]·G[aj][c]
        for (int r = 0; r < 3; ++r)
          u += G[ai][r] * (G[aj][0] * k[3 * r] + G[aj][1] * k[3 * r + 1] + G[aj][2] * k[3 * r + 2]);
        ua[static_cast<size_t>(ci) * cout_ + co] = u * w_scale[co];
      }
    float* su = reinterpret_cast<float*>(base + a * alpha_bytes_ + su_off_);
    for (int co = 0; co < cout_; ++co) {
      double m = 0;
      for (int ci = 0; ci < cin_; ++ci) m = std::max(m, std::fabs(ua[static_cast<size_t>(ci) * cout_ + co]));
      const double sc = m > 0 ? m / kS8Max : 1.0;
      su[co] = static_cast<float>(sc);
      for (int ci = 0; ci < cin_; ++ci)
        uq[static_cast<size_t>(ci) * cout_ + co] =
            static_cast<int8_t>(std::clamp(std::nearbyint(ua[static_cast<size_t>(ci) * cout_ + co] / sc), -127.0, 127.0));
    }
    memory user({{cin_, cout_}, dt::s8, tag::ab}, ctx_->eng, uq.data());
    memory ua_m(u_desc_, ctx_->eng, base + a * alpha_bytes_);
    pack_u_.execute(strm, user, ua_m);
    strm.wait();
  }
}

M3VIT_BF16_AVX512 void WinogradInt8::input_transform(const float* src, int t0, int nt, float* buf, int8_t* vq,
                                                    float* sv) const {
  const int cblocks = cin_ / 16;
  const size_t plane = static_cast<size_t>(in_h_) * w_ * 16;
  const size_t stride = static_cast<size_t>(cin_);  // floats between α in buf [α][cin]
  const int m = tile_;
  for (int t = 0; t < nt; ++t) {
    // One tile's V, all α and channels, into buf (α² × cin fp32: 36 KiB at 256 channels, in L1 or
    // L2), with max |V_α|.
    __m512 amax[36];
    for (int a = 0; a < alphas_; ++a) amax[a] = _mm512_setzero_ps();
    const int tile = t0 + t, y0 = m * (tile / tiles_x_) - pad_top_, x0 = m * (tile % tiles_x_) - 1;
    for (int cb = 0; cb < cblocks; ++cb) {
      // The next tile's new columns of this channel block: 16 blocks × (m + 2) rows are too many
      // streams for the hardware prefetcher (the loads stalled, measured).
      for (int r = 0; r < m + 2; ++r) {
        const int y = y0 + r;
        if (y < 0 || y >= in_h_) continue;
        for (int c = m + 2; c < 2 * m + 2; ++c)
          if (x0 + c < w_)
            _mm_prefetch(reinterpret_cast<const char*>(src + cb * plane + (static_cast<int64_t>(y) * w_ + x0 + c) * 16),
                         _MM_HINT_T0);
      }
      if (m == 4)
        input_tile4_f32(src + cb * plane, in_h_, w_, y0, x0, buf + cb * 16, stride, amax);
      else
        input_tile_f32(src + cb * plane, in_h_, w_, y0, x0, buf + cb * 16, stride, amax);
    }
    // s8 with one step per α and tile: q = round(V / step), and |q| <= 127 since |V| <= max.
    for (int a = 0; a < alphas_; ++a) {
      const float step = s8_step(_mm512_reduce_max_ps(amax[a]));
      sv[a * chunk_ + t] = step;
      const __m512 inv = _mm512_set1_ps(1.f / step);
      const float* va = buf + a * stride;
      int8_t* qa = vq + a * v_plane_ + static_cast<size_t>(t) * cin_;
      for (int c = 0; c < cin_; c += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qa + c),
                         _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(va + c), inv))));
    }
  }
}

M3VIT_BF16_AVX512 void WinogradInt8::output_transform(const float* m, const uint8_t* u, const float* sv,
                                                     const float* bias, int t0, int nt, const Out& out) const {
  const int oblocks = cout_ / 16;
  // su_α [cout] sits in each α's slice of the weights, alpha_bytes_ apart.
  const auto* su = reinterpret_cast<const float*>(u + su_off_);
  const size_t su_stride = alpha_bytes_ / 4;
  for (int t = 0; t < nt; ++t)
    for (int ob = 0; ob < oblocks; ++ob) {
      const int tile = t0 + t, oy = tile_ * (tile / tiles_x_), ox = tile_ * (tile % tiles_x_);
      const float* mt = m + static_cast<size_t>(t) * cout_ + ob * 16;
      // Two blocks ahead in each of the α² planes (as many streams: see input_transform).
      for (int a = 0; a < alphas_; ++a) _mm_prefetch(reinterpret_cast<const char*>(mt + a * m_plane_ + 32), _MM_HINT_T0);
      const __m512 b = _mm512_loadu_ps(bias + ob * 16);
      const BlockedOut dst = block_out(out, ob, w_);
      if (tile_ == 4)
        output_tile4_scaled(mt, m_plane_, su + ob * 16, su_stride, sv + t, chunk_, b, relu_, dst, w_, oy, ox);
      else
        output_tile_scaled(mt, m_plane_, su + ob * 16, su_stride, sv + t, chunk_, b, relu_, dst, w_, oy, ox);
    }
}

void WinogradInt8::run(const float* src, const memory& weights, const float* bias, const Out& out, void* scratch) const {
  check_rows(out, out_h_);
  uint8_t* u = static_cast<uint8_t*>(weights.get_data_handle());
  const int chunks = (tiles_ + chunk_ - 1) / chunk_;
  const int nt = std::min({threads_, chunks, omp_get_max_threads()});
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    uint8_t* base = static_cast<uint8_t*>(scratch) + tid * per_thread_bytes_;
    auto* buf = reinterpret_cast<float*>(base);
    auto* vq = reinterpret_cast<int8_t*>(base + vq_off_);
    auto* m = reinterpret_cast<float*>(base + m_off_);
    auto* sv = reinterpret_cast<float*>(base + sv_off_);
    const memory::dim T = chunk_;
    memory v_m({{T, cin_}, dt::s8, tag::ab}, ctx_->eng, vq);
    memory m_m({{T, cout_}, dt::f32, tag::ab}, ctx_->eng, m);
    memory u_m(u_desc_, ctx_->eng, u);
    memory pad_m({{static_cast<memory::dim>(std::max<size_t>(pad_bytes_, 1))}, dt::u8, tag::a}, ctx_->eng,
                 base + pad_off_);
    dnnl::stream& strm = streams_[tid];
    for (int c = tid; c < chunks; c += nt) {
      const int t0 = c * chunk_, n = std::min(chunk_, tiles_ - t0);
      input_transform(src, t0, n, buf, vq, sv);
      for (int a = 0; a < alphas_; ++a) {
        int8_t* qa = vq + a * v_plane_;
        // A partial chunk: the matmul computes chunk_ rows; the extra ones get zeros.
        if (n < chunk_) std::memset(qa + static_cast<size_t>(n) * cin_, 0, static_cast<size_t>(chunk_ - n) * cin_);
        v_m.set_data_handle(qa);
        m_m.set_data_handle(m + a * m_plane_);
        u_m.set_data_handle(u + a * alpha_bytes_);
        prim_.execute(strm, {{DNNL_ARG_SRC, v_m}, {DNNL_ARG_WEIGHTS, u_m}, {DNNL_ARG_DST, m_m},
                             {DNNL_ARG_SCRATCHPAD, pad_m}});
      }
      strm.wait();
      output_transform(m, u, sv, bias, t0, n, out);
    }
  }
}

}  // namespace m3vit::rt
