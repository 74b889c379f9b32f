// Expert residency: where the weights of the expert being computed come from.
//
// - resident: every expert of every MoE layer is packed into RAM at load (the "all experts on chip"
//   design, O(E) memory).
// - stream: experts stay in the model file and come through the weight ring (runtime/weight_stream.h):
//   the paper's ping-pong buffers, O(1) in the number of experts. begin_layer() posts the loads of
//   the layer's active experts in compute order; acquire(i) waits only if the i-th has not arrived;
//   the last user of an expert release()s it, which lets the ring load the expert `slots` places
//   later into that buffer. The reader thread reorders the rows it reads into the packed layout of
//   the expert matmuls (and to bf16 in bf16 mode), so resident and streamed experts run the same
//   kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/matmul.h"
#include "runtime/weight_stream.h"

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

class ExpertStream {
 public:
  // fc1/fc2: the expert matmuls, whose layout the weights are packed into. ring: stream mode only.
  ExpertStream(DnnlContext& ctx, const ModelFile& file, ExpertMode mode, const MatmulBank& fc1, const MatmulBank& fc2,
               WeightStream* ring = nullptr);
  ExpertStream(const ExpertStream&) = delete;
  ExpertStream& operator=(const ExpertStream&) = delete;

  // One streamed expert in a ring slot: packed fc1 and fc2 with their biases.
  static size_t slot_bytes(const MatmulBank& fc1, const MatmulBank& fc2);
  // Stream mode: after the loads of MoE layer l are posted, after_layer(l) may post what follows
  // (the dense layers up to the next MoE layer, runtime/layer_stream.h).
  void set_after_layer(std::function<void(int)> after_layer) { after_layer_ = std::move(after_layer); }

  // Stream mode (begin_layer and abort do nothing for resident experts): starts a MoE layer (0-based
  // among MoE layers) whose experts will be computed in `active` order, posting their loads;
  // acquire(i) waits for the i-th and throws IoError if its read failed; release(i) frees its buffer.
  void begin_layer(int moe_layer, const std::vector<int32_t>& active);
  const ExpertWeights& acquire(int i);
  void release(int i);
  // After an error in the layer: every acquire() waiting or to come throws.
  void abort();
  // Resident mode: expert `expert` of MoE layer `moe_layer`, at any time, from any thread.
  const ExpertWeights& resident(int moe_layer, int expert) const { return resident_[moe_layer][expert]; }

  ExpertMode mode() const { return mode_; }
  size_t resident_bytes() const;  // bytes of the resident experts (0 in stream mode: they are in the ring)

 private:
  struct LayerSource {
    size_t w1, b1, w2, b2;  // file offsets of the stacked tensors
  };
  int64_t load(int layer, int expert, uint8_t* slot, dnnl::stream& strm) const;  // returns bytes read

  ExpertMode mode_;
  int d_ = 0, hid_ = 0, E_ = 0;
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
  std::vector<PackedWeights> slot_fc1_, slot_fc2_;  // per ring slot: views of its memory
  std::vector<ExpertWeights> slot_view_;
  int base_ = 0;  // ticket of the current layer's first expert
  std::function<void(int)> after_layer_;
};

}  // namespace m3vit::rt
