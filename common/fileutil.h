// Atomic file output: write to `<path>.tmp.<pid>`, fsync, rename. A crash or an error never
// leaves a partial file under the final name (guide: "nothing lost").
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace m3vit {

// Calls write(tmp_path), then fsyncs and renames tmp_path to path. If write throws, the
// temporary file is removed and the exception propagates.
void write_atomic(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// Writes bytes to path atomically.
void write_file_atomic(const std::string& path, const void* data, size_t size);
void write_file_atomic(const std::string& path, const std::string& text);

// Reads a whole file; throws IoError naming the path.
std::string read_file(const std::string& path);

bool file_exists(const std::string& path);

}  // namespace m3vit
