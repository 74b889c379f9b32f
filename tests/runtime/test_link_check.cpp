// The runtime library does not link libtorch, so it builds and runs without it (docs/ARCHITECTURE.md):
// this test binary links m3vit_runtime and nothing torch, so neither its link line nor its loaded
// libraries (the `ldd` view, read from /proc/self/maps) may name libtorch or libc10.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(NoTorch, NoLibtorchLoadedInARuntimeOnlyBinary) {
  const std::string maps = slurp("/proc/self/maps");
  ASSERT_FALSE(maps.empty());
  EXPECT_NE(maps.find("libdnnl"), std::string::npos) << "the runtime should have oneDNN loaded";
  EXPECT_EQ(maps.find("libtorch"), std::string::npos);
  EXPECT_EQ(maps.find("libc10"), std::string::npos);
}

TEST(NoTorch, LinkLineOfTheRuntimeTestHasNoTorch) {
  const std::string link = slurp(M3VIT_BINARY_DIR "/tests/CMakeFiles/test_runtime.dir/link.txt");
  ASSERT_NE(link.find("libm3vit_runtime.a"), std::string::npos) << link;
  for (const char* lib : {"libtorch", "libc10", "m3vit_model", "m3vit_train", "m3vit_torch_pch", "TORCH"})
    EXPECT_EQ(link.find(lib), std::string::npos) << lib << " in " << link;
}

}  // namespace
