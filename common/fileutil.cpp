#include "common/fileutil.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "common/errors.h"

namespace m3vit {

void write_atomic(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) throw IoError("cannot reopen " + tmp + " to sync it: " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw IoError("cannot rename " + tmp + " to " + path + ": " + why);
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  write_atomic(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw IoError("cannot write " + path + ": " + std::strerror(errno));
    size_t n = size ? std::fwrite(data, 1, size, f) : 0;
    bool ok = (n == size) && std::fflush(f) == 0;
    std::fclose(f);
    if (!ok) throw IoError("short write to " + path);
  });
}

void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace m3vit
