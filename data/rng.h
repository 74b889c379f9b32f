// Counter-based random numbers for data generation and augmentation.
// Every random decision is a pure function of a key such as (seed, epoch, sample index), so results do
// not depend on thread timing or on which worker handles a sample. The authors draw from numpy's global
// generator instead (data/custom_transforms.py:36-45, 167), which is reproducible only single-threaded;
// our draws are therefore not bit-identical to theirs, only identically distributed.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace m3vit {

// SplitMix64 finaliser: a bijective 64-bit mixer with full avalanche.
inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Hashes a tuple of integers into one key (order matters).
inline uint64_t hash_key(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x6a09e667f3bcc909ULL;
  for (uint64_t p : parts) h = mix64(h ^ mix64(p));
  return h;
}

// A small sequential generator (SplitMix64 stream) started from a key.
class Rng {
 public:
  explicit Rng(uint64_t key) : state_(mix64(key)) {}
  uint64_t next_u64() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n).
  int below(int n) { return static_cast<int>(uniform() * n); }
  bool chance(double p) { return uniform() < p; }
  // Standard normal (Box-Muller, one value per call).
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

// A stateless uniform in [0,1) for a key (per-pixel noise inside parallel loops).
inline double hash_uniform(uint64_t key) { return static_cast<double>(mix64(key) >> 11) * 0x1.0p-53; }

}  // namespace m3vit
