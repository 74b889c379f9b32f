// Resident and streamed expert weights (runtime/expert_stream.h).
#include "runtime/expert_stream.h"

#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "common/errors.h"
#include "runtime/model_file.h"

namespace m3vit::rt {

const char* to_string(ExpertMode m) { return m == ExpertMode::stream ? "stream" : "resident"; }

ExpertMode expert_mode_from_string(const std::string& s) {
  if (s == "resident") return ExpertMode::resident;
  if (s == "stream") return ExpertMode::stream;
  throw ConfigError("unknown expert mode '" + s + "' (expected resident or stream)");
}

size_t parse_bytes(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    throw ConfigError("cannot read a byte count from '" + s + "' (examples: 8M, 1.5G, 4096)");
  }
  std::string unit = s.substr(pos);
  double mul = 1;
  if (unit == "" || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KiB" || unit == "k") mul = 1024.0;
  else if (unit == "M" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else throw ConfigError("unknown unit '" + unit + "' in byte count '" + s + "' (use K, M or G)");
  if (!(v >= 0) || !std::isfinite(v)) throw ConfigError("byte count '" + s + "' must be a non-negative number");
  return static_cast<size_t>(v * mul);
}

ExpertStream::ExpertStream(DnnlContext& ctx, const ModelFile& file, ExpertMode mode, size_t budget,
                           const MatmulBank& fc1, const MatmulBank& fc2)
    : mode_(mode), path_(file.path()), eng_(ctx.eng) {
  const ModelConfig& c = file.config();
  d_ = c.embed_dim;
  hid_ = c.moe_hidden();
  E_ = c.moe_experts;
  std::vector<int> moe_blocks;
  for (int i = 0; i < c.depth; ++i)
    if (c.is_moe_block(i)) moe_blocks.push_back(i);
  if (moe_blocks.empty()) return;
  const size_t w1 = static_cast<size_t>(hid_) * d_;
  expert_bytes_ = fc1.weights_desc().get_size() + fc2.weights_desc().get_size() + (hid_ + d_) * sizeof(float);

  if (mode == ExpertMode::resident) {
    fc1_.resize(moe_blocks.size());
    fc2_.resize(moe_blocks.size());
    resident_.resize(moe_blocks.size());
    for (size_t l = 0; l < moe_blocks.size(); ++l) {
      const int b = moe_blocks[l];
      const std::string k1 = block_key(b, "mlp.experts.htoh4."), k2 = block_key(b, "mlp.experts.h4toh.");
      const float* W1 = file.data(k1 + "weight");  // [E, hid, d]
      const float* B1 = file.data(k1 + "bias");    // [E, hid]
      const float* W2 = file.data(k2 + "weight");  // [E, d, hid]
      const float* B2 = file.data(k2 + "bias");    // [E, d]
      for (int e = 0; e < E_; ++e) {
        fc1_[l].push_back(fc1.pack(W1 + e * w1, B1 + static_cast<size_t>(e) * hid_));
        fc2_[l].push_back(fc2.pack(W2 + e * w1, B2 + static_cast<size_t>(e) * d_));
      }
      for (const char* n : {"weight", "bias"}) {
        file.release(k1 + n);
        file.release(k2 + n);
      }
      for (int e = 0; e < E_; ++e) resident_[l].push_back({&fc1_[l][e], &fc2_[l][e]});
    }
    return;
  }

  // Stream mode: check every expert tensor once (by reading, not mapping), remember where they are.
  for (int b : moe_blocks) {
    const std::string k1 = block_key(b, "mlp.experts.htoh4."), k2 = block_key(b, "mlp.experts.h4toh.");
    for (const std::string& k : {k1 + "weight", k1 + "bias", k2 + "weight", k2 + "bias"}) file.check_finite_by_reading(k);
    src_.push_back({file.file_offset(k1 + "weight"), file.file_offset(k1 + "bias"), file.file_offset(k2 + "weight"),
                    file.file_offset(k2 + "bias")});
  }
  const size_t need = 2 * expert_bytes_;
  if (budget == 0) budget = need;
  if (budget < need)
    throw ConfigError("memory budget " + std::to_string(budget) + " bytes is below two expert buffers (" +
                      std::to_string(need) + " bytes for d=" + std::to_string(d_) + ", hidden=" +
                      std::to_string(hid_) + ", " + to_string(fc1.precision()) + ")");
  const int nslots = static_cast<int>(std::min<size_t>(budget / expert_bytes_, static_cast<size_t>(std::max(E_, 2))));
  using dnnl::memory;
  slot_.resize(nslots);
  for (auto& s : slot_) {
    s.fc1.weights = memory(fc1.weights_desc(), eng_);
    s.fc1.bias = memory({{1, hid_}, memory::data_type::f32, memory::format_tag::ab}, eng_);
    s.fc2.weights = memory(fc2.weights_desc(), eng_);
    s.fc2.bias = memory({{1, d_}, memory::data_type::f32, memory::format_tag::ab}, eng_);
    s.view = {&s.fc1, &s.fc2};
  }
  // The file's [out, in] rows are format "ba" of the matmul's [in, out] operand.
  plain1_ = memory::desc({d_, hid_}, memory::data_type::f32, memory::format_tag::ba);
  plain2_ = memory::desc({hid_, d_}, memory::data_type::f32, memory::format_tag::ba);
  pack1_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain1_, eng_, fc1.weights_desc()));
  pack2_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain2_, eng_, fc2.weights_desc()));
  staging_.assign(w1, 0.f);
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw IoError(path_ + ": cannot open for expert streaming");
  queue_.reserve(slot_.size());
  active_.reserve(E_);
  reader_ = std::thread([this] { reader_loop(); });
}

ExpertStream::~ExpertStream() {
  if (reader_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    reader_.join();
  }
  if (fd_ >= 0) ::close(fd_);
}

size_t ExpertStream::buffer_bytes() const {
  if (mode_ == ExpertMode::stream) return slot_.size() * expert_bytes_ + staging_.size() * sizeof(float);
  size_t n = 0;
  for (size_t l = 0; l < fc1_.size(); ++l)
    for (size_t e = 0; e < fc1_[l].size(); ++e) n += fc1_[l][e].bytes() + fc2_[l][e].bytes();
  return n;
}

void ExpertStream::post(int i) {
  Slot& s = slot_[i % slot_.size()];
  s.job = i;
  s.state = Slot::kLoading;
  queue_.push_back({layer_, active_[i], i});
}

void ExpertStream::begin_layer(int moe_layer, const std::vector<int32_t>& active) {
  layer_ = moe_layer;
  if (mode_ == ExpertMode::resident) {
    active_.assign(active.begin(), active.end());
    return;
  }
  std::unique_lock<std::mutex> lk(mu_);
  // A previous layer that ended early (an error) may still have loads in flight: let them finish.
  cv_.wait(lk, [&] {
    if (!queue_.empty()) return false;
    for (auto& s : slot_)
      if (s.state == Slot::kLoading) return false;
    return true;
  });
  for (auto& s : slot_) {
    s.job = -1;
    s.state = Slot::kFree;
    s.error.clear();
  }
  aborted_ = false;
  active_.assign(active.begin(), active.end());
  // Fill every buffer: expert 0 into slot 0, expert 1 into slot 1 (ping-pong), ...
  for (int i = 0; i < static_cast<int>(std::min(active_.size(), slot_.size())); ++i) post(i);
  lk.unlock();
  cv_.notify_all();
}

const ExpertWeights& ExpertStream::acquire(int i) {
  if (mode_ == ExpertMode::resident) return resident_[layer_][active_[i]];
  Slot& s = slot_[i % slot_.size()];
  std::unique_lock<std::mutex> lk(mu_);
  if (!(s.job == i && (s.state == Slot::kReady || s.state == Slot::kFailed))) {
    const auto t0 = std::chrono::steady_clock::now();
    cv_.wait(lk, [&] { return aborted_ || (s.job == i && (s.state == Slot::kReady || s.state == Slot::kFailed)); });
    stats_.wait_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  if (s.job == i && s.state == Slot::kFailed) throw IoError(s.error);
  if (aborted_) throw IoError(path_ + ": expert streaming stopped after an earlier error in MoE layer " + std::to_string(layer_));
  return s.view;
}

void ExpertStream::release(int i) {
  if (mode_ == ExpertMode::resident) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    slot_[i % slot_.size()].state = Slot::kFree;
    // The freed buffer takes the expert `slots` positions ahead: while expert i+1 computes from the
    // other buffer, expert i+2 arrives in this one.
    const int next = i + static_cast<int>(slot_.size());
    if (next < static_cast<int>(active_.size())) post(next);
  }
  cv_.notify_all();
}

void ExpertStream::abort() {
  if (mode_ == ExpertMode::resident) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

void ExpertStream::reader_loop() {
  // The reorders below run on this thread alone (OpenMP settings are per thread): the compute
  // threads keep both cores.
  omp_set_num_threads(1);
  dnnl::stream strm(eng_);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const Job job = queue_.front();
    queue_.erase(queue_.begin());
    Slot& s = slot_[job.index % slot_.size()];
    lk.unlock();
    std::string err;
    int64_t bytes = 0;
    try {
      bytes = load(job.layer, job.expert, s, strm);
    } catch (const std::exception& e) {
      err = e.what();
    }
    lk.lock();
    s.error = err;
    s.state = err.empty() ? Slot::kReady : Slot::kFailed;
    ++stats_.loads;
    stats_.bytes_read += bytes;
    lk.unlock();
    cv_.notify_all();
    lk.lock();
  }
}

int64_t ExpertStream::load(int layer, int expert, Slot& s, dnnl::stream& strm) {
  const LayerSource& src = src_[layer];
  const size_t w = static_cast<size_t>(hid_) * d_;
  int64_t total = 0;
  auto read = [&](void* dst, size_t bytes, size_t off) {
    size_t done = 0;
    while (done < bytes) {
      const ssize_t got = ::pread(fd_, static_cast<uint8_t*>(dst) + done, bytes - done, static_cast<off_t>(off + done));
      if (got <= 0)
        throw IoError(path_ + ": reading expert " + std::to_string(expert) + " of MoE layer " + std::to_string(layer) +
                      " failed (" + (got < 0 ? std::strerror(errno) : "unexpected end of file") + ")");
      done += static_cast<size_t>(got);
    }
    total += static_cast<int64_t>(bytes);
  };
  using dnnl::memory;
  // htoh4[e] [hid, d] -> packed fc1; h4toh[e] [d, hid] -> packed fc2; biases as they are.
  read(staging_.data(), w * 4, src.w1 + expert * w * 4);
  memory plain1(plain1_, eng_, staging_.data());
  pack1_.execute(strm, plain1, s.fc1.weights);
  strm.wait();
  read(s.fc1.bias.get_data_handle(), hid_ * 4, src.b1 + static_cast<size_t>(expert) * hid_ * 4);
  read(staging_.data(), w * 4, src.w2 + expert * w * 4);
  memory plain2(plain2_, eng_, staging_.data());
  pack2_.execute(strm, plain2, s.fc2.weights);
  strm.wait();
  read(s.fc2.bias.get_data_handle(), d_ * 4, src.b2 + static_cast<size_t>(expert) * d_ * 4);
  return total;
}

}  // namespace m3vit::rt
