// Training losses of M³ViT, per task and combined (authors' losses/loss_functions.py and
// losses/loss_schemes.py, which come from ASTMT). The authors' quirks are kept on purpose and named
// where they are implemented:
//   - balanced BCE is divided by the element count B·1·H·W, not by the sum of the weights;
//   - the saliency weight w = #negatives / #pixels is taken over the whole batch (HED-style);
//   - normals: the output is L2-normalised per pixel first, and the L1 sum is divided by the number
//     of valid ELEMENTS (≈ 3 × valid pixels), not pixels;
//   - a NaN task loss becomes 0 for every task when TAM is on, and for human_parts otherwise.
// Every function takes predictions and labels at the same resolution, as the loader delivers them.
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <string>
#include <vector>

namespace m3vit {

// Cross-entropy with ignore label 255 (SoftMaxwithLoss, loss_functions.py:16-33).
//   logits [B, C, H, W]; label [B, 1, H, W] or [B, H, W], any dtype holding class ids or 255.
// Mean over the non-ignored pixels of the whole batch; an all-ignored batch gives NaN (as torch).
torch::Tensor softmax_ce_loss(const torch::Tensor& logits, const torch::Tensor& label);

// Balanced binary cross-entropy on logits (BalancedCrossEntropyLoss, loss_functions.py:36-84).
//   logits, label: [B, 1, H, W]; y = [label >= 0.5].
//   L = (w·Σ_{y=1} ℓ + (1−w)·Σ_{y=0} ℓ) / numel, ℓ = BCE-with-logits in the authors' stable form.
// pos_weight >= 0: fixed w (edge: 0.95); pos_weight < 0: w = #negatives / numel over the batch (sal).
torch::Tensor balanced_bce_loss(const torch::Tensor& logits, const torch::Tensor& label, double pos_weight);

// Normals L1 (NormalsLoss normalize=True, loss_functions.py:143-197).
//   out [B, 3, H, W] raw; label [B, 3, H, W] unit normals with 255 marking ignored ELEMENTS.
//   L = Σ_{label≠255} |out/(‖out‖₂+1e-12) − label| / max(#valid elements, 1e-6).
torch::Tensor normals_loss(const torch::Tensor& out, const torch::Tensor& label);

// Depth L1 (DepthLoss, loss_functions.py:126-140): mean |out − label| over label ≠ 255 (raw output).
torch::Tensor depth_loss(const torch::Tensor& out, const torch::Tensor& label);

// Loss weights and options of the multi-task loss (configs' loss_kwargs; edge_w; loss_schemes.py:43-115).
struct LossOptions {
  std::map<std::string, double> weights;  // task -> w_t; a task missing here has weight 1
  double edge_pos_weight = 0.95;          // p['edge_w']
};

// The authors' weights for a data set: PASCAL {semseg 1, human_parts 2, sal 5, edge 50, normals 10},
// NYUD {semseg 1, depth 1} (configs/*/vit_moe yml). Tasks of other data sets get 1.
std::map<std::string, double> default_loss_weights(const std::string& dataset);

// One task's loss by name ("semseg", "human_parts", "sal", "edge", "normals", "depth").
// Throws ConfigError for an unknown task, ShapeError when prediction and label do not fit.
torch::Tensor task_loss(const std::string& task, const torch::Tensor& pred, const torch::Tensor& label,
                        const LossOptions& opt);

struct LossBreakdown {
  torch::Tensor total;                  // scalar with gradient: Σ_t w_t L_t + Σ_TAM Σ_t w_t L_t^TAM
  std::map<std::string, double> parts;  // unweighted values: "<task>" and "tam_level{L}_<task>"
};

// MultiTaskLoss.forward (loss_schemes.py:43-115). `preds` is forward_all's map: task -> output and,
// in training with TAM, "tam_level{L}_<task>" -> output; `labels` maps task -> label. Only the tasks
// in `tasks` are used (task-conditioned training passes one). `tam` = the model has TAM enabled: it
// switches the NaN handling to the authors' TAM branch (every task loss NaN -> 0); without TAM only
// human_parts NaN -> 0 (an image with no person). The MoE auxiliary loss is added by the trainer.
LossBreakdown multi_task_loss(const std::map<std::string, torch::Tensor>& preds,
                              const std::map<std::string, torch::Tensor>& labels,
                              const std::vector<std::string>& tasks, const LossOptions& opt, bool tam);

}  // namespace m3vit
