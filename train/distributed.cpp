// Data-parallel training on c10d (see distributed.h).
#include "common/pch/torch_pch.h"

#include "train/distributed.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
// ProcessGroupGloo.hpp is empty unless this is defined (torch's own build defines it for the library).
#define USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <cstdio>

#include "common/errors.h"

namespace m3vit {

namespace {

using Clock = std::chrono::steady_clock;

// "RANK=abc": a whole number in [lo, hi], or ConfigError naming the variable.
int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw ConfigError(std::string(name) + "=" + v + " in the environment is not a whole number in " +
                      std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int>(x);
}

std::chrono::milliseconds millis(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

c10::intrusive_ptr<c10d::Store> connect_store(const DistributedOptions& o, bool server, double timeout_s) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  so.isServer = server;
  so.numWorkers = o.world_size;
  so.waitWorkers = false;  // the process group's rendezvous waits for everyone, with the timeout
  so.timeout = millis(timeout_s);
  return c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
}

std::string heartbeat_key(int rank) { return "m3vit/heartbeat/" + std::to_string(rank); }

// One Gloo group's options: the timeout and the network device.
c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> gloo_options(const DistributedOptions& o) {
  auto pg_opts = c10d::ProcessGroupGloo::Options::create(millis(o.timeout_s));
  // Loopback for a one-host run; otherwise the interface GLOO_SOCKET_IFNAME names (as torch), or the
  // one the host name resolves to.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    pg_opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (o.master_addr == "127.0.0.1" || o.master_addr == "localhost")
    pg_opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    pg_opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  return pg_opts;
}

}  // namespace

DistributedOptions distributed_options_from_env() {
  DistributedOptions o;
  o.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  o.rank = env_int("RANK", 0, 0, o.world_size - 1);
  o.local_rank = env_int("LOCAL_RANK", o.rank, 0, 1 << 20);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  o.master_port = env_int("MASTER_PORT", o.master_port, 1, 65535);
  return o;
}

Distributed::Distributed(const DistributedOptions& o) : opt_(o) {
  if (o.world_size < 2) throw ConfigError("a distributed run needs a world size of 2 or more");
  if (o.rank < 0 || o.rank >= o.world_size)
    throw ConfigError("rank " + std::to_string(o.rank) + " outside a world of " + std::to_string(o.world_size));
  const bool server = o.rank == 0;
  try {
    store_ = connect_store(o, server, o.timeout_s);
  } catch (const std::exception& e) {
    throw PeerError(std::string("rank ") + std::to_string(o.rank) + ": " +
                    (server ? "cannot host the rendezvous on port " + std::to_string(o.master_port)
                            : "cannot reach the master at " + o.master()) +
                    " within " + std::to_string(static_cast<int>(o.timeout_s)) + " s (" + e.what() + ")");
  }
  auto pg_opts = gloo_options(o);
  try {
    pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, o.rank, o.world_size, pg_opts);
    heartbeat_store_ = connect_store(o, false, o.timeout_s);
  } catch (const std::exception& e) {
    throw PeerError("rank " + std::to_string(o.rank) + ": not every one of the " + std::to_string(o.world_size) +
                    " processes joined at " + o.master() + " within " +
                    std::to_string(static_cast<int>(o.timeout_s)) + " s (" + e.what() + ")");
  }
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
}

Distributed::~Distributed() {
  stop_ = true;
  if (heartbeat_.joinable()) heartbeat_.join();
}

void Distributed::heartbeat_loop() {
  int ticks = 0;
  while (!stop_) {
    if (ticks++ % 10 == 0) {
      try {
        heartbeat_store_->add(heartbeat_key(opt_.rank), 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 stopped); the next collective reports it
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string Distributed::who_stopped() {
  c10::intrusive_ptr<c10d::Store> s;
  try {
    s = connect_store(opt_, false, 3.0);
  } catch (const std::exception&) {
    return "rank 0 (the master at " + opt_.master() + ", which holds the rendezvous) stopped or cannot be reached";
  }
  try {
    std::vector<int64_t> before(opt_.world_size);
    for (int r = 0; r < opt_.world_size; ++r) before[r] = s->add(heartbeat_key(r), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // 2.5 beats
    std::vector<std::string> stopped;
    for (int r = 0; r < opt_.world_size; ++r)
      if (r != opt_.rank && s->add(heartbeat_key(r), 0) == before[r]) stopped.push_back(std::to_string(r));
    if (stopped.empty()) return "every other process still beats: one is slow, or the network between them failed";
    std::string out = stopped.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < stopped.size(); ++i) out += (i ? ", " : "") + stopped[i];
    return out + " stopped (no heartbeat; see " + (stopped.size() == 1 ? "its" : "their") + " log)";
  } catch (const std::exception&) {
    return "rank 0 (the master at " + opt_.master() + ", which holds the rendezvous) stopped or cannot be reached";
  }
}

void Distributed::fail(const std::string& what, const std::exception& e) {
  std::string cause = e.what();
  if (const auto nl = cause.find('\n'); nl != std::string::npos) cause.resize(nl);  // c10 adds a backtrace
  throw PeerError("rank " + std::to_string(opt_.rank) + ": " + what + " failed: " + who_stopped() + " [" + cause + "]");
}

void Distributed::sum_in_place(std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
  // One flat tensor per call: c10d's allreduce of a list sums the list's tensors into each other too
  // (they stand for one process's GPUs), which is not what a list means here.
  const auto dtype = tensors.front().scalar_type();
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) {
    TORCH_CHECK(t.scalar_type() == dtype, "sum over processes: tensors of one call must share a dtype");
    flat_parts.push_back(t.reshape({-1}));
  }
  std::vector<torch::Tensor> one{tensors.size() == 1 && tensors[0].is_contiguous() ? tensors[0] : torch::cat(flat_parts)};
  bytes_sent_ += static_cast<int64_t>(one[0].numel() * one[0].element_size());
  const auto t0 = Clock::now();
  try {
    pg_->allreduce(one)->wait();
  } catch (const std::exception& e) {
    fail("a sum over the processes", e);
  }
  seconds_waiting_ += std::chrono::duration<double>(Clock::now() - t0).count();
  if (one[0].data_ptr() == tensors[0].data_ptr()) return;
  int64_t off = 0;
  for (auto& t : tensors) {
    t.copy_(one[0].narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

void Distributed::broadcast_from_rank0(std::vector<torch::Tensor>& tensors) {
  try {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{t};
      pg_->broadcast(one)->wait();
    }
  } catch (const std::exception& e) {
    fail("the broadcast of rank 0's weights", e);
  }
}

void Distributed::barrier() {
  const auto t0 = Clock::now();
  try {
    pg_->barrier()->wait();
  } catch (const std::exception& e) {
    fail("waiting for the other processes", e);
  }
  seconds_waiting_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

c10::intrusive_ptr<c10d::Work> Distributed::sum_async(torch::Tensor& t) {
  bytes_sent_ += static_cast<int64_t>(t.numel() * t.element_size());
  std::vector<torch::Tensor> one{t};
  try {
    return pg_->allreduce(one);
  } catch (const std::exception& e) {
    fail("averaging gradients", e);
  }
}

void Distributed::wait(const c10::intrusive_ptr<c10d::Work>& w) {
  const auto t0 = Clock::now();
  try {
    w->wait();
  } catch (const std::exception& e) {
    fail("averaging gradients", e);
  }
  seconds_waiting_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

void Distributed::start_expert_exchange() {
  if (expert_pg_) return;
  try {
    expert_pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("m3vit/experts", store_),
                                                              opt_.rank, opt_.world_size, gloo_options(opt_));
  } catch (const std::exception& e) {
    fail("joining the experts' token exchange", e);
  }
}

torch::Tensor Distributed::all_to_all(const torch::Tensor& in, const std::vector<int64_t>& send_rows,
                                      const std::vector<int64_t>& recv_rows) {
  TORCH_CHECK(expert_pg_, "all_to_all before start_expert_exchange()");
  int64_t recv_total = 0;
  for (int64_t n : recv_rows) recv_total += n;
  std::vector<int64_t> shape = in.sizes().vec();
  shape[0] = recv_total;
  torch::Tensor input = in.contiguous();
  torch::Tensor out = torch::empty(shape, input.options());
  int64_t row_bytes = input.element_size();  // from the shape: a rank may have no row to send
  for (int64_t i = 1; i < input.dim(); ++i) row_bytes *= input.size(i);
  for (int s = 0; s < opt_.world_size; ++s)
    if (s != opt_.rank) bytes_exchanged_ += send_rows[s] * row_bytes;
  std::vector<int64_t> out_splits(recv_rows), in_splits(send_rows);
  const auto t0 = Clock::now();
  try {
    expert_pg_->alltoall_base(out, input, out_splits, in_splits)->wait();
  } catch (const std::exception& e) {
    fail("sending tokens to their experts' ranks", e);
  }
  seconds_waiting_ += std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

torch::Tensor Distributed::all_gather_cat(const torch::Tensor& t) {
  TORCH_CHECK(expert_pg_, "all_gather_cat before start_expert_exchange()");
  std::vector<torch::Tensor> in{t.contiguous()};
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < opt_.world_size; ++r) out[0].push_back(torch::empty_like(in[0]));
  try {
    expert_pg_->allgather(out, in)->wait();
  } catch (const std::exception& e) {
    fail("gathering the experts of every rank", e);
  }
  return torch::cat(out[0], 0);
}

GradientBuckets::GradientBuckets(Distributed& dist, const std::vector<torch::Tensor>& params, size_t bucket_bytes)
    : dist_(dist), params_(params), bucket_of_(params.size()), seen_(params.size(), 0) {
  // Reverse order: the backward pass produces the last layers' gradients first (DDP does the same).
  size_t bytes = bucket_bytes;
  for (size_t k = params_.size(); k-- > 0;) {
    if (bytes >= bucket_bytes) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += static_cast<size_t>(params_[k].numel()) * params_[k].element_size();
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (armed_) on_ready(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));
  }
}

GradientBuckets::~GradientBuckets() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradientBuckets::on_ready(size_t k) {
  if (seen_[k]) return;
  seen_[k] = 1;
  ++buckets_[bucket_of_[k]].ready;
  // Buckets start in order, so that every process issues the same collectives in the same order
  // even when their backward passes reach the parameters differently (an expert without tokens).
  for (Bucket& b : buckets_) {
    if (b.work) continue;
    if (b.ready < b.params.size()) break;
    launch(b);
  }
}

void GradientBuckets::launch(Bucket& b) {
  std::vector<torch::Tensor> parts;
  parts.reserve(b.params.size());
  for (size_t k : b.params) {
    const torch::Tensor& g = params_[k].grad();
    parts.push_back(g.defined() ? g.reshape({-1}) : torch::zeros({params_[k].numel()}, params_[k].options()));
  }
  b.flat = torch::cat(parts);
  b.work = dist_.sum_async(b.flat);
}

void GradientBuckets::finish() {
  for (Bucket& b : buckets_)
    if (!b.work) launch(b);
  // Which parameters have a gradient anywhere (summed flags), so that one nobody reached keeps none.
  torch::Tensor has = torch::empty({static_cast<int64_t>(params_.size())}, torch::kFloat);
  for (size_t k = 0; k < params_.size(); ++k) has[k] = params_[k].grad().defined() ? 1.0f : 0.0f;
  std::vector<torch::Tensor> flags{has};
  for (Bucket& b : buckets_) dist_.wait(b.work);
  dist_.sum_in_place(flags);
  const auto* anywhere = flags[0].data_ptr<float>();
  const double inv = 1.0 / dist_.world_size();
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    int64_t off = 0;
    for (size_t k : b.params) {
      torch::Tensor& p = params_[k];
      const int64_t n = p.numel();
      if (anywhere[k] > 0) {
        torch::Tensor avg = b.flat.narrow(0, off, n).view(p.sizes()).mul_(inv);
        if (p.grad().defined())
          p.mutable_grad().copy_(avg);
        else
          p.mutable_grad() = avg.clone();
      }
      off += n;
    }
    b.ready = 0;
    b.work.reset();
    b.flat = torch::Tensor();
  }
  std::fill(seen_.begin(), seen_.end(), 0);
  armed_ = false;
}

}  // namespace m3vit
