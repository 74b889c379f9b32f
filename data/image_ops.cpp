// OpenCV-compatible resize / warpAffine / flip on planar float images (see data/image_ops.h for the
// sampling rules and the known differences). OpenCV sources consulted for the rules: imgproc/resize.cpp
// (coordinate mapping, border clamping) and imgproc/imgwarp.cpp (fixed-point warp coordinates, remap
// tables); no code is taken from them.
#include "data/image_ops.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

namespace {

constexpr int kInterBits = 5;                 // OpenCV INTER_BITS
constexpr int kTabSize = 1 << kInterBits;     // 32 sub-pixel positions
constexpr int kAbBits = 10;                   // OpenCV AB_BITS = max(10, INTER_BITS)
constexpr int kAbScale = 1 << kAbBits;

// OpenCV's interpolateCubic: Keys kernel, a = -0.75, weights of taps at -1, 0, 1, 2.
void cubic_weights(float x, float* c) {
  const float a = -0.75f;
  c[0] = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a;
  c[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
  c[2] = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1;
  c[3] = 1.f - c[0] - c[1] - c[2];
}

// cvRound on a double (round half to even) then saturate to int.
int round_sat(double v) {
  double r = std::nearbyint(v);
  if (r > 2147483647.0) return 2147483647;
  if (r < -2147483648.0) return -2147483647 - 1;
  return static_cast<int>(r);
}

void check_size(const ImageF& src, int out_h, int out_w, const char* what) {
  if (src.empty() || src.h <= 0 || src.w <= 0) throw ShapeError(std::string(what) + ": empty input image");
  if (out_h <= 0 || out_w <= 0)
    throw ShapeError(std::string(what) + ": output size " + std::to_string(out_h) + "x" + std::to_string(out_w) +
                     " is not positive");
}

// Separable resize taps along one axis: for each output index, `k` source indices (clamped, i.e. a
// replicated border) and weights.
struct Taps {
  int k = 0;
  std::vector<int> idx;
  std::vector<float> wt;
};

Taps resize_taps(int in, int out, Interp interp) {
  Taps t;
  t.k = interp == Interp::cubic ? 4 : 2;
  t.idx.resize(static_cast<size_t>(out) * t.k);
  t.wt.resize(static_cast<size_t>(out) * t.k);
  const double inv_scale = static_cast<double>(out) / in;
  const double scale = 1.0 / inv_scale;
  for (int d = 0; d < out; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int s = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s);
    int* ix = &t.idx[static_cast<size_t>(d) * t.k];
    float* w = &t.wt[static_cast<size_t>(d) * t.k];
    if (interp == Interp::cubic) {
      cubic_weights(f, w);
      for (int j = 0; j < 4; ++j) ix[j] = std::clamp(s - 1 + j, 0, in - 1);
    } else {
      // OpenCV resets (s, f) to the edge pixel outside the image; with clamped taps this is the same.
      if (s < 0) s = 0, f = 0.f;
      if (s >= in - 1) s = in - 1, f = 0.f;
      w[0] = 1.f - f;
      w[1] = f;
      ix[0] = s;
      ix[1] = std::min(s + 1, in - 1);
    }
  }
  return t;
}

}  // namespace

const char* to_string(Interp interp) {
  switch (interp) {
    case Interp::nearest: return "nearest";
    case Interp::linear: return "linear";
    case Interp::cubic: return "cubic";
  }
  return "?";
}

ImageF resize(const ImageF& src, int out_h, int out_w, Interp interp) {
  check_size(src, out_h, out_w, "resize");
  if (out_h == src.h && out_w == src.w) return src;  // cv::resize copies when sizes agree
  ImageF dst(src.c, out_h, out_w);
  if (interp == Interp::nearest) {
    // resizeNN: sx = floor(dx * ifx), ifx = 1 / (out / in), clamped to the last pixel.
    const double ifx = 1.0 / (static_cast<double>(out_w) / src.w);
    const double ify = 1.0 / (static_cast<double>(out_h) / src.h);
    std::vector<int> xs(out_w), ys(out_h);
    for (int x = 0; x < out_w; ++x) xs[x] = std::min(static_cast<int>(std::floor(x * ifx)), src.w - 1);
    for (int y = 0; y < out_h; ++y) ys[y] = std::min(static_cast<int>(std::floor(y * ify)), src.h - 1);
    for (int c = 0; c < src.c; ++c) {
      const float* s = src.plane(c);
      float* d = dst.plane(c);
      for (int y = 0; y < out_h; ++y) {
        const float* row = s + static_cast<size_t>(ys[y]) * src.w;
        for (int x = 0; x < out_w; ++x) d[static_cast<size_t>(y) * out_w + x] = row[xs[x]];
      }
    }
    return dst;
  }
  // Linear / cubic: horizontal pass into a [src.h, out_w] buffer, then vertical pass (OpenCV's order).
  const Taps tx = resize_taps(src.w, out_w, interp);
  const Taps ty = resize_taps(src.h, out_h, interp);
  std::vector<float> tmp(static_cast<size_t>(src.h) * out_w);
  for (int c = 0; c < src.c; ++c) {
    const float* s = src.plane(c);
    for (int y = 0; y < src.h; ++y) {
      const float* row = s + static_cast<size_t>(y) * src.w;
      float* out = tmp.data() + static_cast<size_t>(y) * out_w;
      for (int x = 0; x < out_w; ++x) {
        const int* ix = &tx.idx[static_cast<size_t>(x) * tx.k];
        const float* w = &tx.wt[static_cast<size_t>(x) * tx.k];
        float acc = row[ix[0]] * w[0];
        for (int j = 1; j < tx.k; ++j) acc += row[ix[j]] * w[j];
        out[x] = acc;
      }
    }
    float* d = dst.plane(c);
    for (int y = 0; y < out_h; ++y) {
      const int* iy = &ty.idx[static_cast<size_t>(y) * ty.k];
      const float* w = &ty.wt[static_cast<size_t>(y) * ty.k];
      float* out = d + static_cast<size_t>(y) * out_w;
      for (int x = 0; x < out_w; ++x) {
        float acc = tmp[static_cast<size_t>(iy[0]) * out_w + x] * w[0];
        for (int j = 1; j < ty.k; ++j) acc += tmp[static_cast<size_t>(iy[j]) * out_w + x] * w[j];
        out[x] = acc;
      }
    }
  }
  return dst;
}

Affine2x3 rotation_matrix_2d(double cx, double cy, double angle_deg, double scale) {
  // OpenCV takes the centre as Point2f; for the half-integer centres used here that is exact.
  const double a = angle_deg * M_PI / 180.0;
  const double alpha = std::cos(a) * scale, beta = std::sin(a) * scale;
  Affine2x3 M;
  M.m[0] = alpha;
  M.m[1] = beta;
  M.m[2] = (1 - alpha) * cx - beta * cy;
  M.m[3] = -beta;
  M.m[4] = alpha;
  M.m[5] = beta * cx + (1 - alpha) * cy;
  return M;
}

ImageF warp_affine(const ImageF& src, const Affine2x3& fwd, int out_h, int out_w, Interp interp) {
  check_size(src, out_h, out_w, "warp_affine");
  // Invert the forward map (dst <- src) to the sampling map (src <- dst), as cv::warpAffine does.
  double M[6];
  std::copy(fwd.m, fwd.m + 6, M);
  {
    double D = M[0] * M[4] - M[1] * M[3];
    D = D != 0 ? 1.0 / D : 0.0;
    const double a11 = M[4] * D, a22 = M[0] * D;
    M[0] = a11;
    M[1] *= -D;
    M[3] *= -D;
    M[4] = a22;
    const double b1 = -M[0] * M[2] - M[1] * M[5];
    const double b2 = -M[3] * M[2] - M[4] * M[5];
    M[2] = b1;
    M[5] = b2;
  }
  std::vector<int> adelta(out_w), bdelta(out_w);
  for (int x = 0; x < out_w; ++x) {
    adelta[x] = round_sat(M[0] * x * kAbScale);
    bdelta[x] = round_sat(M[3] * x * kAbScale);
  }
  const int round_delta = interp == Interp::nearest ? kAbScale / 2 : kAbScale / kTabSize / 2;

  // Weight tables indexed by the 1/32 sub-pixel position (float, as OpenCV's float remap tables).
  const int k = interp == Interp::cubic ? 4 : 2;
  std::vector<float> tab1d(static_cast<size_t>(kTabSize) * k);
  for (int i = 0; i < kTabSize; ++i) {
    const float f = i * (1.f / kTabSize);
    if (k == 4) {
      cubic_weights(f, &tab1d[static_cast<size_t>(i) * 4]);
    } else {
      tab1d[i * 2] = 1.f - f;
      tab1d[i * 2 + 1] = f;
    }
  }

  ImageF dst(src.c, out_h, out_w);
  const int sw = src.w, sh = src.h;
  for (int y = 0; y < out_h; ++y) {
    const int X0 = round_sat((M[1] * y + M[2]) * kAbScale) + round_delta;
    const int Y0 = round_sat((M[4] * y + M[5]) * kAbScale) + round_delta;
    for (int x = 0; x < out_w; ++x) {
      const size_t o = static_cast<size_t>(y) * out_w + x;
      if (interp == Interp::nearest) {
        const int sx = (X0 + adelta[x]) >> kAbBits;  // arithmetic shift = floor
        const int sy = (Y0 + bdelta[x]) >> kAbBits;
        const bool inside = sx >= 0 && sx < sw && sy >= 0 && sy < sh;
        for (int c = 0; c < src.c; ++c)
          dst.plane(c)[o] = inside ? src.plane(c)[static_cast<size_t>(sy) * sw + sx] : 0.f;
        continue;
      }
      const int X = (X0 + adelta[x]) >> (kAbBits - kInterBits);
      const int Y = (Y0 + bdelta[x]) >> (kAbBits - kInterBits);
      const int ix = X >> kInterBits, iy = Y >> kInterBits;
      const float* wx = &tab1d[static_cast<size_t>(X & (kTabSize - 1)) * k];
      const float* wy = &tab1d[static_cast<size_t>(Y & (kTabSize - 1)) * k];
      const int x0 = k == 4 ? ix - 1 : ix, y0 = k == 4 ? iy - 1 : iy;
      if (x0 >= sw || x0 + k <= 0 || y0 >= sh || y0 + k <= 0) {
        for (int c = 0; c < src.c; ++c) dst.plane(c)[o] = 0.f;
        continue;
      }
      const bool inside = x0 >= 0 && x0 + k <= sw && y0 >= 0 && y0 + k <= sh;
      for (int c = 0; c < src.c; ++c) {
        const float* s = src.plane(c);
        float acc = 0.f;
        for (int r = 0; r < k; ++r) {
          const int yy = y0 + r;
          if (!inside && (yy < 0 || yy >= sh)) continue;  // constant border: the tap reads 0
          const float* row = s + static_cast<size_t>(yy) * sw;
          float racc = 0.f;
          for (int j = 0; j < k; ++j) {
            const int xx = x0 + j;
            if (!inside && (xx < 0 || xx >= sw)) continue;
            racc += row[xx] * (wy[r] * wx[j]);
          }
          acc += racc;
        }
        dst.plane(c)[o] = acc;
      }
    }
  }
  return dst;
}

void flip_horizontal(ImageF& im) {
  for (int c = 0; c < im.c; ++c)
    for (int y = 0; y < im.h; ++y) {
      float* row = im.plane(c) + static_cast<size_t>(y) * im.w;
      std::reverse(row, row + im.w);
    }
}

}  // namespace m3vit
