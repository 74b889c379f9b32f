// Helpers for the file-format tests: a fresh scratch directory under the build tree, and running a
// Python snippet with the oracle interpreter (/usr/bin/python3: numpy, torch 1.13).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace m3vit::test_io {

// mkdtemp under the build directory; removed by the caller (or left for inspection on failure).
inline std::string make_scratch_dir(const std::string& tag) {
  std::string tmpl = std::string(M3VIT_BINARY_DIR) + "/tmp-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  return buf.data();
}

struct PyResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Writes `code` to dir/name.py and runs it with /usr/bin/python3 and the given arguments.
inline PyResult run_python(const std::string& dir, const std::string& name, const std::string& code,
                           const std::string& args = "") {
  const std::string script = dir + "/" + name + ".py";
  {
    std::ofstream out(script);
    out << code;
  }
  const std::string cmd = "/usr/bin/python3 '" + script + "' " + args + " 2>&1";
  PyResult r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Replaces the file. Removing it first matters: rewriting an ext4 file with O_TRUNC forces a flush
// (auto_da_alloc) that costs ~7 ms, which a truncation sweep pays thousands of times.
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::filesystem::remove(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace m3vit::test_io
