// Expert parallelism in training (the authors' FastMoE scheme, docs/TRAINING.md "Expert parallel"):
// every process keeps the dense parts and E/N of each MoE layer's experts, rank r experts
// [r·E/N, (r+1)·E/N). Tokens reach their experts by all-to-all (model/expert_parallel.h); dense
// gradients are averaged as in data parallel, expert gradients never leave their rank.
//
// Expert gradients: rank r's expert e receives the gradients of every process's tokens. Each process's
// loss is weighted for averaging (its share of the global batch × N), so that sum is N times the
// gradient of the global batch's mean loss; it is divided by N here. The authors' FastMoE run did not
// divide, so their experts saw N× the gradient (quirk Q13): with expert parallelism too, that stays
// the config value train.expert_grad_scale (2 for their 2-GPU run), not a side effect of N.
//
// Checkpoints (train/train_checkpoint.h): nothing is gathered. Every rank writes its experts and their
// optimizer state as a shard, rank 0 writes checkpoint.safetensors without them, and `--resume`
// reads the shards back, concatenated in rank order, so a run continues with any N that divides E,
// data parallel or in one process. The weights shards are in the authors' per-rank layout
// (utils/moe_utils.py:68-79): shards/0.safetensors every tensor with rank 0's experts,
// shards/r.safetensors only rank r's experts; `m3vit export --weights <run>/shards` merges them as it
// does theirs. Validation and the run's model exports (best_model, model.safetensors) gather every
// expert on rank 0.
#pragma once

#include "common/pch/torch_pch.h"

#include <functional>
#include <string>
#include <vector>

#include "model/multitask_model.h"
#include "train/distributed.h"
#include "train/optimizer.h"
#include "train/train_checkpoint.h"

namespace m3vit {

class ExpertShards {
 public:
  // Starts the token exchange (a collective). Throws ConfigError when N does not divide E.
  ExpertShards(Distributed& dist, MultiTaskModelImpl& model);

  // Keeps this rank's experts: the weights and the optimizer's state of every other expert are dropped.
  void keep_own(Optimizer& opt);
  // Rank 0 gets every expert back (weights and optimizer state), for a checkpoint, a validation or an
  // export; the others keep theirs. A collective. keep_own() shards rank 0 again.
  void gather_to_lead(Optimizer& opt);
  // Expert gradients / N (see the file comment). After the step's last backward pass.
  void average_expert_gradients();
  // A checkpoint's shards, in three moves so that a run stopped at any moment leaves a checkpoint whose
  // shards are all there (a collective; rank 0 writes `write_checkpoint` in the middle):
  //   1. every rank writes its pair, step `step`, into dir/next/ (each file atomically);
  //   2. all wait, rank 0 writes the checkpoint (it names the step: the commit), all wait;
  //   3. every rank moves its pair to dir/, and rank 0 removes the shards of ranks >= N (an earlier
  //      run with more processes).
  void write_checkpoint_shards(const std::string& dir, const Optimizer& opt, int64_t step,
                               const std::function<void()>& write_checkpoint);
  // What the checkpoint leaves to the shards.
  ExpertShardSet shard_set() const;

  int first_expert() const { return dist_.rank() * local_; }
  int experts_per_rank() const { return local_; }

 private:
  bool is_expert_state(const std::string& key) const;  // "momentum_buffer/<expert param>"

  Distributed& dist_;
  MultiTaskModelImpl& model_;
  std::vector<NamedParameter> experts_;  // every MoE layer's expert weights and biases, by key
  int total_ = 0, local_ = 0;            // E and E/N
};

}  // namespace m3vit
