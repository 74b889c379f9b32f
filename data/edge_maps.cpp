// Laplacian and thinning for edge ground truth (data/edge_maps.h). The thinning tables are built here
// from the conditions G1, G2, G3 / G3' of Guo & Hall (1989), in the form scikit-image states them
// (skimage/morphology/_skeletonize.py, `_generate_thin_luts`), rather than copied as constants.
#include "data/edge_maps.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"

namespace m3vit {

namespace {

// Bit i of an 8-neighbourhood code, neighbours numbered counter-clockwise from east.
bool nb(int code, int i) { return (code >> i) & 1; }

// G1: exactly one 4-connected "crossing" (the pixel is a simple boundary point).
bool g1(int n) {
  int s = 0;
  for (int i : {0, 2, 4, 6})
    if (!nb(n, i) && (nb(n, i + 1) || nb(n, (i + 2) % 8))) ++s;
  return s == 1;
}

// G2: 2 <= min(n1, n2) <= 3 (not an end point, not interior).
bool g2(int n) {
  int n1 = 0, n2 = 0;
  for (int k : {1, 3, 5, 7}) {
    if (nb(n, k) || nb(n, k - 1)) ++n1;
    if (nb(n, k) || nb(n, (k + 1) % 8)) ++n2;
  }
  const int m = std::min(n1, n2);
  return m == 2 || m == 3;
}

// G3 (first subiteration) and G3' (second): delete only from one side at a time.
bool g3(int n) { return !((nb(n, 1) || nb(n, 2) || !nb(n, 7)) && nb(n, 0)); }
bool g3p(int n) { return !((nb(n, 5) || nb(n, 6) || !nb(n, 3)) && nb(n, 4)); }

std::vector<uint8_t> build_lut(bool second) {
  std::vector<uint8_t> lut(256);
  for (int n = 0; n < 256; ++n) lut[n] = g1(n) && g2(n) && (second ? g3p(n) : g3(n));
  return lut;
}

int reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

}  // namespace

const std::vector<uint8_t>& thin_lut(int subiteration) {
  static const std::vector<uint8_t> first = build_lut(false), second = build_lut(true);
  return subiteration == 0 ? first : second;
}

std::vector<double> laplacian4(const std::vector<double>& map, int h, int w) {
  if (h <= 0 || w <= 0 || map.size() != static_cast<size_t>(h) * w)
    throw ShapeError("laplacian4: map of " + std::to_string(map.size()) + " values is not " + std::to_string(h) +
                     "x" + std::to_string(w));
  std::vector<double> out(map.size());
  auto at = [&](int y, int x) { return map[static_cast<size_t>(reflect101(y, h)) * w + reflect101(x, w)]; };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      out[static_cast<size_t>(y) * w + x] =
          at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4.0 * map[static_cast<size_t>(y) * w + x];
  return out;
}

void thin_binary(std::vector<uint8_t>& bin, int h, int w) {
  if (bin.size() != static_cast<size_t>(h) * w) throw ShapeError("thin_binary: buffer does not match the size");
  // Work on a copy padded with a zero frame (scipy.ndimage.correlate, mode='constant'), so that the
  // neighbourhood code needs no bounds checks.
  const int W2 = w + 2;
  std::vector<uint8_t> img(static_cast<size_t>(h + 2) * W2, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img[static_cast<size_t>(y + 1) * W2 + x + 1] = bin[static_cast<size_t>(y) * w + x] ? 1 : 0;
  const ptrdiff_t nb[8] = {1, -W2 + 1, -W2, -W2 - 1, -1, W2 - 1, W2, W2 + 1};  // E NE N NW W SW S SE
  auto code = [&](size_t i) {
    int c = 0;
    for (int b = 0; b < 8; ++b) c |= img[i + nb[b]] << b;
    return c;
  };
  const auto& lut0 = thin_lut(0);
  const auto& lut1 = thin_lut(1);
  // Only pixels whose neighbourhood can make them deletable need a look: a pixel that neither table
  // deletes stays so until a neighbour is deleted, which puts it back on the active list. Decisions of a
  // subiteration still use the image as it was before it, exactly as the whole-image formulation, at a
  // cost proportional to the changes rather than the area times the iterations.
  std::vector<uint8_t> active_flag(img.size(), 0);
  std::vector<size_t> active, del;
  for (size_t i = 0; i < img.size(); ++i)
    if (img[i]) {
      const int c = code(i);
      if (lut0[c] || lut1[c]) active.push_back(i), active_flag[i] = 1;
    }
  bool changed = true;
  while (changed) {  // until an iteration (both subiterations) removes nothing
    changed = false;
    for (int sub = 0; sub < 2; ++sub) {
      const auto& lut = sub == 0 ? lut0 : lut1;
      del.clear();
      for (size_t i : active)
        if (lut[code(i)]) del.push_back(i);
      if (del.empty()) continue;
      changed = true;
      for (size_t i : del) img[i] = 0;
      for (size_t i : del)
        for (ptrdiff_t o : nb) {
          const size_t j = i + o;
          if (img[j] && !active_flag[j]) active.push_back(j), active_flag[j] = 1;
        }
      // Retire deleted pixels and those neither table can delete in their current neighbourhood.
      size_t keep = 0;
      for (size_t i : active) {
        if (img[i]) {
          const int c = code(i);
          if (lut0[c] || lut1[c]) {
            active[keep++] = i;
            continue;
          }
        }
        active_flag[i] = 0;
      }
      active.resize(keep);
    }
  }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) bin[static_cast<size_t>(y) * w + x] = img[static_cast<size_t>(y + 1) * W2 + x + 1];
}

std::vector<float> label_boundaries(const std::vector<double>& labels, int h, int w) {
  const std::vector<double> lap = laplacian4(labels, h, w);
  std::vector<uint8_t> bin(lap.size());
  for (size_t i = 0; i < lap.size(); ++i) bin[i] = std::fabs(lap[i]) > 0 ? 1 : 0;
  thin_binary(bin, h, w);
  return std::vector<float>(bin.begin(), bin.end());
}

}  // namespace m3vit
