#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace m3vit {

namespace {
std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total > 0 ? total : 1),
      tty_(::isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()), last_draw_() {}

double ProgressBar::rate() const {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return el > 0 ? done_ / el : 0.0;
}

void ProgressBar::set_total(int64_t total) { total_ = total > 0 ? total : 1; }

void ProgressBar::update(int64_t done, const std::string& extra) {
  done_ = done;
  extra_ = extra;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    draw(false);
  } else {
    int decile = static_cast<int>(10 * done_ / total_);
    if (decile != last_decile_) {
      last_decile_ = decile;
      draw(false);
    }
  }
}

void ProgressBar::finish(const std::string& extra) {
  if (!extra.empty()) extra_ = extra;
  done_ = total_;
  draw(true);
}

void ProgressBar::draw(bool final) {
  const int width = 24;
  int filled = static_cast<int>(width * done_ / total_);
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  double r = rate();
  double eta = r > 0 ? (total_ - done_) / r : -1;
  char head[256];
  std::snprintf(head, sizeof head, "%-8s [%s] %lld/%lld  %.2f %s/s  %s %s", label_.c_str(), bar.c_str(),
                (long long)done_, (long long)total_, r, unit_.c_str(), final ? "took" : "ETA",
                format_duration(final ? std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() : eta).c_str());
  if (tty_)
    std::fprintf(stderr, "\r%s  %s\033[K%s", head, extra_.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "%s  %s\n", head, extra_.c_str());
  std::fflush(stderr);
}

}  // namespace m3vit
