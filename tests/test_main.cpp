// Shared main for every test executable: malloc tuning and two threads, as the CLI does.
#include <gtest/gtest.h>

#include "common/platform.h"

int main(int argc, char** argv) {
  m3vit::tune_malloc();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
