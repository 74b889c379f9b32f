// Expert residency: where the weights of the expert being computed come from.
//
// - resident: every expert of every MoE layer is packed into RAM at load (the "all experts on chip"
//   design, O(E) memory).
// - stream: experts stay in the model file. A reader thread preads the next expert's weights into one
//   of a few fixed buffers while the current expert computes from another: the paper's ping-pong
//   weight buffers (M³ViT §3.2; anchors.md §1.7; Edge-MoE's ping/pong, anchors.md §2.6), with the
//   model file in the role of DRAM and the buffers in the role of on-chip memory. Memory is O(1) in
//   the number of experts: `--memory-budget` bounds the buffers (at least two experts' worth).
//
// The MoE layer (runtime/moe_layer.cpp) walks its active experts in order and brackets each with
// acquire(i) / release(i); acquire waits only if the load of expert i has not finished yet. Both
// are thread-safe: the chunks of one expert may run on several threads, and the last one releases.
// In stream mode the reader thread also reorders the rows it read into the packed layout of the
// expert matmuls (and to bf16 in bf16 mode), so resident and streamed experts run the same kernels.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/matmul.h"

namespace m3vit {
struct ModelConfig;
}

namespace m3vit::rt {

class ModelFile;

enum class ExpertMode { resident, stream };
const char* to_string(ExpertMode m);
ExpertMode expert_mode_from_string(const std::string& s);  // "resident" | "stream"; throws ConfigError
// "512K", "64M", "1.5G" (powers of 1024) or plain bytes; throws ConfigError.
size_t parse_bytes(const std::string& s);

// One expert's packed weights while it computes: htoh4 (fc1, [hid, d]) and h4toh (fc2, [d, hid]).
struct ExpertWeights {
  const PackedWeights* fc1 = nullptr;
  const PackedWeights* fc2 = nullptr;
};

struct ExpertStreamStats {
  int64_t loads = 0;       // experts read from the file
  int64_t bytes_read = 0;  // bytes read from the file
  double wait_ms = 0;      // time the compute thread waited for a load (not hidden by compute)
};

class ExpertStream {
 public:
  // fc1/fc2: the expert matmuls, whose layout the weights are packed into. budget: stream-mode
  // bytes for the buffers, 0 = two experts; a budget below two experts is a ConfigError.
  ExpertStream(DnnlContext& ctx, const ModelFile& file, ExpertMode mode, size_t budget, const MatmulBank& fc1,
               const MatmulBank& fc2);
  ~ExpertStream();
  ExpertStream(const ExpertStream&) = delete;
  ExpertStream& operator=(const ExpertStream&) = delete;

  // Starts a MoE layer (0-based among MoE layers) whose experts will be computed in `active` order.
  void begin_layer(int moe_layer, const std::vector<int32_t>& active);
  const ExpertWeights& acquire(int i);  // the i-th active expert; throws IoError if its read failed
  void release(int i);
  // After an error in the layer: every acquire() waiting or to come throws, until the next
  // begin_layer() (which first lets the loads in flight finish).
  void abort();

  ExpertMode mode() const { return mode_; }
  int slots() const { return static_cast<int>(slot_.size()); }
  size_t buffer_bytes() const;   // bytes held for experts: all of them (resident) or the slots (stream)
  size_t expert_bytes() const { return expert_bytes_; }  // one expert's buffer
  const ExpertStreamStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct Slot {
    PackedWeights fc1, fc2;  // buffers in the packed layout
    int job = -1;            // index into active_ being loaded or held
    enum State { kFree, kLoading, kReady, kFailed } state = kFree;
    std::string error;
    ExpertWeights view;
  };
  struct LayerSource {
    size_t w1, b1, w2, b2;  // file offsets of the stacked tensors
  };
  struct Job {
    int layer, expert, index;  // index: position in the layer's active list; slot = index % slots
  };
  void post(int i);  // queue the load of active_[i] into slot i % slots (caller holds mu_)
  void reader_loop();
  int64_t load(int layer, int expert, Slot& s, dnnl::stream& strm);  // returns bytes read

  ExpertMode mode_;
  int d_ = 0, hid_ = 0, E_ = 0;
  size_t expert_bytes_ = 0;
  // resident
  std::vector<std::vector<PackedWeights>> fc1_, fc2_;  // [moe layer][expert]
  std::vector<std::vector<ExpertWeights>> resident_;
  // stream
  int fd_ = -1;
  std::string path_;
  std::vector<LayerSource> src_;
  std::vector<Slot> slot_;
  std::vector<float> staging_;  // [hid·d] fp32 rows as read, before the reorder into a slot
  dnnl::engine eng_;
  dnnl::reorder pack1_, pack2_;  // plain [out, in] fp32 -> packed layout (run by the reader thread)
  dnnl::memory::desc plain1_, plain2_;
  int layer_ = 0;
  std::vector<int32_t> active_;
  std::vector<Job> queue_;  // loads waiting for the reader (at most `slots` at a time)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool aborted_ = false;
  std::thread reader_;
  ExpertStreamStats stats_;
};

}  // namespace m3vit::rt
