// SIGTERM and SIGINT as an orderly stop: instead of killing the process, either signal calls a
// function once, on a thread of its own (where it may take locks and call into httplib, which a
// signal handler may not). The signals are blocked in the constructing thread and so in every thread
// started after it: construct this before the first thread (the engines' OpenMP teams included).
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace m3vit::serve {

class StopSignal {
 public:
  StopSignal();   // blocks SIGTERM and SIGINT in this thread (and its future threads)
  ~StopSignal();  // ends the watching thread; the signals stay blocked (the process is ending: a
                  // second SIGTERM during the drain must not kill it)
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Starts the thread that waits for a signal and then calls on_stop(signal number), once.
  void watch(std::function<void(int)> on_stop);

 private:
  std::thread watcher_;
  std::atomic<bool> done_{false};
};

}  // namespace m3vit::serve
