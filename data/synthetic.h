// The synthetic data set: procedural scenes (data/scene.h) generated on the fly, or cached to disk in
// the PASCAL_MT or NYUD_MT layout so that the real loaders (data/pascal_context.h, data/nyud.h) read
// them back and the same loader code is exercised. This is the default data set of the demo and tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace m3vit {

struct SyntheticOptions {
  uint64_t seed = 0;
  std::string split = "train";     // scenes of different splits never coincide
  int size = 64;                   // number of scenes
  int height = 96, width = 96;     // render resolution (any size)
  std::vector<std::string> tasks;  // empty = all six
};

class SyntheticDataset : public Dataset {
 public:
  explicit SyntheticDataset(SyntheticOptions opts);
  std::string kind() const override { return "synthetic"; }
  const std::vector<std::string>& tasks() const override { return tasks_; }
  size_t size() const override { return static_cast<size_t>(opts_.size); }
  std::string sample_id(size_t i) const override;
  Sample get(size_t i) const override;  // renders scene i (about 1-3 ms at 96x96)

 private:
  SyntheticOptions opts_;
  std::vector<std::string> tasks_;
};

struct SyntheticCacheOptions {
  std::string dir;                // written as <dir>/<files of the layout>
  std::string layout = "pascal";  // "pascal" (PASCAL_MT) or "nyud" (NYUD_MT)
  uint64_t seed = 0;
  int train = 64, val = 16;       // scenes per split
  int height = 96, width = 96;
  int jpeg_quality = 95;
};

// Renders and writes every scene of both splits in the chosen layout (see docs/DATA.md for the file
// list), with split files and, for PASCAL, the normals valid-class list. Files are written atomically;
// a progress bar is shown. Throws ConfigError for an unknown layout, IoError if a file cannot be written.
void cache_synthetic(const SyntheticCacheOptions& opts);

// Writes an RGB [3,H,W] 0..255 image as JPEG (stb), atomically.
void write_rgb_jpeg(const std::string& path, const ImageF& rgb, int quality);
// Writes an RGB [3,H,W] 0..255 image as PNG, atomically.
void write_rgb_png(const std::string& path, const ImageF& rgb);

}  // namespace m3vit
