// The config files the repository ships (configs/*.yaml, configs/hw/*.yaml), compiled into the
// library so that presets and paper models have one source, the YAML file, and the `m3vit` binary
// finds them from any working directory or install prefix. core/CMakeLists.txt generates the table.
#pragma once

#include <string>
#include <vector>

namespace m3vit {

// Text of a shipped file by its path from the repository root ("configs/hw/zcu104.yaml"), or
// nullptr when no such file is shipped.
const std::string* shipped_file(const std::string& relative_path);
// Paths of the shipped files that start with `prefix` ("configs/hw/"), sorted.
std::vector<std::string> shipped_files(const std::string& prefix);

}  // namespace m3vit
