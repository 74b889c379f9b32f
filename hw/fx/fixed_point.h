// ap_fx<W, I, Signed, Overflow>: a bit-accurate stand-in for the Xilinx `ap_fixed<W, I>` /
// `ap_ufixed<W, I>` types the Edge-MoE accelerator is written in (include/datatypes.hpp of
// sharc-lab/Edge-MoE at 984b23b), so the fixed-point encoder (hw/fx/fx_encoder.h) compiles
// without vendor headers and gives the numbers the synthesised design would give.
//
// Semantics, matching the vendor defaults Edge-MoE relies on:
//   * W total bits, I integer bits including the sign bit, F = W - I fraction bits. I may be 0
//     (ap_fixed<16,0>: range [-0.5, 0.5)).
//   * Quantisation is truncation toward minus infinity (AP_TRN): floor(x * 2^F) / 2^F.
//   * Overflow wraps around (AP_WRAP: keep the low W bits, sign-extend) or, in the saturating
//     mode this project adds for comparison, clamps to the representable range (AP_SAT).
//   * Products and sums of two values are exact (full precision, as in ap_fixed); precision is
//     lost only when a value is assigned to a narrower type. So `acc += x * w` computes
//     floor(acc + x*w) on acc's grid, exactly as `fm_t acc; acc += x * w;` does in HLS.
//
// Every wrap or saturation event increments a per-thread counter (fx_overflow_count()); this is
// emulation instrumentation with no hardware counterpart, used to report overflows per layer. Per
// thread, so that two encoders running in two threads each count only their own events.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace m3vit::hw {

enum class Ovf { wrap, saturate };

namespace detail {
inline thread_local uint64_t g_fx_overflows = 0;
}  // namespace detail

// Number of wrap/saturate events in this thread since its last reset.
inline uint64_t fx_overflow_count() { return detail::g_fx_overflows; }
inline void fx_reset_overflows() { detail::g_fx_overflows = 0; }

template <int W, int I, bool S = true, Ovf O = Ovf::wrap>
class ap_fx {
  // Up to 126 bits, so that exact intermediate results (a product of two 32-bit values plus a
  // 32-bit value) keep full precision as they do in ap_fixed.
  static_assert(W >= 1 && W <= 126, "ap_fx: width must be 1..126 bits");
  static_assert(W - I >= 0 && W - I <= 120, "ap_fx: fraction bits must be 0..120");

 public:
  static constexpr int width = W;
  static constexpr int iwidth = I;
  static constexpr int fwidth = W - I;
  static constexpr bool is_signed = S;
  static constexpr Ovf overflow = O;
  // Storage: the narrowest native integer that holds W bits (fm_t = 4 bytes, weights = 2 bytes),
  // so big activation buffers cost what they would in DRAM.
  using raw_t = std::conditional_t<
      (W <= 8), std::conditional_t<S, int8_t, uint8_t>,
      std::conditional_t<(W <= 16), std::conditional_t<S, int16_t, uint16_t>,
                         std::conditional_t<(W <= 32), std::conditional_t<S, int32_t, uint32_t>,
                                            std::conditional_t<(W <= 63), int64_t, __int128>>>>;

  static constexpr __int128 raw_max() {
    return S ? ((__int128)1 << (W - 1)) - 1 : ((__int128)1 << W) - 1;
  }
  static constexpr __int128 raw_min() { return S ? -((__int128)1 << (W - 1)) : 0; }

  constexpr ap_fx() = default;
  // From a real number: floor(x * 2^F), then overflow handling. NaN becomes 0 and +-inf the
  // extreme value of the wrap/saturate result; both count as overflow events.
  ap_fx(double x) { raw_ = from_wide(quantise_double(x)); }  // NOLINT: implicit like ap_fixed
  // From another fixed-point type: align the binary point (floor when dropping bits), then
  // overflow handling of this type.
  template <int W2, int I2, bool S2, Ovf O2>
  ap_fx(const ap_fx<W2, I2, S2, O2>& o) {  // NOLINT: implicit like ap_fixed
    raw_ = from_wide(align(o.raw(), ap_fx<W2, I2, S2, O2>::fwidth, fwidth));
  }

  // From a real number rounded to nearest, ties toward +infinity (ap_fixed's AP_RND):
  // floor(x * 2^F + 1/2), then overflow handling. Used for weights converted with rounding.
  static ap_fx rounded(double x) {
    ap_fx v;
    double scaled = std::ldexp(x, fwidth);
    // Below 2^51 adding 1/2 is exact in double; above, scaled is already an integer.
    if (std::fabs(scaled) < 0x1p51) scaled = std::floor(scaled + 0.5);
    v.raw_ = from_wide(quantise_double(std::ldexp(scaled, -fwidth)));
    return v;
  }

  static ap_fx from_raw(__int128 r) {
    ap_fx v;
    v.raw_ = from_wide(r);
    return v;
  }
  constexpr __int128 raw() const { return raw_; }
  constexpr raw_t bits() const { return raw_; }
  double to_double() const { return std::ldexp(static_cast<double>(raw_), -fwidth); }
  explicit operator double() const { return to_double(); }
  float to_float() const { return static_cast<float>(to_double()); }

  template <class T>
  ap_fx& operator+=(const T& o) {
    *this = ap_fx(*this + o);
    return *this;
  }
  template <class T>
  ap_fx& operator-=(const T& o) {
    *this = ap_fx(*this - o);
    return *this;
  }
  template <class T>
  ap_fx& operator*=(const T& o) {
    *this = ap_fx(*this * o);
    return *this;
  }

  // Shift of the binary point (`x >> n` divides by 2^n with floor, as ap_fixed's shift on a
  // value of the same type: the bits that fall off are truncated).
  ap_fx shr(int n) const { return from_raw(static_cast<__int128>(raw_) >> n); }

  // Moves a raw value from f_from fraction bits to f_to (floor when shifting right).
  static constexpr __int128 align(__int128 r, int f_from, int f_to) {
    return f_to >= f_from ? r * ((__int128)1 << (f_to - f_from)) : floor_shift(r, f_from - f_to);
  }

 private:
  static constexpr __int128 floor_shift(__int128 r, int n) { return r >> n; }  // arithmetic: floor

  static __int128 quantise_double(double x) {
    if (std::isnan(x)) {
      ++detail::g_fx_overflows;
      return 0;
    }
    double scaled = std::floor(std::ldexp(x, fwidth));
    // Beyond +-1e36 the wide integer itself would overflow; such a value overflows any W <= 120.
    if (scaled > 1e36) return raw_max() + 1 + ((__int128)1 << 100);
    if (scaled < -1e36) return raw_min() - 1 - ((__int128)1 << 100);
    if (scaled > -9e18 && scaled < 9e18) return static_cast<int64_t>(scaled);  // the common, fast case
    return static_cast<__int128>(scaled);
  }

  static raw_t from_wide(__int128 r) {
    if (r >= raw_min() && r <= raw_max()) return static_cast<raw_t>(r);
    ++detail::g_fx_overflows;
    if constexpr (O == Ovf::saturate) {
      return static_cast<raw_t>(r > raw_max() ? raw_max() : raw_min());
    } else {
      // Keep the low W bits and sign-extend (two's complement wrap-around).
      unsigned __int128 u = static_cast<unsigned __int128>(r);
      unsigned __int128 mask = ((unsigned __int128)1 << W) - 1;
      u &= mask;
      __int128 v = static_cast<__int128>(u);
      if (S && (u >> (W - 1)) & 1) v -= (__int128)1 << W;
      return static_cast<raw_t>(v);
    }
  }

  raw_t raw_ = 0;
};

template <int W, int I, Ovf O = Ovf::wrap>
using ap_ufx = ap_fx<W, I, false, O>;

// ---- exact arithmetic between two fixed-point values (result types as in ap_fixed) ----

template <class A, class B>
struct fx_sum_type {
  static constexpr int F = A::fwidth > B::fwidth ? A::fwidth : B::fwidth;
  static constexpr bool S = A::is_signed || B::is_signed;
  // integer bits of the wider operand (+1 if a signed/unsigned mix needs room for the sign), +1 carry
  static constexpr int IA = A::iwidth + (S && !A::is_signed ? 1 : 0);
  static constexpr int IB = B::iwidth + (S && !B::is_signed ? 1 : 0);
  static constexpr int I = (IA > IB ? IA : IB) + 1;
  static_assert(I + F <= 126, "ap_fx: sum wider than 126 bits");
  using type = ap_fx<I + F, I, S, A::overflow>;
};

template <class A, class B>
struct fx_prod_type {
  static constexpr bool S = A::is_signed || B::is_signed;
  static constexpr int extra = (A::is_signed != B::is_signed) ? 1 : 0;
  static constexpr int W = A::width + B::width + extra;
  static constexpr int I = A::iwidth + B::iwidth + extra;
  static_assert(W <= 126, "ap_fx: product wider than 126 bits");
  using type = ap_fx<W, I, S, A::overflow>;
};

template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
auto operator*(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) {
  using R = typename fx_prod_type<ap_fx<W1, I1, S1, O1>, ap_fx<W2, I2, S2, O2>>::type;
  return R::from_raw(a.raw() * b.raw());
}

template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
auto operator+(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) {
  using A = ap_fx<W1, I1, S1, O1>;
  using B = ap_fx<W2, I2, S2, O2>;
  using R = typename fx_sum_type<A, B>::type;
  return R::from_raw(A::align(a.raw(), A::fwidth, R::fwidth) + B::align(b.raw(), B::fwidth, R::fwidth));
}

template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
auto operator-(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) {
  using A = ap_fx<W1, I1, S1, O1>;
  using B = ap_fx<W2, I2, S2, O2>;
  using R0 = typename fx_sum_type<A, B>::type;
  using R = ap_fx<R0::width, R0::iwidth, true, O1>;  // a difference is signed
  return R::from_raw(A::align(a.raw(), A::fwidth, R::fwidth) - B::align(b.raw(), B::fwidth, R::fwidth));
}

// a / b as ap_fixed computes it (ap_fixed_base.h operator/): the quotient keeps a's fraction bits,
// (a.raw << F_b) / b.raw truncated toward zero (not floor), in a type wide enough to hold it.
// Edge-MoE's LayerNorm takes fm_t(1) / hls::sqrt(variance) this way (src/layernorm.cpp:118).
// A zero divisor (undefined in ap_fixed) gives the largest magnitude and counts as an overflow.
template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
auto fx_quotient(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) {
  constexpr int F2 = W2 - I2 > 0 ? W2 - I2 : 0;
  constexpr int s2 = S2 ? 1 : 0;
  using R = ap_fx<s2 + W1 + F2, s2 + I1 + F2, S1 || S2, O1>;
  if (b.raw() == 0) {
    ++detail::g_fx_overflows;
    return R::from_raw(a.raw() < 0 ? R::raw_min() : R::raw_max());
  }
  return R::from_raw((a.raw() * ((__int128)1 << F2)) / b.raw());  // C++ division truncates toward zero
}

template <int W, int I, bool S, Ovf O>
auto operator-(const ap_fx<W, I, S, O>& a) {
  using R = ap_fx<(W + 1 <= 126 ? W + 1 : 126), (W + 1 <= 126 ? I + 1 : I), true, O>;
  return R::from_raw(-a.raw());
}

template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
int fx_compare(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) {
  constexpr int F = ap_fx<W1, I1, S1, O1>::fwidth > ap_fx<W2, I2, S2, O2>::fwidth
                        ? ap_fx<W1, I1, S1, O1>::fwidth
                        : ap_fx<W2, I2, S2, O2>::fwidth;
  __int128 x = ap_fx<W1, I1, S1, O1>::align(a.raw(), ap_fx<W1, I1, S1, O1>::fwidth, F);
  __int128 y = ap_fx<W2, I2, S2, O2>::align(b.raw(), ap_fx<W2, I2, S2, O2>::fwidth, F);
  return x < y ? -1 : (x > y ? 1 : 0);
}
template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
bool operator<(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) { return fx_compare(a, b) < 0; }
template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
bool operator>(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) { return fx_compare(a, b) > 0; }
template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
bool operator<=(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) { return fx_compare(a, b) <= 0; }
template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
bool operator>=(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) { return fx_compare(a, b) >= 0; }
template <int W1, int I1, bool S1, Ovf O1, int W2, int I2, bool S2, Ovf O2>
bool operator==(const ap_fx<W1, I1, S1, O1>& a, const ap_fx<W2, I2, S2, O2>& b) { return fx_compare(a, b) == 0; }

namespace detail {
// Wraps or saturates a 64-bit raw value into T's range, counting the event.
template <class T>
int64_t fit64(int64_t s) {
  const int64_t lo = static_cast<int64_t>(T::raw_min()), hi = static_cast<int64_t>(T::raw_max());
  if (s >= lo && s <= hi) return s;
  ++g_fx_overflows;
  if constexpr (T::overflow == Ovf::saturate) {
    return s < lo ? lo : hi;
  } else {
    constexpr int W = T::width;
    uint64_t u = static_cast<uint64_t>(s) & ((W == 64) ? ~0ull : ((1ull << W) - 1));
    int64_t v = static_cast<int64_t>(u);
    if (T::is_signed && ((u >> (W - 1)) & 1)) v -= static_cast<int64_t>(1ull << (W - 1)) * 2;
    return v;
  }
}
}  // namespace detail

// acc + a[0]·b[0] + a[1]·b[stride] + ...: each step is exactly `acc += a[i] * b[i]` of the types
// (product exact, floored onto acc's grid, then acc's overflow handling), done in 64-bit integers.
// This is the multiply-accumulate of the linear and attention units, and the emulator's hot loop.
// An accumulator with more fraction bits than the product (the 48-bit accumulator of the a16
// formats, hw/fx/fx_encoder.h) takes the product exactly, shifted left.
// With WrapProducts, each product is first assigned to Acc (its own truncation and overflow
// handling) and then added: `Acc p = a[i] * b[i]; acc += p;`, the order of Edge-MoE's linear unit
// (src/linear.cpp:492-494). The floor is the same either way; only an overflowing product differs.
template <bool WrapProducts = false, class Acc, class A, class B>
Acc fx_dot(Acc acc, const A* a, const B* b, int n, int stride = 1) {
  constexpr int shift = A::fwidth + B::fwidth - Acc::fwidth;
  constexpr int lshift = shift < 0 ? -shift : 0, rshift = shift > 0 ? shift : 0;
  static_assert(A::width + B::width + lshift <= 63 || (lshift == 0 && A::width + B::width <= 64),
                "fx_dot: too wide for 64-bit emulation");
  static_assert(Acc::width <= 48, "fx_dot: accumulator too wide for 64-bit emulation");
  const int64_t lo = static_cast<int64_t>(Acc::raw_min()), hi = static_cast<int64_t>(Acc::raw_max());
  auto term = [&](int i) {
    const int64_t p = static_cast<int64_t>(a[i].bits()) * static_cast<int64_t>(b[static_cast<size_t>(i) * stride].bits());
    return lshift ? p * (int64_t{1} << lshift) : p >> rshift;  // arithmetic shift: floor
  };
  int64_t s = static_cast<int64_t>(acc.raw());
  // Fast path: when |acc| + Σ|term| stays in range no partial sum (and no product) can overflow,
  // so the plain sum is exactly the step-by-step result. Otherwise replay the steps one by one.
  {
    int64_t sum = 0, mag = 0;
    for (int i = 0; i < n; ++i) {
      int64_t t = term(i);
      sum += t;
      mag += t < 0 ? -t : t;
    }
    int64_t room = hi < -lo ? hi : -lo;
    if ((s < 0 ? -s : s) + mag <= room) return Acc::from_raw(s + sum);
  }
  for (int i = 0; i < n; ++i) {
    int64_t t = term(i);
    if constexpr (WrapProducts) t = detail::fit64<Acc>(t);
    s = detail::fit64<Acc>(s + t);
  }
  return Acc::from_raw(s);
}

// ---- math functions on fixed-point operands ----
// The HLS math library's fixed-point exp/sqrt/reciprocal return results within about one unit
// in the last place; we model them as the exact value truncated to the result type T.
template <class T, class X>
T fx_exp(const X& x) { return T(std::exp(x.to_double())); }
template <class T, class X>
T fx_sqrt(const X& x) {
  double v = x.to_double();
  return T(v > 0 ? std::sqrt(v) : 0.0);
}
// 1/x; a zero divisor yields the largest representable value (and counts as an overflow).
template <class T, class X>
T fx_recip(const X& x) {
  double v = x.to_double();
  if (v == 0) return T(1e300);
  return T(1.0 / v);
}
template <class T, class X, class Y>
T fx_div(const X& x, const Y& y) {
  double d = y.to_double();
  if (d == 0) return T(x.to_double() >= 0 ? 1e300 : -1e300);
  return T(x.to_double() / d);
}

}  // namespace m3vit::hw
