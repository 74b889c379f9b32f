// Data-parallel training on torch.distributed's c10d (docs/TRAINING.md, "Several processes and hosts"):
// a TCPStore rendezvous hosted by rank 0 and a ProcessGroupGloo over TCP, as PyTorch's
// init_process_group("gloo", "env://") sets up, and what DistributedDataParallel does with them:
// weights broadcast from rank 0 at the start, gradients averaged in buckets that are sent while the
// backward pass still runs. Nothing here is a home-made collective or socket.
//
// Who is who comes from the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT) or from `m3vit train --rank/--world-size/--master`; `--nproc N` starts N local
// processes with that environment (train/launch.h).
//
// Faults: every process beats a heartbeat counter in the store once a second. When a collective
// fails (a peer's socket closed, or the timeout passed), the error names the ranks whose heartbeat
// stopped, or rank 0 when the store itself is gone, instead of hanging or printing a socket address.
#pragma once

#include "common/pch/torch_pch.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace m3vit {

struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Rendezvous (reaching the master) and every collective give up after this long. torch's default
  // is 30 minutes; a validation on rank 0 keeps the others waiting that long at most.
  double timeout_s = 1800;
  bool active() const { return world_size > 1; }
  std::string master() const { return master_addr + ":" + std::to_string(master_port); }
};

// The torchrun variables of the environment, each checked ("RANK=x is not a number..."); defaults
// where unset. Throws ConfigError on a malformed or inconsistent value.
DistributedOptions distributed_options_from_env();

// One process's membership in a run: the store, the process group and the heartbeat.
class Distributed {
 public:
  // Connects (rank 0 hosts the store). Throws IoError naming host and port when the master cannot
  // be reached within the timeout.
  explicit Distributed(const DistributedOptions& o);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return opt_.rank; }
  int world_size() const { return opt_.world_size; }
  const DistributedOptions& options() const { return opt_; }

  // Collectives (blocking). Tensors: CPU; sum_in_place sums each tensor of the list separately. A failure is rethrown as IoError whose message
  // names the rank(s) that stopped (see the file comment).
  void sum_in_place(std::vector<torch::Tensor>& tensors);
  void broadcast_from_rank0(std::vector<torch::Tensor>& tensors);
  void barrier();
  // An asynchronous sum (the gradient buckets); wait() it with wait().
  c10::intrusive_ptr<c10d::Work> sum_async(torch::Tensor& t);
  void wait(const c10::intrusive_ptr<c10d::Work>& w);

  // Expert parallelism (FastMoE's scheme, train/expert_shards.h): a second Gloo group of the same
  // processes for the token exchange, so that its all-to-alls, issued during the backward pass, never
  // interleave with the gradient buckets' sums on the first. Every process calls this once, together.
  void start_expert_exchange();
  // All-to-all of rows (dim 0): send_rows[s] consecutive rows of `in` go to rank s; rank s's
  // send_rows[this rank] rows arrive as recv_rows[s] rows, in rank order. -> [Σ recv_rows, ...].
  torch::Tensor all_to_all(const torch::Tensor& in, const std::vector<int64_t>& send_rows,
                           const std::vector<int64_t>& recv_rows);
  // Every process's `t` (same shape everywhere), concatenated along dim 0 in rank order.
  torch::Tensor all_gather_cat(const torch::Tensor& t);
  int64_t bytes_exchanged() const { return bytes_exchanged_; }  // all-to-all payload sent to other ranks

  // "rank 1 stopped (no heartbeat for 3 s)": who is gone, asked of the store after a failure.
  std::string who_stopped();
  // Rethrows the current collective failure with who_stopped() and `what` (e.g. "averaging gradients").
  [[noreturn]] void fail(const std::string& what, const std::exception& e);

  // Bytes this process handed to collectives so far (payload, not protocol).
  int64_t bytes_sent() const { return bytes_sent_; }
  double seconds_waiting() const { return seconds_waiting_; }

 private:
  void heartbeat_loop();

  DistributedOptions opt_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Store> heartbeat_store_;  // a connection of its own (the thread's)
  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
  c10::intrusive_ptr<c10d::ProcessGroup> expert_pg_;  // start_expert_exchange()
  std::thread heartbeat_;
  std::atomic<bool> stop_{false};
  int64_t bytes_sent_ = 0;
  int64_t bytes_exchanged_ = 0;
  double seconds_waiting_ = 0;
};

// DistributedDataParallel's gradient reduction: the parameters are grouped in buckets of about
// `bucket_bytes` in reverse order (the order a backward pass finishes them); when the last gradient
// of a bucket is accumulated during an armed backward pass, the bucket is flattened and its sum
// started, while the backward pass goes on. finish() starts what is left (parameters this backward
// did not reach), waits, and writes back the average over the processes. A parameter with no gradient
// on any process keeps none (as in one process); with one on some, the others count zeros.
class GradientBuckets {
 public:
  GradientBuckets(Distributed& dist, const std::vector<torch::Tensor>& params, size_t bucket_bytes = 25u << 20);
  ~GradientBuckets();
  // The next backward pass is the last of the step: reduce its gradients as they become ready.
  void arm() { armed_ = true; }
  void finish();
  size_t buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    size_t ready = 0;
    torch::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void on_ready(size_t param);
  void launch(Bucket& b);

  Distributed& dist_;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive for their hooks
  std::vector<uintptr_t> hook_keys_;
  std::vector<char> seen_;
  bool armed_ = false;
};

}  // namespace m3vit
