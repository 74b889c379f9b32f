// The weight ring of stream mode (runtime/weight_stream.h) on its own: loads run ahead of use, at
// most `slots` of them (the ping-pong of the paper: the next weights arrive while the current ones
// are in use), a slot is reused only once released, a failed load is an error at acquire() naming
// it, and abort() wakes every waiter.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/errors.h"
#include "runtime/weight_stream.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit::rt {
namespace {

// Polls `cond` for up to 10 s.
template <class F>
bool eventually(F cond) {
  for (int i = 0; i < 1000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

class WeightRing : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = rt_test::scratch_dir("ring");
    path_ = dir_ + "/file.bin";
    std::ofstream(path_) << "0123456789abcdef";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A load that writes its value into the slot and counts itself.
  WeightStream::Load load(int value) {
    return [this, value](uint8_t* slot, dnnl::stream&) {
      std::memcpy(slot, &value, sizeof value);
      ++done_;
      return int64_t{4};
    };
  }
  std::string dir_, path_;
  std::atomic<int> done_{0};
  dnnl::engine eng_{dnnl::engine::kind::cpu, 0};
};

TEST_F(WeightRing, LoadsRunAheadIntoFreeSlotsOnly) {
  WeightStream ring(eng_, path_, 2, 64, 16);
  EXPECT_EQ(ring.slots(), 2);
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ring.post(load(100 + t)), t);
  // Nothing acquired yet: the first two loads happen anyway (prefetch), the third needs slot 0 back.
  ASSERT_TRUE(eventually([&] { return done_.load() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(done_.load(), 2) << "a load overwrote a slot still in use";
  int v = 0;
  const int s0 = ring.acquire(0);
  std::memcpy(&v, ring.slot(s0), 4);
  EXPECT_EQ(v, 100);
  ring.release(0);  // ticket 2 may now fill that slot while ticket 1 is in use
  const int s1 = ring.acquire(1);
  ASSERT_TRUE(eventually([&] { return done_.load() == 3; }));
  std::memcpy(&v, ring.slot(s1), 4);
  EXPECT_EQ(v, 101);
  const int s2 = ring.acquire(2);
  EXPECT_EQ(s2, s0);
  EXPECT_NE(s2, s1);
  std::memcpy(&v, ring.slot(s2), 4);
  EXPECT_EQ(v, 102);
  ring.release(1);
  ring.release(2);
  std::memcpy(&v, ring.slot(ring.acquire(3)), 4);
  EXPECT_EQ(v, 103);
  EXPECT_EQ(ring.stats().loads, 4);
  EXPECT_EQ(ring.stats().bytes_read, 16);
  // A new image: tickets start again at 0.
  ring.reset();
  EXPECT_EQ(ring.post(load(7)), 0);
  std::memcpy(&v, ring.slot(ring.acquire(0)), 4);
  EXPECT_EQ(v, 7);
}

TEST_F(WeightRing, FailedLoadAndAbortAreErrorsNotWaits) {
  WeightStream ring(eng_, path_, 2, 64, 16);
  ring.post([](uint8_t*, dnnl::stream&) -> int64_t { throw IoError("reading expert 3 of MoE layer 1 failed"); });
  try {
    ring.acquire(0);
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("expert 3 of MoE layer 1"), std::string::npos) << e.what();
  }
  // Ticket 1 is never posted: a waiter for it is woken by abort() with an error.
  std::thread waiter([&] { EXPECT_THROW(ring.acquire(1), IoError); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ring.abort();
  waiter.join();
  // The file reader names the file and what was read.
  ring.reset();
  char buf[64];
  try {
    ring.read(buf, 64, 8, "the qkv weights of block 0");
    ADD_FAILURE() << "no error reading past the end";
  } catch (const IoError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path_), std::string::npos) << m;
    EXPECT_NE(m.find("qkv weights of block 0"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace m3vit::rt
