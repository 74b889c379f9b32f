// The experts' weights, resident or streamed (runtime/options.h, Residency), behind one interface.
//
// - resident: every expert of every MoE layer is packed into RAM at load (the "all experts on chip"
//   design, O(E) memory).
// - stream: experts stay in the model file and come through the weight ring (runtime/weight_stream.h):
//   the paper's ping-pong buffers, O(1) in the number of experts. The reader thread reorders the rows
//   it reads into the packed layout of the expert matmuls (and to bf16 in bf16 mode), so resident and
//   streamed experts run the same kernels.
//
// The MoE layer (runtime/moe_layer.h) calls, per layer: begin_layer(l); once its tokens are routed,
// schedule(active) with the experts it will compute, in that order (streamed: their loads are
// posted); then acquire(i) waits only if the i-th has not arrived, and the last user of an expert
// release()s it, which lets the ring load the expert `slots` places later into that buffer.
// Resident experts can also be read in any order from any thread without a schedule (expert(e)),
// which lets the MoE layer's threads run without agreeing on an order first.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/matmul.h"
#include "runtime/options.h"
#include "runtime/weight_stream.h"

namespace m3vit::rt {

class ModelFile;

// One expert's packed weights while it computes: htoh4 (fc1, [hid, d]) and h4toh (fc2, [d, hid]).
struct ExpertWeights {
  const PackedWeights* fc1 = nullptr;
  const PackedWeights* fc2 = nullptr;
};

class ExpertStore {
 public:
  // fc1/fc2: the expert matmuls, whose layout the weights are packed into. ring: stream only.
  ExpertStore(DnnlContext& ctx, const ModelFile& file, Residency residency, const MatmulBank& fc1,
              const MatmulBank& fc2, WeightStream* ring = nullptr);
  ExpertStore(const ExpertStore&) = delete;
  ExpertStore& operator=(const ExpertStore&) = delete;

  // One streamed expert in a ring slot: packed fc1 and fc2 with their biases.
  static size_t slot_bytes(const MatmulBank& fc1, const MatmulBank& fc2);
  // The ring's staging buffer for one expert matmul as the file stores it (fc1's [hid, d], as fc2's).
  static size_t staging_bytes(const MatmulBank& fc1);
  // after_layer(l) runs once per MoE layer l, as soon as the experts of l need nothing more posted
  // to the ring (resident: at begin_layer; stream: after schedule() has posted their loads), so that
  // what the forward pass uses next may be posted behind them (runtime/dense_store.h).
  void set_after_layer(std::function<void(int)> after_layer) { after_layer_ = std::move(after_layer); }

  // Starts MoE layer `moe_layer` (0-based among MoE layers).
  void begin_layer(int moe_layer);
  // The experts of the layer in compute order (`active` must live until the layer ends).
  void schedule(const std::vector<int32_t>& active);
  // The i-th scheduled expert; waits for its load and throws IoError if its read failed.
  const ExpertWeights& acquire(int i);
  void release(int i);  // frees its buffer (stream)
  void abort();         // after an error in the layer: every acquire() waiting or to come throws (stream)

  // True for resident experts: expert(e) of the current layer may be read at any time, from any
  // thread, in any order, without schedule() or acquire().
  bool any_order() const { return residency_ == Residency::resident; }
  const ExpertWeights& expert(int e) const { return resident_[layer_][e]; }

  Residency residency() const { return residency_; }
  size_t resident_bytes() const;  // bytes of the resident experts (0 when streamed: they are in the ring)

 private:
  struct LayerSource {
    size_t w1, b1, w2, b2;  // file offsets of the stacked tensors
    size_t s1 = 0, x1 = 0, s2 = 0, x2 = 0;  // int8: weight scales [E, out] and input steps [E]
  };
  int64_t load(int layer, int expert, uint8_t* slot, dnnl::stream& strm) const;  // returns bytes read

  Residency residency_;
  int d_ = 0, hid_ = 0, E_ = 0;
  int layer_ = 0;                                   // the current MoE layer
  const std::vector<int32_t>* active_ = nullptr;  // its schedule
  // resident
  std::vector<std::vector<PackedWeights>> fc1_, fc2_;  // [moe layer][expert]
  std::vector<std::vector<ExpertWeights>> resident_;
  // stream
  WeightStream* ring_ = nullptr;
  dnnl::engine eng_;
  std::vector<LayerSource> src_;
  dnnl::reorder pack1_, pack2_;  // plain [out, in] fp32 -> packed layout (run by the reader thread)
  dnnl::memory::desc plain1_, plain2_, packed1_, packed2_;
  size_t off_b1_ = 0, off_w2_ = 0, off_b2_ = 0;  // byte offsets in a slot (fc1 weights at 0)
  // int8: the scales s_x·s_w[n] and s_x after each bias ([hid + 1] and [d + 1] floats)
  size_t off_s1_ = 0, off_s2_ = 0;
  bool int8_ = false;
  std::vector<PackedWeights> slot_fc1_, slot_fc2_;  // per ring slot: views of its memory
  std::vector<ExpertWeights> slot_view_;
  int base_ = 0;  // ticket of the current layer's first expert
  std::function<void(int)> after_layer_;
};

}  // namespace m3vit::rt
