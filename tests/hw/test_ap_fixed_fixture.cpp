// ap_fx (hw/fx/fixed_point.h) against the vendor's ap_fixed, bit for bit: the cases in
// tests/hw/fixtures/ap_fixed_cases.txt were computed with the public Xilinx arbitrary-precision
// headers (repository Xilinx/HLS_arbitrary_Precision_Types at 200a9ae) by
// tests/hw/fixtures/ap_fixed_gen.cpp, run by scripts/gen-ap-fixed-fixture.sh; the headers are not
// part of this repository. Each line gives the operands' raw bits and the raw bits ap_fixed
// produced; here the same operation runs on ap_fx and must give the same bits. Every type, mode
// and operation the fixed-point encoder uses is in the file (conversion from double with
// truncation and rounding, conversion between widths, products / sums / differences / quotients
// assigned to a type, multiply-accumulate), with wrap-around and saturation.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "hw/fx/fixed_point.h"

namespace m3vit::hw {
namespace {

template <class T>
std::string name() {
  return std::string(T::is_signed ? "f" : "u") + std::to_string(T::width) + "_" + std::to_string(T::iwidth);
}
template <Ovf O>
std::string mode(bool round = false) {
  return std::string(round ? "rnd_" : "trn_") + (O == Ovf::wrap ? "wrap" : "sat");
}

// A case: the fields after the key, returns ap_fx's raw result (sign-extended; unsigned as is).
using Case = std::function<int64_t(std::istringstream&)>;
using Table = std::map<std::string, Case>;

int64_t next(std::istringstream& in) {
  long long v = 0;
  in >> v;
  return v;
}

template <class T>
void add_conv(Table& t) {
  t["conv " + name<T>() + " " + mode<T::overflow>()] = [](std::istringstream& in) {
    std::string x;
    in >> x;
    return static_cast<int64_t>(T(std::strtod(x.c_str(), nullptr)).raw());
  };
  t["conv " + name<T>() + " " + mode<T::overflow>(true)] = [](std::istringstream& in) {
    std::string x;
    in >> x;
    return static_cast<int64_t>(T::rounded(std::strtod(x.c_str(), nullptr)).raw());
  };
}

template <class A, class T>
void add_cast(Table& t) {
  t["cast " + name<A>() + " " + name<T>() + " " + mode<T::overflow>()] = [](std::istringstream& in) {
    return static_cast<int64_t>(T(A::from_raw(next(in))).raw());
  };
}

template <class A, class B, class T>
void add_binary(Table& t) {
  const std::string types = name<A>() + " " + name<B>() + " " + name<T>() + " " + mode<T::overflow>();
  auto operands = [](std::istringstream& in) {
    A a = A::from_raw(next(in));
    B b = B::from_raw(next(in));
    return std::make_pair(a, b);
  };
  t["mul " + types] = [=](std::istringstream& in) { auto [a, b] = operands(in); return static_cast<int64_t>(T(a * b).raw()); };
  t["add " + types] = [=](std::istringstream& in) { auto [a, b] = operands(in); return static_cast<int64_t>(T(a + b).raw()); };
  t["sub " + types] = [=](std::istringstream& in) { auto [a, b] = operands(in); return static_cast<int64_t>(T(a - b).raw()); };
  t["div " + types] = [=](std::istringstream& in) {
    auto [a, b] = operands(in);
    return static_cast<int64_t>(T(fx_quotient(a, b)).raw());
  };
}

// acc += a[i] * b[i], both as the plain loop and as fx_dot (which must be the same loop).
template <class Acc, class A, class B>
void add_mac(Table& t) {
  t["mac " + name<Acc>() + " " + name<A>() + " " + name<B>() + " " + mode<Acc::overflow>()] = [](std::istringstream& in) {
    const int n = static_cast<int>(next(in));
    Acc acc = Acc::from_raw(next(in));
    std::vector<A> a(n);
    std::vector<B> b(n);
    for (auto& v : a) v = A::from_raw(next(in));
    for (auto& v : b) v = B::from_raw(next(in));
    Acc loop = acc;
    for (int i = 0; i < n; ++i) loop += a[i] * b[i];
    Acc dot = fx_dot(acc, a.data(), b.data(), n);
    EXPECT_EQ(static_cast<int64_t>(dot.raw()), static_cast<int64_t>(loop.raw())) << "fx_dot differs from the loop";
    return static_cast<int64_t>(loop.raw());
  };
}

// The combinations the generator writes, for one overflow mode.
template <Ovf O>
void add_all(Table& t) {
  using f32_10 = ap_fx<32, 10, true, O>;
  using f16_2 = ap_fx<16, 2, true, O>;
  using f16_7 = ap_fx<16, 7, true, O>;
  using f16_5 = ap_fx<16, 5, true, O>;
  using f16_0 = ap_fx<16, 0, true, O>;
  using u8_0 = ap_fx<8, 0, false, O>;
  using u22_0 = ap_fx<22, 0, false, O>;
  using f16_6 = ap_fx<16, 6, true, O>;
  using f48_24 = ap_fx<48, 24, true, O>;
  using f8_1 = ap_fx<8, 1, true, O>;
  using f8_0 = ap_fx<8, 0, true, O>;
  add_conv<f32_10>(t);
  add_conv<f16_2>(t);
  add_conv<f16_7>(t);
  add_conv<f16_5>(t);
  add_conv<f16_0>(t);
  add_conv<u8_0>(t);
  add_conv<u22_0>(t);
  add_conv<f16_6>(t);
  add_conv<f48_24>(t);
  add_conv<f8_1>(t);
  add_conv<f8_0>(t);
  add_cast<f32_10, f16_2>(t);
  add_cast<f32_10, f16_7>(t);
  add_cast<f32_10, f16_5>(t);
  add_cast<f32_10, f16_0>(t);
  add_cast<f32_10, u22_0>(t);
  add_cast<f32_10, u8_0>(t);
  add_cast<f32_10, f16_6>(t);
  add_cast<f32_10, f8_1>(t);
  add_cast<f48_24, f16_6>(t);
  add_cast<f48_24, f32_10>(t);
  add_cast<f16_6, f32_10>(t);
  add_cast<f16_7, f48_24>(t);
  add_cast<f16_5, f32_10>(t);
  add_binary<f32_10, f16_2, f32_10>(t);
  add_binary<f32_10, f32_10, f32_10>(t);
  add_binary<f32_10, f16_5, f32_10>(t);
  add_binary<f32_10, f16_7, f32_10>(t);
  add_binary<u8_0, f16_0, f32_10>(t);
  add_binary<u22_0, u22_0, u22_0>(t);
  add_binary<f16_6, f16_2, f48_24>(t);
  add_binary<f16_6, f8_1, f48_24>(t);
  add_binary<f16_6, f16_6, f48_24>(t);
  add_binary<f48_24, f32_10, f48_24>(t);
  add_binary<f48_24, f16_6, f16_6>(t);
  add_binary<f32_10, f8_1, f32_10>(t);
  add_mac<f32_10, f32_10, f16_2>(t);
  add_mac<f32_10, u8_0, f16_0>(t);
  add_mac<f32_10, f32_10, f32_10>(t);
  add_mac<f32_10, f32_10, f8_1>(t);
  add_mac<f48_24, f16_6, f16_2>(t);
  add_mac<f48_24, f16_6, f8_1>(t);
  add_mac<f48_24, f16_6, f16_6>(t);
  add_mac<f48_24, u8_0, f8_0>(t);
}

TEST(ApFixedFixture, ApFxGivesTheVendorsBits) {
  Table table;
  add_all<Ovf::wrap>(table);
  add_all<Ovf::saturate>(table);
  const std::string path = std::string(M3VIT_SOURCE_DIR) + "/tests/hw/fixtures/ap_fixed_cases.txt";
  std::ifstream f(path);
  ASSERT_TRUE(f) << "cannot read " << path;
  std::map<std::string, int> cases, failures;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string op, key, w;
    in >> op;
    // The key is the operation, its types and the mode: the words before the first number.
    key = op;
    const int words = op == "conv" ? 2 : op == "cast" ? 3 : 4;
    for (int i = 0; i < words; ++i) {
      in >> w;
      key += " " + w;
    }
    auto it = table.find(key);
    ASSERT_NE(it, table.end()) << "line " << lineno << ": no ap_fx case for '" << key << "'";
    // The expected raw value is the line's last number.
    const int64_t want = std::stoll(line.substr(line.find_last_of(' ') + 1));
    const int64_t got = it->second(in);
    ++cases[key];
    if (got != want && failures[key]++ < 3)
      ADD_FAILURE() << "line " << lineno << " (" << key << "): ap_fx " << got << ", ap_fixed " << want << "\n  " << line.substr(0, 200);
  }
  // Every combination of the table is in the file, with enough cases to mean something.
  for (const auto& [key, fn] : table) {
    if (key.rfind("div", 0) == 0 && key.find("f32_10 f32_10 f32_10") == std::string::npos) continue;  // quotients: one type
    if (key.rfind("conv", 0) == 0 && key.find("rnd") != std::string::npos &&
        (key.find(" u") != std::string::npos || key.find("f16_6") != std::string::npos || key.find("f48_24") != std::string::npos))
      continue;  // rounding only for the weight formats
    EXPECT_GE(cases[key], 10) << "too few cases for " << key;
  }
  int total = 0, bad = 0;
  for (const auto& [k, n] : cases) total += n;
  for (const auto& [k, n] : failures) bad += n;
  EXPECT_GT(total, 5000);
  EXPECT_EQ(bad, 0) << bad << " of " << total << " cases differ";
}

}  // namespace
}  // namespace m3vit::hw
