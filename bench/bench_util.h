// Shared pieces of the benchmarks (header only; each bench/*.cpp is one executable): the peak table
// every efficiency figure refers to, wall-clock timing, resident-set readings and Markdown output.
// Benchmarks print Markdown sections on stdout; scripts/bench.sh collects them into
// docs/BENCHMARKS.md and adds the machine description.
#pragma once

// GCC 12's _mm512_reduce_add_ps starts from _mm512_undefined_ps(), which it then reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace m3vit::bench {

// ---- Peak table: the one source of every "% of peak" in the reports, for the CPU the bench runs on.
// fp32 per core = 2 FLOP × 16 lanes × (512-bit FMAs per cycle) × ~3.45 GHz. AMD's Zen 4 (family 0x19)
// executes a 512-bit FMA on its two 256-bit pipes, one per cycle: 110 GFLOP/s per core (measured
// here: 116 on 1 thread, 231 on 2, and one vpdpbusd per cycle alike). Zen 5 (family 0x1A) and
// AVX-512 Intel server cores have two full-width FMA pipes: 221 GFLOP/s per core (measured 221 on 1
// thread, 433 on 2). AVX512-BF16 (vdpbf16ps) does two bf16 products per fp32 lane: twice fp32.
constexpr double kClockGhz = 3.45;
inline bool amd_family_0x19() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0));
  const bool amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;  // "AuthenticAMD"
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1));
  const unsigned family = ((a >> 8) & 0xf) + ((a >> 20) & 0xff);
  return amd && family == 0x19;
}
inline int zmm_fmas_per_cycle() {
  static const int n = amd_family_0x19() ? 1 : 2;
  return n;
}
inline double peak_fp32_per_core() { return 2.0 * 16 * zmm_fmas_per_cycle() * kClockGhz; }
inline double peak_gflops(bool bf16, int threads) { return (bf16 ? 2.0 : 1.0) * peak_fp32_per_core() * threads; }
// The paragraph docs/BENCHMARKS.md opens with (scripts/bench.sh: bench_latency --peak-table).
inline void print_peak_table(int threads) {
  std::printf("Peak table (bench/bench_util.h, for this CPU): fp32 %.0f GFLOP/s per core (%s at ~%.2f GHz), %.0f on "
              "%d cores; bf16 (AVX512-BF16) twice that, %.0f on %d cores.\n",
              peak_fp32_per_core(),
              zmm_fmas_per_cycle() == 1 ? "one 512-bit FMA per cycle: Zen 4's two 256-bit pipes"
                                        : "two 512-bit FMA pipes",
              kClockGhz, peak_gflops(false, threads), threads, peak_gflops(true, threads), threads);
}

// An FMA microbenchmark (16 independent AVX-512 FMA chains per thread, no memory traffic) on
// `threads` OpenMP threads: what the cores deliver right now. Printed beside the documented peak,
// because a boosting clock can take the measured rate above the table and a shared machine below it.
__attribute__((target("avx512f,fma"))) inline double measured_fma_gflops(int threads) {
  constexpr int kChains = 16;
  constexpr long kIters = 20000000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      __m512 acc[kChains];
      const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
      for (long i = 0; i < kIters; ++i)
#pragma GCC unroll 16
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
      for (int c = 0; c < kChains; ++c) sink += _mm512_reduce_add_ps(acc[c]);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * 16 * kChains * kIters * threads / s / 1e9 + 0 * sink);
  }
  return best;
}

using clock_type = std::chrono::steady_clock;
inline double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}
inline double time_ms(const std::function<void()>& f) {
  const auto t0 = clock_type::now();
  f();
  return ms_since(t0);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
inline double minimum(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

// A field of /proc/self/status in kB ("VmHWM" = peak resident set, "VmRSS" = current).
inline long proc_status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  return -1;
}

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Markdown table row: "| a | b | c |".
inline std::string row(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const auto& c : cells) s += " " + c + " |";
  return s;
}
inline std::string rule(size_t n) {
  std::string s = "|";
  for (size_t i = 0; i < n; ++i) s += "---|";
  return s;
}

// `--name value` from argv, or the default.
inline std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}
inline bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == name) return true;
  return false;
}

}  // namespace m3vit::bench
