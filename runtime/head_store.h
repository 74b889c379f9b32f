// The task heads' 3×3 convs (conv_0 .. conv_3 of every task, each with its BatchNorm folded in),
// resident or streamed (runtime/options.h, Residency), behind one interface: the PUP head acquire()s
// the running task's conv_j before it runs and release()s it after, whatever the residency. They are
// the largest part of a head; the rest of it (LayerNorm, the 1×1 conv_4) is small and is held with
// the task's routers (runtime/task_switch.h).
//
// - resident: every task's convs packed into RAM at load, so switching task costs nothing.
// - stream: left in the model file; the running task's four convs come through the weight ring
//   (runtime/weight_stream.h) after the last dense layer, BatchNorm folded by the reader thread.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/config.h"
#include "runtime/ops/conv.h"
#include "runtime/options.h"
#include "runtime/weight_stream.h"

namespace m3vit::rt {

class ModelFile;

class HeadStore {
 public:
  // SyncBatchNorm's eps (mmcv default, vit_up_head.py:126-129); not part of ModelConfig.
  static constexpr double kBnEps = 1e-5;
  // The plans of conv_0 .. conv_3 (runtime/pup_head.h), whose packed layouts the weights take.
  using Plans = std::array<const ConvPlan*, 4>;

  // Resident: reads, folds and packs every task's convs. Stream (ring required): checks every conv
  // and BatchNorm tensor (by reading, without mapping it) and notes where it is.
  HeadStore(DnnlContext& ctx, const ModelFile& file, Residency residency, const Plans& plans,
            WeightStream* ring = nullptr);
  HeadStore(const HeadStore&) = delete;
  HeadStore& operator=(const HeadStore&) = delete;

  // The largest streamed conv (bytes in a slot) and the largest tensor as the file stores it
  // (bytes: fp32, or s8 in an int8 file), for sizing the ring.
  static size_t slot_bytes(const Plans& plans);
  static size_t staging_bytes(const ModelConfig& cfg, Precision prec);

  void begin_image(int task);  // the task whose convs acquire() returns
  void post();                 // stream: posts the task's four conv loads (after the last dense layer's)

  // The running task's conv_j, BatchNorm folded: resident at once, streamed once loaded (IoError if
  // its read failed). Call in order j = 0..3; release() frees the slot (stream).
  const PackedConv& acquire(int j);
  void release(int j);

  Residency residency() const { return residency_; }
  size_t resident_bytes() const;  // bytes of the packed convs (0 when streamed: they are in the ring)

 private:
  struct Source {
    size_t w[4] = {}, b[4] = {}, gamma[4] = {}, beta[4] = {}, mean[4] = {}, var[4] = {};  // file offsets
    size_t s[4] = {}, x[4] = {};  // int8: weight scales [c] and input step [1]
  };
  int64_t load(int task, int j, uint8_t* slot, dnnl::stream& strm) const;

  Residency residency_;
  int d_ = 0, c_ = 0;
  int task_ = 0;
  std::vector<std::array<PackedConv, 4>> packed_;  // resident: [task][j]
  // stream
  WeightStream* ring_ = nullptr;
  dnnl::engine eng_;
  std::vector<Source> src_;  // [task]
  std::vector<std::string> task_names_;
  dnnl::memory::desc packed_desc_[4];
  const ConvPlan* plans_[4] = {};  // pack streamed weights into their slots (the engine owns the plans)
  size_t bias_off_[4] = {};
  size_t scale_off_[4] = {};  // int8: s_x·s_w[o] (BatchNorm folded) [c] and s_x after the bias
  bool int8_ = false;
  std::vector<std::array<PackedConv, 4>> view_;  // [slot][j]
  std::array<int, 4> ticket_ = {};                // of the current image
};

}  // namespace m3vit::rt
