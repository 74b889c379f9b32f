// NYUD-v2 multi-task data set in the NYUD_MT layout of the authors' loader (data/nyud.py:192-214):
//   <root>/gt_sets/{train,val}.txt     split ids (795 / 654)
//   <root>/images/<id>.jpg             RGB image (480x640)
//   <root>/segmentation/<id>.png       0 = unlabelled -> 255, v -> v - 1 (40 classes 0..39)
//   <root>/depth/<id>.npy              [H,W] metres, 0 = missing
//   <root>/normals/<id>.npy            [H,W,3], zero vector = missing
//   <root>/edge/<id>.npy               [H,W] {0,1}
// .npy files of any numeric dtype are accepted and converted to float32.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace m3vit {

struct NyudOptions {
  std::string root;                // <db_root>/NYUD_MT
  std::string split = "val";       // gt_sets/<split>.txt
  std::vector<std::string> tasks;  // subset of semseg, normals, edge, depth; empty = all four
  bool skip_bad = false;           // see data/dataset.h
};

class NyudDataset : public Dataset {
 public:
  explicit NyudDataset(NyudOptions opts);
  std::string kind() const override { return "nyud"; }
  const std::vector<std::string>& tasks() const override { return tasks_; }
  size_t size() const override { return ids_.size(); }
  std::string sample_id(size_t i) const override;
  Sample get(size_t i) const override;

  const std::vector<SkippedSample>& skipped() const { return skipped_; }
  Sample load(const std::string& id) const;

 private:
  std::string path_of(const std::string& dir, const std::string& id, const std::string& ext) const;
  std::vector<std::string> required_files(const std::string& id) const;

  NyudOptions opts_;
  std::vector<std::string> tasks_;
  std::vector<std::string> ids_;
  std::vector<SkippedSample> skipped_;
};

// A .npy label as [C,H,W]: `channels` 1 accepts [H,W] or [H,W,1]; 3 accepts [H,W,3]. Any numeric dtype.
// Throws IoError / FormatError / ShapeError naming the file.
ImageF read_npy_label(const std::string& path, int channels);

}  // namespace m3vit
