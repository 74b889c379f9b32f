// What every harness shares (docs/TESTING.md "Fuzzing").
//
// The rule: a reader given any bytes either returns or throws one of the project's typed errors
// (m3vit::Error, common/errors.h: what the CLI turns into "m3vit: error: ..." and exit code 2).
// Anything else fails the run: a crash or sanitizer report, another exception type (it escapes
// LLVMFuzzerTestOneInput and aborts), a hang past -timeout, or memory past -rss_limit_mb.
//
// Most readers take a path, as the CLI calls them: the input is then a memfd (an anonymous file in
// memory) named by /proc/self/fd/N, so open(), mmap() and fopen() see an ordinary file and no
// execution touches the disk.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/errors.h"

namespace m3vit::fuzz {

class InputFile {
 public:
  InputFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("m3vit-fuzz-input", MFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("memfd_create failed");  // the harness, not the reader
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) throw std::runtime_error("writing the memfd failed");
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Takes bytes off the front of the input for a harness's choices (which overrides, which channel
// count), leaving the rest for the reader. An exhausted input gives zeros.
class Choices {
 public:
  Choices(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  // A value in [lo, hi].
  int in_range(int lo, int hi) { return lo + static_cast<int>(byte() % static_cast<unsigned>(hi - lo + 1)); }
  const uint8_t* rest() const { return p_; }
  size_t rest_size() const { return static_cast<size_t>(end_ - p_); }
  std::string rest_string() const { return std::string(reinterpret_cast<const char*>(p_), rest_size()); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Runs one reader call; a typed error is the expected way to refuse bad input.
template <class F>
int expect_typed_errors(F&& read) {
  try {
    read();
  } catch (const m3vit::Error&) {
  }
  return 0;
}

}  // namespace m3vit::fuzz
