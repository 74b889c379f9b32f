// Pieces shared by the subcommands (cli/cli_util.h).
#include "cli/cli_util.h"

#include <cstdio>
#include <filesystem>

#include "common/errors.h"

namespace m3vit::cli {

void check_output_dir(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    throw IoError(flag + " " + path + ": folder " + dir.string() + " does not exist");
}

std::string logits_hash(const float* p, size_t n) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n * 4; ++i) h = (h ^ b[i]) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

std::string size_str(int64_t h, int64_t w) { return std::to_string(w) + "x" + std::to_string(h); }

}  // namespace m3vit::cli
