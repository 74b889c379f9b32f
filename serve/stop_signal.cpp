#include "serve/stop_signal.h"

#include <pthread.h>
#include <signal.h>

#include <ctime>

namespace m3vit::serve {

namespace {
sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  return s;
}
}  // namespace

StopSignal::StopSignal() {
  const sigset_t s = stop_signals();
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

StopSignal::~StopSignal() {
  done_ = true;
  if (watcher_.joinable()) watcher_.join();
}

void StopSignal::watch(std::function<void(int)> on_stop) {
  watcher_ = std::thread([this, on_stop = std::move(on_stop)] {
    const sigset_t s = stop_signals();
    const timespec tick{0, 100'000'000};  // wakes every 100 ms to see whether it is still wanted
    while (!done_) {
      const int sig = sigtimedwait(&s, nullptr, &tick);
      if (sig > 0) {
        on_stop(sig);
        return;
      }
    }
  });
}

}  // namespace m3vit::serve
