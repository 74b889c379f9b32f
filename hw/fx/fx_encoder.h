// The fixed-point encoder: a bit-accurate emulation of the accelerator's number formats on the
// whole M³ViT encoder (patch embedding, 12 blocks with the reordered MoE), written the way HLS
// tools accept it, so that it is a starting point for a real Vitis HLS build:
//   * static sizes: every on-chip buffer is a fixed-size array bounded by the constants below;
//     runtime sizes (tokens, d, ...) are loop bounds no larger than those;
//   * no dynamic allocation inside the kernels: DRAM buffers are passed in as pointers (m_axi
//     ports in HLS), on-chip buffers are fixed-size arrays (BRAM/URAM), members of the kernels'
//     object (static arrays in an HLS top function);
//   * streams between stages are plain arrays; no vendor headers (ap_fx of hw/fx/fixed_point.h stands
//     in for ap_fixed).
//
// Number formats (Edge-MoE include/datatypes.hpp at 984b23b), all truncating:
//   activations, accumulators  ap_fixed<32,10>   weights (linear, router)  ap_fixed<16,2>
//   attention-linear biases    ap_fixed<16,7>    other biases, LN beta     ap_fixed<16,5>
//   LN gamma                   ap_fixed<16,5>    patch-embedding weights   ap_fixed<16,0>
//   pixels                     ap_ufixed<8,0>    GELU table entries        ap_ufixed<22,0>
// Overflow wraps (Ovf::wrap, the vendor default Edge-MoE uses) or saturates (Ovf::saturate).
// That is the format a32w16; FxFormat adds 16-bit stored activations and 8-bit weights (FxTypes).
// FxArith::edge_moe reproduces Edge-MoE's exact order of operations where ours differs (FxArith).
//
// Dataflow follows Edge-MoE's kernel (src/ViT_compute.cpp) with this project's own code:
//   LN1 (one pass: mean and mean of squares) → Q → K → Q·Kᵀ with the 4-query staggered order and
//   single-pass softmax statistics (running max b, running sum of exp(s - b)) → V → A·V recomputing
//   exp(s - b)/sum → proj → add → LN2 → dense MLP with GELU by table interpolation, or router
//   (single-pass softmax over E, top-k insertion) + per-expert queues + experts one by one
//   (fc1+GELU into a hidden buffer, fc2 scaled by the gate weight and accumulated) → add.
// The input image's ImageNet normalisation (and the 8-bit pixel scale) is folded into the
// patch-embedding weights when they are converted; the class token is folded into pos[0].
// The math functions (exp, square root, reciprocal, division) stand for hls::exp, hls::sqrt, ...:
// the exact value truncated to the result type. The on-chip memories belong to an FxEncoder object,
// one accelerator: it runs one image at a time, and encoders in different threads are independent.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hw/fx/encoder_weights.h"
#include "hw/fx/fixed_point.h"

namespace m3vit::hw {

// Static maxima of the kernels (ViT-S at NYUD's 480x640 = 1,201 tokens fits).
constexpr int kFxMaxTokens = 1201;
constexpr int kFxMaxDim = 384;
constexpr int kFxMaxHidden = 1536;  // dense MLP and expert hidden
constexpr int kFxMaxHeads = 12;
constexpr int kFxMaxExperts = 64;
constexpr int kFxMaxTopK = 8;
constexpr int kFxMaxPatchIn = 768;  // 3 x 16 x 16
constexpr int kFxAttnQueries = 4;   // staggered queries of the attention unit (ATTN_MATMUL_PARALLEL)

// Edge-MoE sums 8 features at a time (a 256-bit AXI word of 32-bit fm_t, include/hardware.hpp:10):
// the blocks of its LayerNorm statistics, router logits and Q·Kᵀ partial sums in FxArith::edge_moe.
constexpr int kFxFeatureBlock = 8;

// The number formats, aNwM: N-bit activations as stored (DRAM and on-chip buffers between units),
// M-bit linear, router and patch-embedding weights. a32w16 is Edge-MoE's; the others are for
// measuring which widths a preset can use.
enum class FxFormat { a32w16, a32w8, a16w16, a16w8 };
const char* to_string(FxFormat f);
// "a32w16", "a32w8", "a16w16" or "a16w8"; throws ConfigError naming the accepted values.
FxFormat fx_format_from_string(const std::string& s);

// The order of operations. `ours` is this project's (one scale per Q·Kᵀ dot product, LayerNorm's
// 1/sqrt(var) truncated once, a var <= 0 guard, products accumulated exactly). `edge_moe` is
// Edge-MoE's, line by line where it differs from ours:
//   * Q·Kᵀ: each 8-feature partial sum starts at zero, is truncated to fm_t, scaled by
//     1/sqrt(hd) (truncated again) and then added (src/attention.cpp:99-105);
//   * LayerNorm: mean and mean of squares summed per 8-feature block, then added
//     (src/layernorm.cpp:85-99); mean² truncated to fm_t before the subtraction (:116);
//     1/sqrt(var) as fm_t(1) / hls::sqrt(var), so the square root is truncated to fm_t and the
//     quotient truncated again (:118); no guard for var <= 0 (:117);
//   * linear unit: each product x·w assigned to fm_t before it is added (src/linear.cpp:492-494);
//   * router logits and patch embedding: partial sums per 8-feature block / 16-pixel row, each
//     from zero, then added (src/moe.cpp:179-191, src/conv.cpp:86-93).
// With wrap-around the per-product and per-block sums equal the flat sum (modular arithmetic),
// so only the Q·Kᵀ scale and the LayerNorm change values; with saturation they can differ too.
// One difference is not reproduced: Edge-MoE starts each softmax from the most negative fm_t, and
// its first exp argument can wrap (src/attention.cpp:173-182, src/moe.cpp:260); that multiplies a
// zero sum, so the values are the same and we do not count it as an overflow.
enum class FxArith { ours, edge_moe };
const char* to_string(FxArith a);
FxArith fx_arith_from_string(const std::string& s);

// Integer bits of the narrow formats: one choice per format, checked (no overflow event in any
// kernel on the trained demo model's 64 validation scenes, docs/HARDWARE.md section 11), not derived
// per tensor from measured ranges:
//   * 16-bit activations <16,6>: [-32, 32) in steps of 2^-10, one integer width for every stored
//     activation, so that a buffer can hold any of them (the accelerator reuses its buffers).
//   * 8-bit linear and router weights <8,1>: [-1, 1) in steps of 2^-7. At the authors'
//     initialisation (std 0.02) this step is too coarse (tests/hw/test_fx_formats.cpp).
//   * 8-bit patch-embedding weights <8,0>, the same range as Edge-MoE's <16,0>.
// Biases and LayerNorm parameters stay 16-bit in every format: a few KB, and they set offsets
// that an 8-bit step would shift.
constexpr int kFxA16Int = 6;
constexpr int kFxW8Int = 1;

template <Ovf O, FxFormat Fm = FxFormat::a32w16>
struct FxTypes {
  static constexpr bool a16 = Fm == FxFormat::a16w16 || Fm == FxFormat::a16w8;
  static constexpr bool w8 = Fm == FxFormat::a32w8 || Fm == FxFormat::a16w8;
  // Inside the units (LayerNorm statistics, softmax, GELU, router scores): Edge-MoE's fm_t.
  using fm_t = ap_fx<32, 10, true, O>;
  // Activations as stored between units. a16: half the buffers and DRAM traffic, and a 16-bit
  // operand fits the DSP48E2's 27x18 multiplier (a 32-bit one needs two DSPs).
  using act_t = std::conditional_t<a16, ap_fx<16, kFxA16Int, true, O>, fm_t>;
  // Multiply-accumulate registers. a32: fm_t, as Edge-MoE accumulates. a16: 48 bits, the DSP48E2's
  // accumulator, with 24 fraction bits, so every product of a16 activations and weights (at most
  // 10 + 14 fraction bits) is added exactly.
  using acc_t = std::conditional_t<a16, ap_fx<48, 24, true, O>, fm_t>;
  using wt_t = std::conditional_t<w8, ap_fx<8, kFxW8Int, true, O>, ap_fx<16, 2, true, O>>;
  using wt_attn_bias_t = ap_fx<16, 7, true, O>;
  using wt_bias_t = ap_fx<16, 5, true, O>;
  using wt_norm_t = ap_fx<16, 5, true, O>;
  using wt_patch_t = std::conditional_t<w8, ap_fx<8, 0, true, O>, ap_fx<16, 0, true, O>>;
  using pixel_t = ap_fx<8, 0, false, O>;
  using frac_t = ap_fx<22, 0, false, O>;
};

// Runtime sizes, each within the static maxima.
struct FxDims {
  int tokens = 0, grid_h = 0, grid_w = 0, patch = 0, in_chans = 0, img_h = 0, img_w = 0;
  int dim = 0, heads = 0, head_dim = 0, hidden = 0, moe_hidden = 0, experts = 0, top_k = 0, depth = 0;
  int patch_in() const { return in_chans * patch * patch; }
};
// Throws ConfigError naming the size that exceeds a static maximum.
FxDims fx_dims(const ModelConfig& cfg);

// Weights converted to the accelerator's formats (the contents of its DRAM), for one task.
template <Ovf O, FxFormat Fm = FxFormat::a32w16>
struct FxWeights {
  using T = FxTypes<O, Fm>;
  ModelConfig cfg;
  FxDims dims;
  int task = 0;
  std::vector<typename T::wt_patch_t> patch_w;  // [d][C·p·p], normalisation and 256/255 folded in
  std::vector<typename T::wt_bias_t> patch_b;   // [d], normalisation folded in
  std::vector<typename T::act_t> pos;           // [N][d], cls token added to row 0 (stored as an activation)
  struct Block {
    bool moe = false;
    std::vector<typename T::wt_norm_t> ln1_g, ln2_g;          // [d]
    std::vector<typename T::wt_bias_t> ln1_b, ln2_b;          // [d]
    std::vector<typename T::wt_t> q_w, k_w, v_w, proj_w;      // [d][d]
    std::vector<typename T::wt_attn_bias_t> q_b, k_b, v_b, proj_b;  // [d]
    std::vector<typename T::wt_t> fc1_w, fc2_w;               // [hid][d], [d][hid]
    std::vector<typename T::wt_bias_t> fc1_b, fc2_b;          // [hid], [d]
    std::vector<typename T::wt_t> w1, w2;                     // [E][mh][d], [E][d][mh]
    std::vector<typename T::wt_bias_t> b1, b2;                // [E][mh], [E][d]
    std::vector<typename T::wt_t> gate_w;                     // [E][d] (transposed from [d, E])
    std::vector<typename T::fm_t> gate_b;                     // [E] (task_cond: task-embedding term)
  };
  std::vector<Block> blocks;
  uint64_t conversion_overflows = 0;                           // weights outside their format's range
  std::vector<std::pair<std::string, uint64_t>> overflow_by_tensor;  // only tensors with overflows
};

// Converts with truncation, as Edge-MoE's testbench does (ap_fixed's default AP_TRN). With
// `round_weights` the weights are rounded to nearest instead (AP_RND), to show how much of the
// error is the systematic bias of truncated weights on non-negative inputs (pixels, GELU outputs).
template <Ovf O, FxFormat Fm = FxFormat::a32w16>
FxWeights<O, Fm> convert_weights(const EncoderWeights& w, int task, bool round_weights = false);

// Overflow events per unit of one block (wrap or saturate; counted by the emulation).
enum FxUnit { fx_patch_embed, fx_layernorm, fx_linear, fx_attention, fx_gelu_unit, fx_router, fx_experts, fx_add, fx_unit_count };
const char* fx_unit_name(int u);
// Overflow events per unit, [1 + depth]: patch embedding, then blocks; and their sum.
using FxOverflows = std::vector<std::array<uint64_t, fx_unit_count>>;
uint64_t total_overflows(const FxOverflows& o);

struct FxRunInfo {
  FxOverflows overflows;                                       // [1 + depth]: patch embedding, then blocks
  std::vector<std::vector<int32_t>> topk_idx;                  // per MoE layer [N, k]
  std::vector<std::vector<float>> topk_w;                      // per MoE layer [N, k]
  uint64_t total_overflows() const { return hw::total_overflows(overflows); }
};

// The on-chip memories and units of one accelerator (fx_encoder.cpp).
template <Ovf O, FxFormat Fm>
struct FxKernels;

// One accelerator instance: it owns the on-chip memories (weight ping/pong buffers, router weights,
// expert queues, GELU ROM; about 3 MB at the static maxima, on the heap), so two encoders share no
// state and may run in two threads. One object runs one image at a time; reuse it for a sequence
// of images to allocate the memories once. `arith` chooses the order of operations (FxArith).
template <Ovf O, FxFormat Fm = FxFormat::a32w16>
class FxEncoder {
 public:
  explicit FxEncoder(FxArith arith = FxArith::ours);
  ~FxEncoder();
  FxEncoder(FxEncoder&&) noexcept;
  FxEncoder& operator=(FxEncoder&&) noexcept;

  // Runs the encoder on one 8-bit RGB image [C, H, W]; returns block depth-1's tokens [N, d] as float.
  std::vector<float> run(const FxWeights<O, Fm>& w, const uint8_t* image, FxRunInfo* info = nullptr);

 private:
  std::unique_ptr<FxKernels<O, Fm>> k_;
};

// The same on a fresh FxEncoder (one image, one allocation of the on-chip memories).
template <Ovf O, FxFormat Fm = FxFormat::a32w16>
std::vector<float> fx_encoder(const FxWeights<O, Fm>& w, const uint8_t* image, FxRunInfo* info = nullptr,
                              FxArith arith = FxArith::ours);

// GELU by table interpolation on an fm_t value (exposed for tests).
template <Ovf O>
typename FxTypes<O>::fm_t fx_gelu(typename FxTypes<O>::fm_t x);

// Single-pass softmax statistics over a sequence, in fm_t: returns (1/sum, max) as doubles of the
// fixed-point results, and the normalised probabilities exp(s_i - max) / sum (exposed for tests).
template <Ovf O>
std::vector<double> fx_single_pass_softmax(const std::vector<double>& scores);

// LayerNorm statistics of one row [d] as the encoder computes them, in fm_t: (mean, 1/sqrt(var + eps))
// (exposed for tests of the two orders of operations).
template <Ovf O>
std::pair<double, double> fx_layernorm_stats(const std::vector<double>& row, double eps, FxArith arith);
// One attention score q·k / sqrt(hd) for one head's q and k [hd] (hd = their size), in fm_t (exposed for tests).
template <Ovf O>
double fx_attention_score(const std::vector<double>& q, const std::vector<double>& k, FxArith arith);

}  // namespace m3vit::hw
