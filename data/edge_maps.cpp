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
  for (auto& v : bin) v = v ? 1 : 0;
  // Neighbourhood code with a zero border (scipy.ndimage.correlate, mode='constant').
  auto code = [&](int y, int x) {
    auto px = [&](int yy, int xx) -> int {
      return (yy >= 0 && yy < h && xx >= 0 && xx < w) ? bin[static_cast<size_t>(yy) * w + xx] : 0;
    };
    return px(y, x + 1) | px(y - 1, x + 1) << 1 | px(y - 1, x) << 2 | px(y - 1, x - 1) << 3 | px(y, x - 1) << 4 |
           px(y + 1, x - 1) << 5 | px(y + 1, x) << 6 | px(y + 1, x + 1) << 7;
  };
  std::vector<size_t> fg, del;
  for (size_t i = 0; i < bin.size(); ++i)
    if (bin[i]) fg.push_back(i);
  bool changed = true;
  while (changed) {  // until an iteration (both subiterations) removes nothing
    changed = false;
    for (int sub = 0; sub < 2; ++sub) {
      const auto& lut = thin_lut(sub);
      del.clear();
      for (size_t i : fg) {  // decisions on the image as it was before this subiteration
        const int y = static_cast<int>(i / w), x = static_cast<int>(i % w);
        if (lut[code(y, x)]) del.push_back(i);
      }
      for (size_t i : del) bin[i] = 0;
      if (!del.empty()) {
        changed = true;
        fg.erase(std::remove_if(fg.begin(), fg.end(), [&](size_t i) { return bin[i] == 0; }), fg.end());
      }
    }
  }
}

std::vector<float> label_boundaries(const std::vector<double>& labels, int h, int w) {
  const std::vector<double> lap = laplacian4(labels, h, w);
  std::vector<uint8_t> bin(lap.size());
  for (size_t i = 0; i < lap.size(); ++i) bin[i] = std::fabs(lap[i]) > 0 ? 1 : 0;
  thin_binary(bin, h, w);
  return std::vector<float>(bin.begin(), bin.end());
}

}  // namespace m3vit
