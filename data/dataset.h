// The data set interface shared by the synthetic scenes and the PASCAL-Context / NYUD-v2 loaders, and
// the helpers they share: split files, JPEG/PNG labels, and the `--skip-bad` policy.
//
// `--skip-bad` (DatasetOptions::skip_bad): without it, a missing file fails the constructor (as the
// authors' asserts do, data/pascal_context.py:151-185) and a malformed one fails get() with an
// IoError/FormatError naming the file. With it, the constructor reads every sample once, prints one
// line per bad sample ("skipping <id>: <error>") to stderr, lists them in skipped(), and drops them;
// nothing is skipped silently.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "data/sample.h"

namespace m3vit {

class Dataset {
 public:
  virtual ~Dataset() = default;
  // "pascal", "nyud" or "synthetic": picks the augmentation recipe and the metric references.
  virtual std::string kind() const = 0;
  // Tasks this instance loads, in the authors' order (semseg, human_parts, sal, normals, edge, depth).
  virtual const std::vector<std::string>& tasks() const = 0;
  virtual size_t size() const = 0;
  virtual std::string sample_id(size_t i) const = 0;
  // The raw sample at original resolution (conventions in data/sample.h). Thread-safe.
  virtual Sample get(size_t i) const = 0;
};

// A bad sample found under skip_bad.
struct SkippedSample {
  std::string id;
  std::string reason;
};

// Reads a split file (one id per line; blank lines and surrounding spaces ignored). Throws IoError
// naming the file if it is missing, FormatError if it lists no ids.
std::vector<std::string> read_split_file(const std::string& path);

// Orders and validates a task list against the tasks a data set supports; throws ConfigError naming
// the offending task and the supported ones. An empty request means "all supported".
std::vector<std::string> select_tasks(const std::vector<std::string>& requested,
                                      const std::vector<std::string>& supported, const std::string& dataset);

// Image file -> [3,H,W] RGB 0..255 floats (JPEG or PNG).
ImageF load_rgb(const std::string& path);

// Applies the skip_bad policy over `ids`: tries load(i) for each; with skip_bad the bad ones are
// reported on stderr, appended to `skipped` and removed from the returned index list; without it the
// first error propagates. Shows a progress bar when there are many samples.
std::vector<size_t> check_samples(const std::vector<std::string>& ids, const std::string& what,
                                  const std::function<void(size_t)>& load, bool skip_bad,
                                  std::vector<SkippedSample>& skipped);

}  // namespace m3vit
