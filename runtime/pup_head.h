// The PUP task head on oneDNN (authors: models/vit_up_head.py:149-224), for one task:
//   last block tokens [N, d] → drop cls → LayerNorm → [h, w, d]
//   → conv_0 3×3 d→c + BN + ReLU → ×2 → conv_1 3×3 + BN + ReLU → ×2 → conv_2 ... → ×2 → conv_3 ...
//   → conv_4 1×1 c→C → ×2 bilinear → [C, 16h, 16w], then bilinear to the input size if that differs
//   (models.py:248).
// Activations are in oneDNN's blocked layout nChw16c (runtime/ops/conv.h), where fp32 3×3 convs run
// as Winograd. The ×2 upsampled maps, which are the largest (at 512×512 the input of conv_3 is
// 256×256×256 fp32 = 64 MiB), are never stored whole: each conv on an upsampled map runs in row bands,
// upsampling just the band's rows plus a one-row halo into a small buffer, and conv_4 (1×1) and the
// final ×2 run on each conv_3 band as it comes out.
// Plans are shared by all tasks. A task's 3×3 convs (BN folded) come from the head store
// (runtime/head_store.h, resident or streamed); its LayerNorm and conv_4 live in task_switch.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "runtime/ops/conv.h"
#include "runtime/workspace.h"

namespace m3vit::rt {

class HeadStore;
class ModelFile;

// One task's head weights besides its 3×3 convs (those are in the head store), packed for the
// PupHead plans.
struct HeadWeights {
  int out_channels = 0;
  std::vector<float> norm_w, norm_b;  // [d]
  PackedConv conv4;                   // conv_4 (1×1)
  size_t bytes() const;
};

class PupHead {
 public:
  static constexpr int kBandPixels = 8192;  // output pixels per band: [32, 256] rows at 512×512 input
  // int8 mode: half the band. Its weights are a quarter of fp32's, so the band buffers (and the int8
  // convs' scratch, which scales with them) are most of what an all-streamed run holds; the int8
  // Winograd's chunks are independent of the band, so smaller bands cost little.
  static constexpr int kBandPixelsInt8 = 4096;

  PupHead() = default;
  // winograd: run the 3×3 convs as Winograd (runtime/ops/conv.h: faster; fp32: 4× the conv weights);
  // winograd_tile: 4 or 2, the bf16 and int8 Winograd's F(m×m) (runtime/options.h).
  PupHead(DnnlContext& ctx, const ModelConfig& cfg, Precision prec, bool winograd, int winograd_tile = 4);

  // Reads and packs the LayerNorm and conv_4 of `task`'s head.
  HeadWeights pack(const ModelFile& file, const std::string& task, int out_channels);

  // tokens [N, d] (cls first) -> out [C, img_h, img_w]. w: the task's LayerNorm and conv_4; convs:
  // the store of its 3×3 convs, begun with the task (HeadStore::begin_image). work: the shared
  // workspace, at least work_floats() floats.
  void forward(const float* tokens, const HeadWeights& w, HeadStore& convs, float* out, float* work);
  size_t work_floats() const { return layout_.floats; }

  // True when every 3×3 conv runs as oneDNN's Winograd kernel (fp32 on AVX-512).
  bool winograd() const;
  // The plan of conv_j (0: on the tokens' map, 1-3: on the upsampled maps).
  const ConvPlan& conv_plan(int j) const { return j == 0 ? conv0_ : up_[j - 1].plan; }

 private:
  struct UpStage {  // conv on the ×2 upsampling of a [c, in_h, in_w] map, in bands of `band` rows
    int in_h = 0, in_w = 0, band = 0;
    ConvPlan plan;
  };
  ConvPlan& conv4_plan(int out_channels);
  // Whether map_[s] is kept in bf16 (int8 mode, s = 1, 2: the maps the bands upsample from).
  bool map_bf16(int s) const { return prec_ == Precision::int8 && s > 0; }
  // Whether conv_3's bands are bf16 and conv_4 a bf16 conv: bf16 and int8 mode with the Winograd head
  // convs, on a CPU with AVX512-BF16.
  bool conv4_bf16() const {
    return prec_ != Precision::fp32 && up_[2].plan.writes_bf16_maps() && cpu_has_bf16();
  }

  DnnlContext* ctx_ = nullptr;
  Precision prec_ = Precision::fp32;
  int h_ = 0, w_ = 0, d_ = 0, c_ = 0, img_h_ = 0, img_w_ = 0;
  double ln_eps_ = 1e-6;
  ConvPlan conv0_;
  UpStage up_[3];
  std::map<int, ConvPlan> conv4_;    // by output channels (tasks differ only there)
  dnnl::reorder to_blocked_;         // LayerNorm output, channels-last fp32 -> conv_0's blocked input
  dnnl::memory::desc ln_md_, ln_blocked_md_;
  // Workspace offsets in floats (runtime/workspace.h):
  WorkspaceLayout layout_;
  size_t ln_ = 0;        // [h·w, d] LayerNorm output, fp32 channels-last
  size_t ln_blocked_ = 0;  // [d, h, w] blocked, in the activation type (conv_0's input)
  size_t map_[3] = {};   // conv_0, conv_1, conv_2 outputs, blocked: [c, h, w], [c, 2h, 2w], [c, 4h, 4w]
                         // (1 and 2 in bf16 in int8 mode: map_bf16)
  size_t band_in_ = 0;   // [c, band + 2, W] upsampled rows + halo, blocked (fp32 or bf16)
  size_t band_out_ = 0;  // [c, band, W] one band's conv output, blocked
  size_t c4_band_ = 0;   // [C_max, band, W] conv_4 output of one band, blocked
  size_t c4_ = 0;        // conv_4 output, blocked: [C_max, band + 1, 8w] (rows r0-1 .. r0+band-1), or
                         // [C_max, 8h, 8w] whole when a final resize to the input size follows
  size_t resized_ = 0;   // [C_max, 16h, 16w] when a final resize is needed
  size_t conv_pad_ = 0;  // oneDNN scratchpad of the convs (the largest of them)
  bool resize_ = false;
};

}  // namespace m3vit::rt
