// Local launcher of a data-parallel run (see launch.h).
#include "train/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit {

namespace {

volatile sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

// A TCP port nobody listens on now (the kernel's pick for port 0), for rank 0's rendezvous. Another
// program could take it before rank 0 does; torchrun's standalone mode takes the same small risk.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw IoError(std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status))
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

std::vector<std::string> own_arguments_without_nproc() {
  const std::string raw = read_file("/proc/self/cmdline");
  std::vector<std::string> all;
  for (size_t i = 0; i < raw.size();) {
    const size_t end = raw.find('\0', i);
    all.push_back(raw.substr(i, end == std::string::npos ? std::string::npos : end - i));
    if (end == std::string::npos) break;
    i = end + 1;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (all[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(all[i]);
  }
  return out;
}

int launch_local_processes(int nproc, double grace_s) {
  if (nproc < 2) throw ConfigError("--nproc needs 2 or more processes");
  const std::vector<std::string> args = own_arguments_without_nproc();
  const int port = free_port();
  std::fprintf(stderr, "starting %d training processes (rendezvous at 127.0.0.1:%d)\n", nproc, port);

  struct sigaction sa{}, old_int{}, old_term{};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  std::vector<pid_t> pids(nproc, -1);
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw IoError(std::string("cannot start a training process: ") + std::strerror(errno));
    if (pid == 0) {
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "rank %d: cannot start %s: %s\n", r, args[0].c_str(), std::strerror(errno));
      ::_exit(127);
    }
    pids[r] = pid;
  }

  int running = nproc, rc = 0, failed_rank = -1;
  auto deadline = std::chrono::steady_clock::time_point::max();
  bool killed = false, stopping = false;
  while (running > 0) {
    if (g_forward_signal) {
      stopping = true;
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGTERM);  // each process checkpoints and stops, as one process does
      g_forward_signal = 0;
    }
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < nproc; ++r)
        if (pids[r] > 0) {
          std::fprintf(stderr, "rank %d did not stop within %.0f s after rank %d failed: killing it\n", r, grace_s,
                       failed_rank);
          ::kill(pids[r], SIGKILL);
        }
      killed = true;
    }
    int status = 0;
    const pid_t p = ::waitpid(-1, &status, WNOHANG);
    if (p == 0 || (p < 0 && errno == EINTR)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (p < 0) break;
    int r = 0;
    while (r < nproc && pids[r] != p) ++r;
    if (r == nproc) continue;
    pids[r] = -1;
    --running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (stopping && !ok && rc == 0) rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!ok && !stopping && failed_rank < 0) {
      failed_rank = r;
      rc = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
      std::fprintf(stderr, "rank %d (pid %d) %s\n", r, static_cast<int>(p), how_it_ended(status).c_str());
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (failed_rank >= 0)
    std::fprintf(stderr, "training stopped: rank %d failed (the others' logs are rank<N>.log in the output folder)\n",
                 failed_rank);
  return rc;
}

}  // namespace m3vit
