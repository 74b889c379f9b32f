// Checkpoint import/export for MultiTaskModel (docs/WEIGHTS.md).
//  - Export: the format of core/export.h (the authors' keys, fp32, format tag and config metadata);
//    read by the runtime and load_exported() (read_export_config, core/export.h).
//  - Import: our export, the authors' checkpoints (.pth state dicts, per-rank shard directories
//    `{rank}.pth`, utils/moe_utils.py:68-93; or the same keys as safetensors) and timm/DeiT ImageNet weights
//    (utils/helpers.py:207-316). All key surgery on foreign checkpoints lives in checkpoint_filter()
//    (the idea of timm's checkpoint_filter_fn).
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/export.h"
#include "model/multitask_model.h"

namespace m3vit {

// What a load did, key by key (model keys unless said otherwise).
struct LoadReport {
  std::vector<std::string> loaded;      // model tensors that received checkpoint values
  std::vector<std::string> missing;     // model tensors the checkpoint did not provide (left as they were)
  std::vector<std::string> unexpected;  // checkpoint keys (after the filter) that the model does not have
  std::vector<std::string> remapped;    // "checkpoint key -> model key: what was done", one per surgery
  std::vector<std::string> ignored;     // checkpoint keys dropped on purpose, with the reason
  std::string summary() const;          // "loaded 120, missing 2, unexpected 0, remapped 9, ignored 4"
};

struct FilterOptions {
  // DeiT only: initialise each MoE block's experts from that block's dense MLP (see load_deit).
  bool split_experts = false;
  // A strict load does not require the training-only tensors (core/export.h training_only_key): set
  // for an inference export loaded for inference (load_checkpoint, LoadFor::inference). They keep
  // their initialisation and are listed in LoadReport::ignored.
  bool allow_missing_training_only = false;
};

// What a loaded model is for. An inference export (`m3vit export` without --with-training-weights,
// metadata "training_weights": "omitted") lacks the training-only tensors (the TAM): it loads for
// inference (their initial values are never used: eval mode runs no TAM), and is refused for
// training, with one FormatError naming the file and the missing part, rather than train or
// re-export a TAM that was never trained.
enum class LoadFor { training, inference };

// The one function that edits foreign keys and tensors. `src` holds the checkpoint's raw keys (a
// nested pickle gives "state_dict.module.backbone..." or "model.blocks..."); `model_shapes` the
// model's parameter and buffer shapes by key. Steps, in order:
//   1. keep the state dict: keys under "state_dict." (authors' training checkpoints) or "model."
//      (DeiT) when present; other entries (optimizer, epoch, ...) are ignored;
//   2. strip "module." (DistributedDataParallel);
//   3. skip keys containing "_aux" (decoupled-activation gate weights, common_config.py:36-38);
//   4. backbone-only checkpoints (timm/DeiT, the authors' ImageNet MoE ViT): ignore the classifier
//      and final norm ("head*", "norm*", "fc_norm*", "dist_token") and prefix the rest with "backbone.";
//   5. multi-gate: copy a single "...mlp.gate.w_gate" [d, E] into every task's
//      "...mlp.gate.{t}.w_gate" (common_config.py:53-65; we copy for every T, the authors only for T in {2,4,5});
//   6. task_cond: append zero rows to a d-row w_gate so it has the model's d + D_t rows (common_config.py:44-51);
//   7. resize "backbone.pos_embed" when its grid differs (resize_pos_embed, helpers.py:280-301);
//   8. reshape a linear-layout patch_embed.proj.weight [d, C*p*p] to the conv's [d, C, p, p];
//   9. dense "blocks.{i}.mlp.fc1/fc2" of a MoE block: ignored (helpers.py:302-313 is disabled), or split into the
//      experts when opt.split_experts;
//  10. everything else must match the model's shape exactly: ShapeError naming `source`, the key and
//      both shapes. Keys the model lacks go to report.unexpected.
// Returns model key -> tensor (checkpoint dtype; the loader casts).
std::map<std::string, torch::Tensor> checkpoint_filter(const std::map<std::string, torch::Tensor>& src,
                                                       const std::map<std::string, std::vector<int64_t>>& model_shapes,
                                                       const ModelConfig& cfg, const FilterOptions& opt,
                                                       const std::string& source, LoadReport& report);

// The authors' resize (utils/helpers.py:280-301): pos [1, N, d] -> [1, 1 + h*w, d]. g = floor(sqrt(N)); row 0
// (cls) is kept, the last g*g rows are a g x g grid, resized with bilinear interpolation,
// align_corners=false, no antialiasing; rows between (a distillation token) are dropped.
// ShapeError unless N - g*g is 1 or 2.
torch::Tensor resize_pos_embed(const torch::Tensor& pos, int h, int w);

// Writes every parameter and buffer of `m` as fp32 (integer buffers such as BatchNorm's
// num_batches_tracked included, converted) with the export metadata. Atomic. training_weights =
// false leaves out the training-only tensors (the TAM) and says so in the metadata: the inference
// export of `m3vit export`; the exports written by training keep them. `extra_metadata` is added to
// the export's own (an expert-parallel run's shard records its step there, train/expert_shards.h).
void export_model(MultiTaskModelImpl& m, const std::string& path, bool training_weights = true,
                  const std::map<std::string, std::string>& extra_metadata = {});
// Builds the model from the stored config and loads every tensor (strict), as a full checkpoint:
// an inference export whose config has a TAM is refused (LoadFor::training). Returned in eval mode.
MultiTaskModel load_exported(const std::string& path);

// Loads our export, an authors' .pth / safetensors file, or an authors' shard directory
// ({rank}.pth: rank 0 holds everything, rank r > 0 only its experts, concatenated along dim 0 in
// rank order; docs/WEIGHTS.md, written by utils/moe_utils.py:68-79, merged as in common_config.py:214-231).
// strict: every model tensor must be provided (checked before anything is copied). Mis-shaped
// tensors always throw. `use`: see LoadFor (only matters for an export without training weights).
LoadReport load_checkpoint(MultiTaskModelImpl& m, const std::string& path, bool strict,
                           LoadFor use = LoadFor::training);

// timm/DeiT ImageNet weights (utils/helpers.py:207-316): cls_token, pos_embed (resized), patch_embed.proj,
// norm1/attn/norm2 of every block, fc1/fc2 of the dense blocks. Never strict (heads, routers and,
// unless split_experts, experts keep their initialisation).
// split_experts (ours, not the authors'): expert e of a MoE block gets hidden units
// u = (e*hid + j) mod H, j < hid, of that block's dense MLP (rows of fc1, columns of fc2) and
// hid/H of fc2's bias. When hid divides H, each run of H/hid consecutive experts sums to the dense
// MLP exactly; with k = E and equal router probabilities 1/E the MoE output is (hid/H)·MLP(x), which
// is MLP(x)/E when E*hid = H (docs/WEIGHTS.md).
LoadReport load_deit(MultiTaskModelImpl& m, const std::string& path, bool split_experts);

// The pieces above, for any module that uses the authors' key names.
// Raw tensors of a checkpoint file (safetensors or .pth) or shard directory, keys as stored.
std::map<std::string, torch::Tensor> read_checkpoint_tensors(const std::string& path);
LoadReport load_state(torch::nn::Module& m, const ModelConfig& cfg, const std::map<std::string, torch::Tensor>& src,
                      bool strict, const FilterOptions& opt, const std::string& source);
void export_module(torch::nn::Module& m, const ModelConfig& cfg, const std::string& path, bool training_weights = true,
                   const std::map<std::string, std::string>& extra_metadata = {});

}  // namespace m3vit
