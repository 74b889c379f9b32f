// `m3vit train --nproc N`: N training processes on this host, as `torchrun --nproc_per_node N` starts
// them: each is this program again, with the same arguments less `--nproc`, and the torchrun
// environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT = a free port).
// The launcher only starts and watches: the processes meet through c10d (train/distributed.h).
#pragma once

#include <string>
#include <vector>

namespace m3vit {

// Starts the processes and waits for all of them. When one fails (non-zero exit or a signal), says
// which rank and how ("rank 1 (pid 4242) was killed by signal 9 (Killed)"), gives the others
// `grace_s` to stop on their own (they see the lost peer in their next collective), then kills them.
// SIGINT/SIGTERM to the launcher are passed on, so the run writes its checkpoint as one process does.
// Returns the exit code for the launcher: 0, the failed rank's exit code, or 128 + its signal.
int launch_local_processes(int nproc, double grace_s = 60);

// The command line of this process (/proc/self/cmdline) without `--nproc N` / `--nproc=N`.
std::vector<std::string> own_arguments_without_nproc();

}  // namespace m3vit
