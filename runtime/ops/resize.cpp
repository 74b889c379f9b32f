// Bilinear resizing (runtime/ops/resize.h). The arithmetic follows ATen's upsample_bilinear2d on CPU
// (compute_indices_weights_linear): indices and lambdas in fp32, one axis then the other.
#include "runtime/ops/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "runtime/ops/bf16.h"

namespace m3vit::rt {

ResizeAxis resize_axis(int in, int out) {
  ResizeAxis a;
  a.i0.resize(out);
  a.i1.resize(out);
  a.l.resize(out);
  // ATen: scale = (float)in / out when no scale factor is given; for ×2, 0.5 either way.
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int o = 0; o < out; ++o) {
    float s = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.f);
    int i0 = std::min(static_cast<int>(s), in - 1);
    a.i0[o] = i0;
    a.i1[o] = i0 + (i0 < in - 1 ? 1 : 0);
    a.l[o] = std::min(std::max(s - static_cast<float>(i0), 0.f), 1.f);
  }
  return a;
}

namespace {
inline void store(float* p, float v) { *p = v; }
inline void store(uint16_t* p, float v) { *p = f32_to_bf16(v); }
inline float load(const float* p) { return *p; }
inline float load(const uint16_t* p) { return bf16_to_f32(*p); }
}  // namespace

template <typename In, typename T>
void upsample2x_rows_blocked(const In* in, int H, int W, int C, int y0, int y1, T* out) {
  const int Ho = 2 * H, Wo = 2 * W, R = y1 - y0, CB = (C + 15) / 16;
  const ResizeAxis ax = resize_axis(W, Wo), ay = resize_axis(H, Ho);
#pragma omp parallel for collapse(2) schedule(static)
  for (int cb = 0; cb < CB; ++cb)
    for (int y = y0; y < y1; ++y) {
      T* orow = out + (static_cast<int64_t>(cb) * R + (y - y0)) * Wo * 16;
      if (y < 0 || y >= Ho) {
        std::memset(orow, 0, sizeof(T) * Wo * 16);
        continue;
      }
      const float ly = ay.l[y], hy = 1.f - ly;
      const In* plane = in + static_cast<int64_t>(cb) * H * W * 16;
      const In* r0 = plane + static_cast<int64_t>(ay.i0[y]) * W * 16;
      const In* r1 = plane + static_cast<int64_t>(ay.i1[y]) * W * 16;
      for (int x = 0; x < Wo; ++x) {
        const float lx = ax.l[x], hx = 1.f - lx;
        const In* a = r0 + ax.i0[x] * 16;
        const In* b = r0 + ax.i1[x] * 16;
        const In* c = r1 + ax.i0[x] * 16;
        const In* d = r1 + ax.i1[x] * 16;
        T* o = orow + x * 16;
#pragma omp simd
        for (int ch = 0; ch < 16; ++ch)
          store(o + ch, hy * (hx * load(a + ch) + lx * load(b + ch)) + ly * (hx * load(c + ch) + lx * load(d + ch)));
      }
    }
}

template void upsample2x_rows_blocked<float, float>(const float*, int, int, int, int, int, float*);
template void upsample2x_rows_blocked<float, uint16_t>(const float*, int, int, int, int, int, uint16_t*);
template void upsample2x_rows_blocked<uint16_t, float>(const uint16_t*, int, int, int, int, int, float*);

template <typename T>
void copy_rows_blocked(const float* band, int C, int rows, int W, T* map, int H, int r0) {
  const int CB = (C + 15) / 16;
  const size_t n = static_cast<size_t>(rows) * W * 16;
#pragma omp parallel for schedule(static)
  for (int cb = 0; cb < CB; ++cb) {
    const float* from = band + static_cast<int64_t>(cb) * n;
    T* to = map + (static_cast<int64_t>(cb) * H + r0) * W * 16;
    if constexpr (std::is_same_v<T, float>)
      std::memcpy(to, from, n * sizeof(float));
    else
      for (size_t i = 0; i < n; ++i) store(to + i, from[i]);
  }
}

template void copy_rows_blocked<float>(const float*, int, int, int, float*, int, int);
template void copy_rows_blocked<uint16_t>(const float*, int, int, int, uint16_t*, int, int);

void resize_blocked_to_chw(const float* in, int C, int H, int W, float* out, int Ho, int Wo) {
  resize_blocked_rows_to_chw(in, C, 0, H, H, W, out, Ho, Wo, 0, Ho);
}

void resize_blocked_rows_to_chw(const float* in, int C, int in_row0, int in_rows, int H, int W, float* out, int Ho,
                                int Wo, int y0, int y1) {
  const ResizeAxis ax = resize_axis(W, Wo), ay = resize_axis(H, Ho);
#pragma omp parallel for collapse(2) schedule(static)
  for (int ch = 0; ch < C; ++ch)
    for (int y = y0; y < y1; ++y) {
      const float ly = ay.l[y], hy = 1.f - ly;
      const float* plane = in + static_cast<int64_t>(ch / 16) * in_rows * W * 16 + ch % 16;
      const float* r0 = plane + static_cast<int64_t>(ay.i0[y] - in_row0) * W * 16;
      const float* r1 = plane + static_cast<int64_t>(ay.i1[y] - in_row0) * W * 16;
      float* o = out + (static_cast<int64_t>(ch) * Ho + y) * Wo;
      for (int x = 0; x < Wo; ++x) {
        const float lx = ax.l[x], hx = 1.f - lx;
        const int64_t j0 = static_cast<int64_t>(ax.i0[x]) * 16, j1 = static_cast<int64_t>(ax.i1[x]) * 16;
        o[x] = hy * (hx * r0[j0] + lx * r0[j1]) + ly * (hx * r1[j0] + lx * r1[j1]);
      }
    }
}

void resize_chw(const float* in, int C, int H, int W, float* out, int Ho, int Wo) {
  const ResizeAxis ax = resize_axis(W, Wo), ay = resize_axis(H, Ho);
#pragma omp parallel for collapse(2) schedule(static)
  for (int ch = 0; ch < C; ++ch)
    for (int y = 0; y < Ho; ++y) {
      const float ly = ay.l[y], hy = 1.f - ly;
      const float* r0 = in + (static_cast<int64_t>(ch) * H + ay.i0[y]) * W;
      const float* r1 = in + (static_cast<int64_t>(ch) * H + ay.i1[y]) * W;
      float* o = out + (static_cast<int64_t>(ch) * Ho + y) * Wo;
      for (int x = 0; x < Wo; ++x) {
        const float lx = ax.l[x], hx = 1.f - lx;
        o[x] = hy * (hx * r0[ax.i0[x]] + lx * r0[ax.i1[x]]) + ly * (hx * r1[ax.i0[x]] + lx * r1[ax.i1[x]]);
      }
    }
}

}  // namespace m3vit::rt
