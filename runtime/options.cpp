// Engine options from and to the command line's words (runtime/options.h).
#include "runtime/options.h"

#include <cmath>

#include "common/errors.h"

namespace m3vit::rt {

const char* to_string(Residency r) { return r == Residency::stream ? "stream" : "resident"; }

Residency residency_from_string(const std::string& s) {
  if (s == "resident") return Residency::resident;
  if (s == "stream") return Residency::stream;
  throw ConfigError("unknown expert mode '" + s + "' (expected resident or stream)");
}

const char* to_string(Precision p) { return p == Precision::int8 ? "int8" : p == Precision::bf16 ? "bf16" : "fp32"; }

Precision precision_from_string(const std::string& s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  if (s == "int8") return Precision::int8;
  throw ConfigError("unknown precision '" + s + "' (expected fp32, bf16 or int8)");
}

size_t parse_bytes(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    throw ConfigError("cannot read a byte count from '" + s + "' (examples: 8M, 1.5G, 4096)");
  }
  std::string unit = s.substr(pos);
  double mul = 1;
  if (unit == "" || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KiB" || unit == "k") mul = 1024.0;
  else if (unit == "M" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else throw ConfigError("unknown unit '" + unit + "' in byte count '" + s + "' (use K, M or G)");
  if (!(v >= 0) || !std::isfinite(v)) throw ConfigError("byte count '" + s + "' must be a non-negative number");
  return static_cast<size_t>(v * mul);
}

}  // namespace m3vit::rt
