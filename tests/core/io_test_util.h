// Utilities for the file-format tests: a fresh scratch directory under the build tree, an error
// check, and running a Python snippet with the oracle interpreter (/usr/bin/python3: numpy, torch 1.13).
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

// Writes `text` to build/tmp-<tag>/<name> and returns the path.
inline std::string write_scratch_file(const std::string& tag, const std::string& name, const std::string& text) {
  const std::filesystem::path dir = std::filesystem::path(M3VIT_BINARY_DIR) / ("tmp-" + tag);
  std::filesystem::create_directories(dir);
  const std::filesystem::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs `f` and expects an exception of type E whose message is one line and contains every part.
template <class E, class F>
void expect_error_naming(F&& f, const std::vector<std::string>& parts, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error thrown";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message must be one line: " << msg;
  }
}

struct PyResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command; its exit status and its stdout and stderr together.
inline PyResult run_command(const std::string& cmd) {
  PyResult r;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

// Writes `code` to dir/name.py and runs it with /usr/bin/python3 and the given arguments.
inline PyResult run_python(const std::string& dir, const std::string& name, const std::string& code,
                           const std::string& args = "") {
  const std::string script = dir + "/" + name + ".py";
  {
    std::ofstream out(script);
    out << code;
  }
  return run_command("/usr/bin/python3 '" + script + "' " + args);
}

inline std::vector<uint8_t> read_bytes(const std::string& path);

// The message of the E that f() throws, or "" when it throws none (the caller's expectation on the
// message then fails).
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// Fixture files made by a Python script, cached under the build tree by a hash of the script and
// its input files. ctest runs every test case in its own process; without the cache each would pay
// the ~2 s torch import again. The script gets the directory as argv[1] (inputs copied into it) and
// must print PY_OK. Concurrent processes race benignly: each builds in its own temp dir, the first
// rename wins. Returns the directory, or "" with *log set when the script failed.
inline std::string cached_python_fixture(const std::string& tag, const std::string& code,
                                         const std::vector<std::string>& inputs, std::string* log) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the script and the inputs' bytes
  auto mix = [&h](const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  };
  mix(code.data(), code.size());
  for (const auto& in : inputs) {
    auto b = read_bytes(in);
    mix(b.data(), b.size());
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  const std::string final_dir = std::string(M3VIT_BINARY_DIR) + "/tmp-fixture-" + tag + "-" + hex;
  if (std::filesystem::exists(final_dir + "/PY_OK")) {
    if (log) {
      std::ifstream in(final_dir + "/PY_OK");
      log->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return final_dir;
  }
  const std::string work = make_scratch_dir(tag + "-gen");
  for (const auto& in : inputs)
    std::filesystem::copy_file(in, work + "/" + std::filesystem::path(in).filename().string());
  PyResult r = run_python(work, "make_" + tag, code, work);
  if (r.status != 0 || r.output.find("PY_OK") == std::string::npos) {
    if (log) *log = r.output;
    return "";
  }
  std::ofstream(work + "/PY_OK") << r.output;
  std::error_code ec;
  std::filesystem::rename(work, final_dir, ec);
  if (ec) std::filesystem::remove_all(work);  // another process got there first
  if (log) *log = r.output;
  return final_dir;
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
