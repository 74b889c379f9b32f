// Number formatting shared by the hardware model's tables and reports (hw_model, resources,
// calibration, report).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace m3vit::hw {

// printf of one double: fmt("%.2f", 1.5) = "1.50".
inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// An integer with thousands separators: 1536 → "1,536".
inline std::string thousands(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return (v < 0 ? "-" : "") + out;
}

}  // namespace m3vit::hw
