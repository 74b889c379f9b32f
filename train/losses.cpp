// Training losses (authors' losses/loss_functions.py, losses/loss_schemes.py; docs/TRAINING.md).
#include "common/pch/torch_pch.h"

#include "train/losses.h"

#include "common/errors.h"
#include "io/tensor_data.h"
#include "model/batch_sync.h"

namespace m3vit {

namespace {

constexpr double kIgnore = 255.0;  // ignore label of every dense task (AddIgnoreRegions)

std::vector<int64_t> sizes_of(const torch::Tensor& t) { return t.sizes().vec(); }

void check_same_shape(const char* task, const torch::Tensor& pred, const torch::Tensor& label) {
  if (pred.sizes() != label.sizes())
    throw ShapeError(std::string(task) + " loss: prediction " + shape_str(sizes_of(pred)) + " and label " +
                     shape_str(sizes_of(label)) + " differ");
}

// torch.nan_to_num(loss, nan=0.0) as the authors apply it (loss_schemes.py:66-104). Its gradient is
// grad·isfinite(loss), so a NaN loss contributes nothing and leaves no NaN gradient behind.
torch::Tensor nan_to_zero(const torch::Tensor& loss) { return torch::nan_to_num(loss, 0.0); }

// A data-parallel run with train.batch_stats global (model/batch_sync.h): masked means divide by the
// global batch's counts, so that the processes' losses add up to the one-process loss.
bool global_stats() { return batch_sync() && batch_sync()->global_batch_stats; }

}  // namespace

torch::Tensor softmax_ce_loss(const torch::Tensor& logits, const torch::Tensor& label) {
  if (logits.dim() != 4)
    throw ShapeError("cross-entropy loss: logits must be [B, C, H, W], got " + shape_str(sizes_of(logits)));
  torch::Tensor target = label.dim() == 4 ? label.select(1, 0) : label;  // label[:, 0, :, :] as the authors
  if (target.dim() != 3 || target.size(0) != logits.size(0) || target.size(1) != logits.size(2) ||
      target.size(2) != logits.size(3))
    throw ShapeError("cross-entropy loss: label " + shape_str(sizes_of(label)) + " does not fit logits " +
                     shape_str(sizes_of(logits)));
  target = target.to(torch::kLong);
  // nll_loss would abort with an opaque message on a class id outside [0, C) that is not 255.
  const int64_t num_classes = logits.size(1);
  auto bad = (target != static_cast<int64_t>(kIgnore)) & ((target < 0) | (target >= num_classes));
  if (bad.any().item<bool>())
    throw ShapeError("cross-entropy loss: label holds a class id outside [0, " + std::to_string(num_classes) +
                     ") that is not the ignore label 255");
  // LogSoftmax over channels + NLLLoss(ignore_index=255), mean over the valid pixels of the batch.
  if (!global_stats())
    return torch::nll_loss2d(torch::log_softmax(logits, 1), target, {}, at::Reduction::Mean,
                             static_cast<int64_t>(kIgnore));
  // Data parallel with global batch statistics: the sum over the global batch's valid pixels.
  auto sum = torch::nll_loss2d(torch::log_softmax(logits, 1), target, {}, at::Reduction::Sum,
                               static_cast<int64_t>(kIgnore));
  const double valid = static_cast<double>((target != static_cast<int64_t>(kIgnore)).sum().item<int64_t>());
  return sum / batch_normalizer(valid);
}

torch::Tensor balanced_bce_loss(const torch::Tensor& logits, const torch::Tensor& label, double pos_weight) {
  check_same_shape("balanced BCE", logits, label);
  auto y = label.ge(0.5).to(logits.scalar_type());
  // The authors' numerically stable BCE-with-logits (loss_functions.py:61-63):
  //   v = x·(y − [x≥0]) − log(1 + exp(x − 2·x·[x≥0])),  ℓ = −v
  auto ge0 = logits.ge(0).to(logits.scalar_type());
  auto v = logits * (y - ge0) - torch::log1p(torch::exp(logits - 2 * logits * ge0));
  auto loss_pos = -(y * v).sum();
  auto loss_neg = -((1 - y) * v).sum();
  const double numel = static_cast<double>(label.numel());
  torch::Tensor total;
  if (pos_weight >= 0) {
    total = pos_weight * loss_pos + (1 - pos_weight) * loss_neg;
  } else {
    // HED-style weight from the whole batch: w = #negatives / #pixels (loss_functions.py:52-56).
    if (!global_stats()) {
      auto w = (1 - y).sum() / numel;
      total = w * loss_pos + (1 - w) * loss_neg;
    } else {
      // Data parallel with global batch statistics: w of the global batch.
      const double w = batch_fraction((1 - y).sum().item<double>(), numel);
      total = w * loss_pos + (1 - w) * loss_neg;
    }
  }
  // size_average: divided by the element count, not by the weight sum (loss_functions.py:79-80).
  return total / numel;
}

torch::Tensor normals_loss(const torch::Tensor& out, const torch::Tensor& label) {
  check_same_shape("normals", out, label);
  if (out.dim() != 4 || out.size(1) != 3)
    throw ShapeError("normals loss: output must be [B, 3, H, W], got " + shape_str(sizes_of(out)));
  // Normalize(): divide by the per-pixel L2 norm + 1e-12 (loss_functions.py:144-151).
  auto unit = out / (torch::norm(out, 2, {1}, /*keepdim=*/true) + 1e-12);
  // mask = label != 255 ELEMENTWISE; the sum is divided by the number of valid elements (:180-191).
  auto mask = label.ne(kIgnore);
  const double n_valid = static_cast<double>(mask.sum().item<int64_t>());
  auto l1 = (torch::abs(unit - label) * mask.to(out.scalar_type())).sum();
  return l1 / std::max(batch_normalizer(n_valid), 1e-6);
}

torch::Tensor depth_loss(const torch::Tensor& out, const torch::Tensor& label) {
  check_same_shape("depth", out, label);
  auto mask = label.ne(kIgnore);
  // nn.L1Loss on masked_select: the mean of an empty selection is NaN, as in the authors' code.
  if (!global_stats()) return torch::l1_loss(torch::masked_select(out, mask), torch::masked_select(label, mask));
  // Data parallel with global batch statistics: the mean over the global batch's valid values.
  auto sum = torch::l1_loss(torch::masked_select(out, mask), torch::masked_select(label, mask), at::Reduction::Sum);
  return sum / batch_normalizer(static_cast<double>(mask.sum().item<int64_t>()));
}

std::map<std::string, double> default_loss_weights(const std::string& dataset) {
  if (dataset == "pascal")
    return {{"semseg", 1.0}, {"human_parts", 2.0}, {"sal", 5.0}, {"edge", 50.0}, {"normals", 10.0}};
  if (dataset == "nyud") return {{"semseg", 1.0}, {"depth", 1.0}};
  return {};
}

torch::Tensor task_loss(const std::string& task, const torch::Tensor& pred, const torch::Tensor& label,
                        const LossOptions& opt) {
  if (task == "semseg" || task == "human_parts") return softmax_ce_loss(pred, label);
  if (task == "edge") return balanced_bce_loss(pred, label, opt.edge_pos_weight);
  if (task == "sal") return balanced_bce_loss(pred, label, -1.0);
  if (task == "normals") return normals_loss(pred, label);
  if (task == "depth") return depth_loss(pred, label);
  throw ConfigError("unknown task '" + task + "' (known: semseg, human_parts, sal, edge, normals, depth)");
}

LossBreakdown multi_task_loss(const std::map<std::string, torch::Tensor>& preds,
                              const std::map<std::string, torch::Tensor>& labels,
                              const std::vector<std::string>& tasks, const LossOptions& opt, bool tam) {
  auto weight = [&](const std::string& t) {
    auto it = opt.weights.find(t);
    return it == opt.weights.end() ? 1.0 : it->second;
  };
  auto label_of = [&](const std::string& t) -> const torch::Tensor& {
    auto it = labels.find(t);
    if (it == labels.end()) throw ConfigError("no label for task '" + t + "' in the batch");
    return it->second;
  };
  LossBreakdown out;
  torch::Tensor total;
  auto add = [&](const std::string& key, const std::string& task, torch::Tensor loss, bool nan_zero) {
    if (nan_zero) loss = nan_to_zero(loss);
    out.parts[key] = loss.item<double>();
    auto term = weight(task) * loss;
    total = total.defined() ? total + term : term;
  };
  // TAM deep supervision first, level by level, as MultiTaskLoss does (loss_schemes.py:62-94).
  for (int level = 0; level < 3; ++level) {
    const std::string prefix = "tam_level" + std::to_string(level) + "_";
    if (tasks.empty() || !preds.count(prefix + tasks[0])) continue;
    for (const auto& t : tasks) {
      auto it = preds.find(prefix + t);
      if (it == preds.end()) throw ConfigError("TAM output '" + prefix + t + "' missing from the model output");
      add(prefix + t, t, task_loss(t, it->second, label_of(t), opt), /*nan_zero=*/true);
    }
  }
  for (const auto& t : tasks) {
    auto it = preds.find(t);
    if (it == preds.end()) throw ConfigError("task '" + t + "' missing from the model output");
    // With TAM every NaN becomes 0 (:97-100); without, only human_parts (:107-109).
    add(t, t, task_loss(t, it->second, label_of(t), opt), tam || t == "human_parts");
  }
  if (!total.defined()) throw ConfigError("multi-task loss: no task to train");
  out.total = total;
  return out;
}

}  // namespace m3vit
