// The PUP task head on oneDNN (authors: models/vit_up_head.py:149-224; spec §3.1), for one task:
//   last block tokens [N, d] → drop cls → LayerNorm → [h, w, d]
//   → conv_0 3×3 d→c + BN + ReLU → ×2 → conv_1 3×3 + BN + ReLU → ×2 → conv_2 ... → ×2 → conv_3 ...
//   → conv_4 1×1 c→C → ×2 bilinear → [C, 16h, 16w], then bilinear to the input size if that differs
//   (models.py:248).
// Activations are channels-last throughout. The ×2 upsampled maps, which are the largest (at 512×512
// the input of conv_3 is 256×256×256 fp32 = 64 MiB), are never stored whole: each conv on an
// upsampled map runs in row bands, upsampling just the band's rows plus a one-row halo into a small
// buffer. conv_4 (a 1×1 conv = a matmul over pixels) runs on each conv_3 band as it comes out.
// Plans are shared by all tasks; the weights of each task (BN folded) live in task_switch.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/ops/conv.h"
#include "runtime/ops/matmul.h"

namespace m3vit::rt {

class ModelFile;

// One task's head weights, packed for the PupHead plans.
struct HeadWeights {
  int out_channels = 0;
  std::vector<float> norm_w, norm_b;  // [d]
  PackedConv conv[4];                 // conv_j with syncbn_fc_j folded in
  PackedWeights conv4;                // conv_4 as a [C, c] matmul
  size_t bytes() const;
};

class PupHead {
 public:
  static constexpr int kBandPixels = 8192;  // output pixels per band: [32, 256] rows at 512×512 input

  PupHead() = default;
  PupHead(DnnlContext& ctx, const ModelConfig& cfg, Precision prec);

  // Reads, folds and packs the head of `task` (BN eps 1e-5: SyncBN's default, vit_up_head.py).
  HeadWeights pack(const ModelFile& file, const std::string& task, int out_channels);

  // tokens [N, d] (cls first) -> out [C, img_h, img_w].
  void forward(const float* tokens, const HeadWeights& w, float* out);

  // Multiply-adds ×2 of the convs for C output channels.
  int64_t flops(int out_channels) const;

 private:
  struct UpStage {  // conv on the ×2 upsampling of a [in_h, in_w, c] map, in bands of `band` rows
    int in_h = 0, in_w = 0, band = 0;
    ConvPlan plan;
  };
  MatmulPlan& conv4_plan(int out_channels);

  DnnlContext* ctx_ = nullptr;
  Precision prec_ = Precision::fp32;
  int h_ = 0, w_ = 0, d_ = 0, c_ = 0, img_h_ = 0, img_w_ = 0;
  double ln_eps_ = 1e-6;
  ConvPlan conv0_;
  UpStage up_[3];
  std::map<int, MatmulPlan> conv4_;  // by output channels (tasks differ only there)
  std::vector<float> ln_;            // [h·w, d] LayerNorm output, fp32
  std::vector<uint16_t> ln_bf16_;    // its bf16 copy in bf16 mode
  std::vector<float> map_[3];        // conv_0, conv_1, conv_2 outputs: [h, w, c], [2h, 2w, c], [4h, 4w, c]
  std::vector<uint8_t> band_in_;     // [band + 2, W, c] upsampled rows + halo (fp32 or bf16)
  std::vector<float> band_out_;      // [band, W, c] conv_3 output of one band
  std::vector<float> c4_;            // [8h, 8w, C_max] conv_4 output
  std::vector<float> resized_;       // [C_max, 16h, 16w] when a final resize is needed
};

}  // namespace m3vit::rt
