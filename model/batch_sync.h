// Batch statistics over every process of a data-parallel run: the authors' SyncBatchNorm (their heads
// and TAM use nn.SyncBatchNorm under DistributedDataParallel, train_fastmoe.py) and, as an option, the
// routers' load-balancing statistics and the losses' normalisers over the global batch.
//
// The model knows nothing of processes or sockets: a data-parallel trainer (train/distributed.h)
// installs a BatchSync for the length of a run, and these functions sum through it. Without one
// (a single process, inference) they are plain BatchNorm and per-batch statistics.
#pragma once

#include "common/pch/torch_pch.h"

#include <functional>

namespace m3vit {

struct BatchSync {
  // Sums each tensor (CPU, contiguous) element-wise over all processes, in place; every process calls
  // it with the same shapes in the same order (a collective).
  std::function<void(std::vector<torch::Tensor>&)> sum_in_place;
  // train.batch_stats global: what the one-process run computes over its batch is computed over the
  // global batch here too: the routers' importance and load (the cv² aux loss), the counts that
  // masked losses divide by, the saliency loss's class balance. Then the processes' losses add up
  // to the one-process loss of the global batch. false (batch_stats process): each process's own
  // batch, as the authors' DDP runs. BatchNorm is synchronised either way (the authors' SyncBN).
  bool global_batch_stats = false;
  // This process's share n_r / n of the current global batch's images (set per micro-batch).
  double share = 1.0;
  // Expert parallelism (train.expert_parallel): each of `world` processes holds E/world of every MoE
  // layer's experts and exchanges token rows with the others through all_to_all (send_rows[s] rows of
  // its input go to rank s; recv_rows[s] rows arrive from rank s, in rank order). Unset: every process
  // holds every expert.
  int world = 1;
  std::function<torch::Tensor(const torch::Tensor& in, const std::vector<int64_t>& send_rows,
                              const std::vector<int64_t>& recv_rows)>
      all_to_all;
};

// The active BatchSync (nullptr: one process). Set for the length of a scope, on the training thread.
const BatchSync* batch_sync();
class BatchSyncScope {
 public:
  explicit BatchSyncScope(const BatchSync* s);
  ~BatchSyncScope();
  BatchSyncScope(const BatchSyncScope&) = delete;
  BatchSyncScope& operator=(const BatchSyncScope&) = delete;

 private:
  const BatchSync* prev_;
};

// The count a masked mean over this process's batch divides by: `local` itself, or with global batch
// statistics, the global batch's count × this process's share of its images (the processes' losses,
// each weighted by its share, then add up to the one-process loss). A collective when global.
double batch_normalizer(double local);
// A fraction over the batch (e.g. negatives / pixels): local, or of the global batch's sums.
double batch_fraction(double part, double whole);

// Σ over processes of t, differentiable: the backward pass sums the incoming gradients over the
// processes too (each process's loss used the same global sum). Identity without a BatchSync.
torch::Tensor sum_over_processes(const torch::Tensor& t);

// BatchNorm2d whose training-mode statistics cover the global batch when a BatchSync is active (the
// authors' SyncBN); otherwise exactly torch::nn::BatchNorm2d (torch::batch_norm), with its parameters,
// buffers and key names (weight, bias, running_mean, running_var, num_batches_tracked). Its own module
// rather than a subclass of torch's: libtorch exports too little of BatchNormImplBase to derive from.
class SyncBatchNorm2dImpl : public torch::nn::Cloneable<SyncBatchNorm2dImpl> {
 public:
  explicit SyncBatchNorm2dImpl(torch::nn::BatchNormOptions options);
  void reset() override;
  // x: [B, C, H, W] -> [B, C, H, W].
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(SyncBatchNorm2d);

}  // namespace m3vit
