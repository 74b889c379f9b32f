// The weights of the blocks' dense layers (attention qkv and proj, and the dense MLP's fc1 and fc2
// in the blocks without MoE), resident or streamed (runtime/options.h, Residency), behind one
// interface: the backbone acquire()s a layer's packed weights right before its matmul and release()s
// them right after, whatever the residency.
//
// - resident: packed into RAM at load.
// - stream: left in the model file and brought in through the weight ring (runtime/weight_stream.h),
//   as the experts are when they stream. On the paper's accelerator every layer's weights come from
//   DRAM through on-chip buffers; this is that design on a CPU.
//
// Streamed loads are posted in the order of the forward pass, a segment at a time. Segment 0 runs from
// block 0 to the attention of the first MoE block; segment l+1 from the MLP after MoE layer l to the
// attention of the next MoE block. A segment is posted as soon as the loads before it are known:
// segment 0 at begin_image(), segment l+1 at after_moe_layer(l), which the expert store calls once
// MoE layer l's experts are posted (runtime/expert_store.h), so the reader is never idle while a
// later load is known. After the last segment, after_last() lets the task head's convs follow
// (runtime/head_store.h).
//
// Each slot has a view per kind of layer made once (PackedWeights over the slot's memory), so an
// acquired layer is a pointer to the view: nothing is created per image.
#pragma once

#include <array>
#include <functional>
#include <vector>

#include "core/config.h"
#include "runtime/ops/matmul.h"
#include "runtime/options.h"
#include "runtime/weight_stream.h"

namespace m3vit::rt {

class ModelFile;

class DenseStore {
 public:
  enum Kind { kQkv, kProj, kFc1, kFc2, kKinds };
  // The plans whose packed layouts the weights are packed into: qkv, proj, fc1, fc2.
  using Plans = std::array<const MatmulPlan*, kKinds>;

  // Resident: packs every dense layer. Stream (ring required): checks every dense tensor (by reading,
  // without mapping it) and notes where it is.
  DenseStore(DnnlContext& ctx, const ModelFile& file, Residency residency, const Plans& plans,
             WeightStream* ring = nullptr);
  DenseStore(const DenseStore&) = delete;
  DenseStore& operator=(const DenseStore&) = delete;

  // The largest streamed load (bytes in a slot) and the largest tensor as the file stores it
  // (bytes: fp32, or s8 in an int8 file), for sizing the ring.
  static size_t slot_bytes(const Plans& plans);
  static size_t staging_bytes(const ModelConfig& cfg, Precision prec);
  // after_last() runs once per image, as soon as this store has posted its last load (resident: at
  // begin_image), so that the head's loads follow the dense layers'.
  void set_after_last(std::function<void()> after_last) { after_last_ = std::move(after_last); }

  // After the ring's reset(): posts segment 0 (stream). A pass that resumes from the tokens saved at
  // the first MoE block (runtime/backbone.h, Prefix) skips segment 0: its loads were the shared work.
  void begin_image(bool skip_first_segment = false);
  void after_moe_layer(int layer);  // posts segment layer + 1 (stream)

  // A layer's weights: resident at once, streamed once loaded (IoError if its read failed). Call in
  // forward-pass order; release() frees the slot (stream).
  const PackedWeights& acquire(int block, Kind kind);
  void release(int block, Kind kind);

  Residency residency() const { return residency_; }
  size_t resident_bytes() const;  // bytes of the packed layers (0 when streamed: they are in the ring)

 private:
  struct Item {
    int block;
    Kind kind;
  };
  struct Source {
    size_t w[kKinds] = {}, b[kKinds] = {};  // file offsets (b: 0 when the layer has no bias)
    size_t s[kKinds] = {}, x[kKinds] = {};  // int8: weight scales [out] and input step [1]
  };
  void post(size_t segment);
  int64_t load(int block, int kind, uint8_t* slot, dnnl::stream& strm) const;

  Residency residency_;
  // resident: [block][kind] (fc1/fc2 empty for a MoE block)
  std::vector<std::array<PackedWeights, kKinds>> packed_;
  // stream
  WeightStream* ring_ = nullptr;
  dnnl::engine eng_;
  int in_[kKinds] = {}, out_[kKinds] = {};  // [out, in] of each kind
  bool has_bias_[kKinds] = {};
  std::vector<Source> src_;  // [block]; unused for MoE blocks' MLP
  std::vector<std::vector<Item>> segments_;
  dnnl::memory::desc packed_desc_[kKinds];
  dnnl::reorder pack_[kKinds];
  size_t bias_off_[kKinds] = {};
  size_t scale_off_[kKinds] = {};  // int8: s_x·s_w[n] [out] and s_x after the bias
  bool int8_ = false;
  std::vector<std::array<PackedWeights, kKinds>> view_;  // [slot][kind]
  std::vector<std::array<int, kKinds>> ticket_;           // [block][kind] of the current image
  std::function<void()> after_last_;
};

}  // namespace m3vit::rt
