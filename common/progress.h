// A one-line terminal progress bar with rate and ETA, redrawn at most 10 times a second:
//   train  [#########.........]  45/100  2.31 it/s  ETA 0:23  loss 0.8123 lr 0.0020
// On a non-terminal (CI logs) it prints a plain line every 10% instead of redrawing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace m3vit {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  // Advances to `done` and sets the trailing text (e.g. "loss 0.81").
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double rate() const;  // units per second so far
  // Changes the total (a run whose length is set after it started, e.g. a time budget).
  void set_total(int64_t total);

 private:
  void draw(bool final);
  std::string label_, unit_, extra_;
  int64_t total_, done_ = 0;
  int last_decile_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace m3vit
