// The weight ring (runtime/weight_stream.h).
#include "runtime/weight_stream.h"

#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/errors.h"

namespace m3vit::rt {

namespace {
void* aligned(size_t bytes) {
  void* p = std::aligned_alloc(64, std::max<size_t>((bytes + 63) / 64 * 64, 64));
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

WeightStream::WeightStream(const dnnl::engine& eng, const std::string& path, int slots, size_t slot_bytes,
                           size_t staging_bytes)
    : eng_(eng), path_(path), slot_bytes_((slot_bytes + 63) / 64 * 64), staging_bytes_(staging_bytes),
      slot_(std::max(slots, 2)) {
  mem_.reset(static_cast<uint8_t*>(aligned(slot_bytes_ * slot_.size())));
  staging_.reset(static_cast<float*>(aligned(staging_bytes)));
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw IoError(path + ": cannot open for weight streaming (" + std::strerror(errno) + ")");
  reader_ = std::thread([this] { reader_loop(); });
}

WeightStream::~WeightStream() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  reader_.join();
  ::close(fd_);
}

void WeightStream::read(void* dst, size_t bytes, size_t off, const std::string& what) const {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(fd_, static_cast<uint8_t*>(dst) + done, bytes - done, static_cast<off_t>(off + done));
    if (got <= 0)
      throw IoError(path_ + ": reading " + what + " failed (" + (got < 0 ? std::strerror(errno) : "unexpected end of file") +
                    ")");
    done += static_cast<size_t>(got);
  }
}

void WeightStream::reset() {
  std::unique_lock<std::mutex> lk(mu_);
  // A load in flight writes into its slot: let it finish before the slots are reused.
  pending_.clear();
  cv_.wait(lk, [&] { return loading_ == 0; });
  for (Slot& s : slot_) s = Slot{};
  next_ = posted_ = 0;
  aborted_ = false;
}

int WeightStream::post(Load load) {
  int ticket;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ticket = posted_++;
    pending_.push_back(std::move(load));
  }
  cv_.notify_all();
  return ticket;
}

int WeightStream::acquire(int ticket) {
  const int si = ticket % static_cast<int>(slot_.size());
  Slot& s = slot_[si];
  std::unique_lock<std::mutex> lk(mu_);
  auto done = [&] { return s.ticket == ticket && (s.state == Slot::kReady || s.state == Slot::kFailed); };
  if (!done() && !aborted_) {
    const auto t0 = std::chrono::steady_clock::now();
    cv_.wait(lk, [&] { return aborted_ || done(); });
    stats_.wait_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  if (done() && s.state == Slot::kFailed) throw IoError(s.error);
  if (aborted_) throw IoError("weight streaming stopped after an earlier error");
  return si;
}

void WeightStream::release(int ticket) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    Slot& s = slot_[ticket % slot_.size()];
    if (s.ticket == ticket) s.state = Slot::kFree;
  }
  cv_.notify_all();
}

void WeightStream::abort() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

void WeightStream::reader_loop() {
  // Reorders run on this thread alone (OpenMP settings are per thread): the compute threads keep
  // the cores.
  omp_set_num_threads(1);
  dnnl::stream strm(eng_);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    // The next ticket's slot is free when unused this image or released by the ticket `slots` before.
    cv_.wait(lk, [&] { return stop_ || (!pending_.empty() && slot_[next_ % slot_.size()].state == Slot::kFree); });
    if (stop_) return;
    const int ticket = next_++;
    Load load = std::move(pending_.front());
    pending_.pop_front();
    Slot& s = slot_[ticket % slot_.size()];
    s.ticket = ticket;
    s.state = Slot::kLoading;
    ++loading_;
    lk.unlock();
    std::string err;
    int64_t bytes = 0;
    try {
      bytes = load(slot(ticket % static_cast<int>(slot_.size())), strm);
    } catch (const std::exception& e) {
      err = e.what();
    }
    lk.lock();
    s.error = err;
    s.state = err.empty() ? Slot::kReady : Slot::kFailed;
    --loading_;
    ++stats_.loads;
    stats_.bytes_read += bytes;
    cv_.notify_all();
  }
}

}  // namespace m3vit::rt
