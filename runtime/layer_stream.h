// Stream mode for the dense layers and the task heads (EngineOptions::layers = stream): the weights
// of every attention and dense MLP layer and of the heads' 3×3 convs stay in the model file and come
// through the weight ring (runtime/weight_stream.h), like the experts do in expert stream mode. On
// the paper's accelerator every layer's weights come from DRAM through on-chip buffers; this is that
// design on a CPU: what stays in RAM is the ring, the routers, the norms, the embeddings and the
// heads' 1×1 convs, whatever the number of layers, experts or tasks.
//
// The loads are posted in the order of the forward pass, a segment at a time. Segment 0 runs from
// block 0 to the attention of the first MoE block; segment l+1 from the MLP after MoE layer l to the
// attention of the next MoE block; the last segment also holds the running task's head convs. A
// segment is posted when the loads before it are known: segment 0 at the start of the image, segment
// l+1 right after MoE layer l has posted its experts (streamed experts) or before it runs (resident
// experts), so the reader is never idle while a later load is known.
//
// Each slot has a view per kind of load made once (PackedWeights / PackedConv over the slot's
// memory), so an acquired layer is a pointer to the view: nothing is created per image.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/ops/conv.h"
#include "runtime/ops/matmul.h"
#include "runtime/weight_stream.h"

namespace m3vit::rt {

class ModelFile;

class LayerStream {
 public:
  enum Kind { kQkv, kProj, kFc1, kFc2, kKinds };
  // The plans whose packed layouts the weights are reordered into.
  struct Plans {
    const MatmulPlan* dense[kKinds] = {};  // qkv, proj, fc1, fc2
    const ConvPlan* conv[4] = {};           // the head's conv_0 .. conv_3
  };

  // Checks every streamed tensor (by reading, without mapping it) and notes where it is.
  LayerStream(DnnlContext& ctx, const ModelFile& file, const Plans& plans, WeightStream& ring);
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // The largest load (bytes in a slot) and the largest tensor as read (floats), for sizing the ring.
  static size_t slot_bytes(const Plans& plans);
  static size_t staging_floats(const ModelConfig& cfg);

  void begin_image(int task);       // after the ring's reset(): posts segment 0
  void after_moe_layer(int layer);  // posts segment layer + 1

  // Waits for a layer's weights; done() frees the slot. Call in forward-pass order.
  const PackedWeights& dense(int block, Kind kind);
  void done(int block, Kind kind);
  const PackedConv& head_conv(int j);  // the running task's conv_j, BatchNorm folded
  void head_done(int j);

 private:
  struct Item {
    int block;  // -1: a head conv
    int kind;   // Kind, or the conv index
  };
  struct DenseSource {
    size_t w[kKinds] = {}, b[kKinds] = {};  // file offsets (b: 0 when the layer has no bias)
  };
  struct HeadSource {
    size_t w[4] = {}, b[4] = {}, gamma[4] = {}, beta[4] = {}, mean[4] = {}, var[4] = {};
  };
  void post(const std::vector<Item>& segment, bool with_head);
  int64_t load_dense(int block, int kind, uint8_t* slot, dnnl::stream& strm) const;
  int64_t load_conv(int task, int j, uint8_t* slot, dnnl::stream& strm) const;

  WeightStream& ring_;
  dnnl::engine eng_;
  int d_ = 0, c_ = 0;
  int in_[kKinds] = {}, out_[kKinds] = {};  // [out, in] of each dense kind
  bool has_bias_[kKinds] = {};
  std::vector<DenseSource> dense_src_;  // [block]; unused for MoE blocks' MLP
  std::vector<HeadSource> head_src_;    // [task]
  std::vector<std::string> task_names_;
  std::vector<std::vector<Item>> segments_;
  dnnl::memory::desc packed_dense_[kKinds], packed_conv_[4];
  dnnl::reorder pack_dense_[kKinds], pack_conv_[4];
  size_t dense_bias_off_[kKinds] = {}, conv_bias_off_[4] = {};
  std::vector<std::array<PackedWeights, kKinds>> dense_view_;  // [slot][kind]
  std::vector<std::array<PackedConv, 4>> conv_view_;          // [slot][j]
  // Tickets of the current image.
  int task_ = 0;
  std::vector<std::array<int, kKinds>> dense_ticket_;  // [block][kind]
  std::array<int, 4> conv_ticket_ = {};
};

}  // namespace m3vit::rt
