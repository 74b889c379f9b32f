// Graceful stop on Ctrl-C (SIGINT) or SIGTERM: the handler only records the signal; the trainer
// looks at it at the next step boundary, writes a checkpoint and returns, and `m3vit train` exits
// with 128 + signal (130 / 143) as a shell expects. The handlers are one-shot (SA_RESETHAND): a
// second Ctrl-C while the checkpoint is being written stops the process at once, and the atomic
// write guarantees that the previous checkpoint is still intact.
#pragma once

namespace m3vit {

// Installs the handlers for its lifetime and restores the previous ones afterwards.
class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;
};

// The signal number received since the handlers were installed, or 0.
int stop_requested();
// Test hook: behave as if `sig` had been delivered.
void request_stop(int sig);

}  // namespace m3vit
