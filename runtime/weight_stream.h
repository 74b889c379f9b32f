// The weight ring of stream mode: the software form of the paper's ping-pong weight buffers
// (M³ViT paper §3.2, Fig. 4; the ping/pong buffers of Edge-MoE's src/moe.cpp), with the model file
// in the role of DRAM and a few fixed buffers ("slots") in the role of on-chip memory.
//
// Users post loads in the order they will consume them; each load gets a ticket (0, 1, 2, ... per
// image). One reader thread fills slot (ticket mod slots) as soon as the ticket `slots` places
// earlier has been released, so while the compute threads work from one buffer the next weights
// arrive in another. acquire(ticket) waits only if that load has not finished. Memory is the slots,
// whatever the number of experts, layers or tasks.
//
// A load is a callback run on the reader thread: it preads its tensors from the model file and
// reorders them into the slot in the layout of the plan that will use them (runtime/ops), so
// streamed and resident weights run the same kernels. The users, the streamed weight stores of the
// experts, the dense layers and the head convs (runtime/expert_store.h, dense_store.h, head_store.h),
// share one ring, so the loads follow the order of the whole forward pass.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace m3vit::rt {

struct WeightStreamStats {
  int64_t loads = 0;       // loads done (experts, dense layers, head convs)
  int64_t bytes_read = 0;  // bytes read from the file
  double wait_ms = 0;      // time compute threads waited for a load (not hidden by compute)
};

class WeightStream {
 public:
  // A load: fills `slot` (slot_bytes, 64-byte aligned) and returns the bytes it read from the file.
  // Throws (IoError) when a read fails; the ticket's acquire() then throws the same message.
  using Load = std::function<int64_t(uint8_t* slot, dnnl::stream& strm)>;

  // path: the model file the loads read from. staging_bytes: the largest tensor a load reads as the
  // file stores it (fp32, or s8 in an int8 file) before reordering it into a slot (one buffer, used by
  // the reader thread only).
  WeightStream(const dnnl::engine& eng, const std::string& path, int slots, size_t slot_bytes, size_t staging_bytes);
  ~WeightStream();
  WeightStream(const WeightStream&) = delete;
  WeightStream& operator=(const WeightStream&) = delete;

  // Starts an image: lets loads in flight finish, forgets every ticket; the next post() is ticket 0.
  void reset();
  int post(Load load);        // queues a load; returns its ticket
  int acquire(int ticket);    // waits for the load; returns its slot. Throws IoError if it failed.
  void release(int ticket);   // the slot may take the ticket `slots` places later
  // After an error: every acquire() waiting or to come throws, until reset().
  void abort();

  // For loads (reader thread): reads `bytes` at file offset `off` (IoError naming `what` on failure);
  // the staging buffer.
  void read(void* dst, size_t bytes, size_t off, const std::string& what) const;
  float* staging() const { return staging_.get(); }  // 64-byte aligned: fp32 or s8 weights
  size_t staging_bytes() const { return staging_bytes_; }

  int slots() const { return static_cast<int>(slot_.size()); }
  size_t slot_bytes() const { return slot_bytes_; }
  uint8_t* slot(int s) const { return mem_.get() + static_cast<size_t>(s) * slot_bytes_; }
  size_t bytes() const { return slot_.size() * slot_bytes_ + staging_bytes_; }  // slots + staging
  const WeightStreamStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct Slot {
    int ticket = -1;  // the load it holds or is filling
    enum State { kFree, kLoading, kReady, kFailed } state = kFree;
    std::string error;
  };
  void reader_loop();

  dnnl::engine eng_;
  std::string path_;
  int fd_ = -1;
  size_t slot_bytes_ = 0, staging_bytes_ = 0;
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> mem_;
  std::unique_ptr<float, Free> staging_;
  std::vector<Slot> slot_;
  std::deque<Load> pending_;  // posted loads not started yet, in ticket order
  int next_ = 0;              // ticket of pending_.front()
  int posted_ = 0;            // tickets handed out since reset()
  int loading_ = 0;           // loads running on the reader (0 or 1)
  bool aborted_ = false, stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread reader_;
  WeightStreamStats stats_;
};

}  // namespace m3vit::rt
