// PASCAL-Context multi-task data set in the PASCAL_MT layout of the authors' loader
// (data/pascal_context.py:286-371; docs/DATA.md):
//   <root>/ImageSets/Context/{train,val}.txt        split ids
//   <root>/JPEGImages/<id>.jpg                      RGB image
//   <root>/semseg/VOC12/<id>.png, else semseg/pascal-context/<id>.png   0..20, 255 ignore
//   <root>/human_parts/<id>.mat                     PASCAL-Part `anno` struct (6-part mapping)
//   <root>/normals_distill/<id>.png                 RGB, n = 2v/255 - 1, masked by the LabelMap classes
//   <root>/sal_distill/<id>.png                     gray, v/255 > 0.5
//   <root>/pascal-context/trainval/<id>.mat         `LabelMap`: edges and the normals mask
// The normals mask keeps pixels whose LabelMap class is in a list of valid classes. The authors build
// that list from data/db_info/{nyu,context}_classes.json of their repository (:124-136), which we do
// not ship; we read, in this order: PascalOptions::normals_classes (a text file of class ids, one per
// line, '#' comments), <root>/normals_valid_classes.txt, or the two json files under
// <root>/db_info/ (the authors' rule is then applied: NYU class names that are also context classes,
// except 'unknown', plus 'tvmonitor').
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/mat_file.h"

namespace m3vit {

struct PascalOptions {
  std::string root;                 // <db_root>/PASCAL_MT
  std::string split = "val";        // ImageSets/Context/<split>.txt
  std::vector<std::string> tasks;   // subset of semseg, human_parts, sal, normals, edge; empty = all five
  bool skip_bad = false;            // see data/dataset.h
  std::string normals_classes;      // optional valid-class list file (see above)
};

class PascalContextDataset : public Dataset {
 public:
  explicit PascalContextDataset(PascalOptions opts);
  std::string kind() const override { return "pascal"; }
  const std::vector<std::string>& tasks() const override { return tasks_; }
  size_t size() const override { return ids_.size(); }
  std::string sample_id(size_t i) const override;
  Sample get(size_t i) const override;

  const std::vector<SkippedSample>& skipped() const { return skipped_; }
  const std::vector<int>& normals_valid_classes() const { return normals_valid_; }
  // Loads one sample by id (no index bounds); used by get() and the skip-bad check.
  Sample load(const std::string& id) const;

 private:
  std::string path_of(const std::string& dir, const std::string& id, const std::string& ext) const;
  std::string semseg_path(const std::string& id) const;
  std::vector<std::string> required_files(const std::string& id) const;

  PascalOptions opts_;
  std::vector<std::string> tasks_;
  std::vector<std::string> ids_;
  std::vector<SkippedSample> skipped_;
  std::vector<int> normals_valid_;
};

// The 6-part mapping of PASCAL-Part person parts (authors' HUMAN_PART[6], :38-54): head 1, torso 2,
// upper arm 3, lower arm 4, upper leg 5, lower leg 6; -1 for a name outside the mapping.
int human_part_id(const std::string& part_name);

// The human_parts map [1,H,W] of one annotation, as the authors' _load_human_parts (:298-331): the parts
// of every person (class_ind 15) that has part masks, painted in file order; all zero when the image
// has no person. Masks of another size than (h, w) are resized nearest, as the authors do after loading.
// Throws FormatError naming `path` for an unknown part name.
ImageF human_parts_map(const PartsAnnotation& anno, int h, int w, const std::string& path);

// True if some object is a person with a non-empty mask (the authors' has_human_parts, area_thres 0).
bool has_person(const PartsAnnotation& anno);

// PASCAL edge map [1,H,W] from a LabelMap: thin(|Laplacian| > 0).
ImageF edge_from_labelmap(const MatMatrix& labelmap);

// The normals valid-class list from a text file of ids, or derived from the authors' json files.
std::vector<int> read_class_list(const std::string& path);
std::vector<int> derive_normals_valid_classes(const std::string& nyu_classes_json,
                                              const std::string& context_classes_json);

}  // namespace m3vit
