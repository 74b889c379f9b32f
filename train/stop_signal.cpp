// SIGINT / SIGTERM -> a flag read at step boundaries (see stop_signal.h).
#include "train/stop_signal.h"

#include <csignal>

namespace m3vit {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

}  // namespace

StopSignalScope::StopSignalScope() {
  g_stop_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // one-shot: the second signal gets the default action
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

int stop_requested() { return g_stop_signal; }

void request_stop(int sig) { g_stop_signal = sig; }

}  // namespace m3vit
