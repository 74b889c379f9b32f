// PASCAL-Context multi-task loader (data/pascal_context.h; authors' data/pascal_context.py).
#include "data/pascal_context.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/progress.h"
#include "data/edge_maps.h"
#include "data/image_ops.h"
#include "data/label_png.h"

namespace m3vit {

namespace {

constexpr int kPersonClass = 15;  // VOC 'person' (authors' human_parts_category)

const std::vector<std::string> kPascalTasks = {"semseg", "human_parts", "sal", "normals", "edge"};

// Resizes a label map to the image size if it differs (authors: cv2.resize after loading, :246-272).
void fit_to_image(ImageF& label, int h, int w, Interp interp) {
  if (label.h != h || label.w != w) label = resize(label, h, w, interp);
}

}  // namespace

int human_part_id(const std::string& n) {
  static const std::map<std::string, int> kSixParts = {
      {"hair", 1},  {"head", 1},  {"lear", 1},   {"lebrow", 1}, {"leye", 1},  {"mouth", 1}, {"nose", 1},
      {"rear", 1},  {"rebrow", 1}, {"reye", 1},  {"neck", 2},   {"torso", 2}, {"luarm", 3}, {"ruarm", 3},
      {"lhand", 4}, {"llarm", 4}, {"rhand", 4},  {"rlarm", 4},  {"luleg", 5}, {"ruleg", 5}, {"lfoot", 6},
      {"llleg", 6}, {"rfoot", 6}, {"rlleg", 6}};
  auto it = kSixParts.find(n);
  return it == kSixParts.end() ? -1 : it->second;
}

bool has_person(const PartsAnnotation& anno) {
  for (const auto& o : anno.objects)
    if (o.class_ind == kPersonClass && std::any_of(o.mask.begin(), o.mask.end(), [](uint8_t v) { return v != 0; }))
      return true;
  return false;
}

ImageF human_parts_map(const PartsAnnotation& anno, int h, int w, const std::string& path) {
  if (!has_person(anno)) return ImageF(1, h, w, 0.f);
  ImageF target;
  for (size_t i = 0; i < anno.objects.size(); ++i) {
    const ObjectAnnotation& o = anno.objects[i];
    if (o.class_ind != kPersonClass || o.parts.empty()) continue;
    if (target.empty()) target = ImageF(1, o.h, o.w, 0.f);  // the first person's mask size, as the authors
    for (const PartMask& p : o.parts) {
      const int id = human_part_id(p.part_name);
      if (id < 0)
        throw FormatError(path + ": object " + std::to_string(i + 1) + " has unknown person part '" + p.part_name + "'");
      if (p.h != target.h || p.w != target.w)
        throw FormatError(path + ": part '" + p.part_name + "' mask is " + std::to_string(p.h) + "x" +
                          std::to_string(p.w) + ", the person mask " + std::to_string(target.h) + "x" +
                          std::to_string(target.w));
      for (size_t k = 0; k < p.mask.size(); ++k)
        if (p.mask[k]) target.data[k] = static_cast<float>(id);
    }
  }
  if (target.empty()) return ImageF(1, h, w, 0.f);  // persons without part annotations
  fit_to_image(target, h, w, Interp::nearest);
  return target;
}

ImageF edge_from_labelmap(const MatMatrix& lm) {
  ImageF e(1, lm.h, lm.w);
  e.data = label_boundaries(lm.v, lm.h, lm.w);
  return e;
}

std::vector<int> read_class_list(const std::string& path) {
  if (!file_exists(path)) throw IoError("class list " + path + ": no such file");
  std::ifstream in(path);
  std::vector<int> ids;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ss(line);
    std::string tok;
    while (ss >> tok) {
      try {
        size_t used = 0;
        const int v = std::stoi(tok, &used);
        if (used != tok.size()) throw std::invalid_argument(tok);
        ids.push_back(v);
      } catch (const std::exception&) {
        throw FormatError("class list " + path + ":" + std::to_string(lineno) + ": '" + tok + "' is not an integer");
      }
    }
  }
  if (ids.empty()) throw FormatError("class list " + path + ": no class ids");
  return ids;
}

std::vector<int> derive_normals_valid_classes(const std::string& nyu_json, const std::string& context_json) {
  auto load = [](const std::string& p) {
    try {
      return nlohmann::json::parse(read_file(p));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError("class file " + p + ": " + e.what());
    }
  };
  const nlohmann::json nyu = load(nyu_json), ctx = load(context_json);
  if (!nyu.is_object() || !ctx.is_object())
    throw FormatError("class files " + nyu_json + " / " + context_json + " must map class names to ids");
  std::vector<int> ids;
  for (auto it = nyu.begin(); it != nyu.end(); ++it)
    if (it.key() != "unknown" && ctx.contains(it.key())) ids.push_back(ctx.at(it.key()).get<int>());
  if (!ctx.contains("tvmonitor")) throw FormatError("class file " + context_json + " has no 'tvmonitor'");
  ids.push_back(ctx.at("tvmonitor").get<int>());  // the authors' "custom addition" (:135-136)
  return ids;
}

PascalContextDataset::PascalContextDataset(PascalOptions opts) : opts_(std::move(opts)) {
  if (opts_.root.empty()) throw ConfigError("PASCAL-Context: no data root given");
  tasks_ = select_tasks(opts_.tasks, kPascalTasks, "PASCAL-Context");
  const auto all_ids = read_split_file(opts_.root + "/ImageSets/Context/" + opts_.split + ".txt");

  if (std::find(tasks_.begin(), tasks_.end(), "normals") != tasks_.end()) {
    const std::string own = opts_.root + "/normals_valid_classes.txt";
    const std::string nyu = opts_.root + "/db_info/nyu_classes.json", ctx = opts_.root + "/db_info/context_classes.json";
    if (!opts_.normals_classes.empty())
      normals_valid_ = read_class_list(opts_.normals_classes);
    else if (file_exists(own))
      normals_valid_ = read_class_list(own);
    else if (file_exists(nyu) && file_exists(ctx))
      normals_valid_ = derive_normals_valid_classes(nyu, ctx);
    else
      throw IoError("PASCAL-Context normals need the valid-class list: give a file of class ids, or put " + own +
                    ", or the authors' " + nyu + " and " + ctx + " in place (see docs/DATA.md)");
    std::sort(normals_valid_.begin(), normals_valid_.end());
  }

  std::vector<std::string> ids = all_ids;
  // Human parts alone: keep only images with a person (authors :208-216), from their cached
  // ImageSets/Parts/<split>.txt when it covers exactly this split, otherwise by reading the .mat files.
  if (tasks_.size() == 1 && tasks_[0] == "human_parts") {
    std::set<std::string> with_person;
    bool cached = false;
    const std::string cache = opts_.root + "/ImageSets/Parts/" + opts_.split + ".txt";
    if (file_exists(cache)) {
      try {
        const auto j = nlohmann::json::parse(read_file(cache));
        std::set<std::string> keys;
        for (auto it = j.begin(); it != j.end(); ++it) {
          keys.insert(it.key());
          for (const auto& c : it.value())
            if (c.get<int>() == kPersonClass) with_person.insert(it.key());
        }
        cached = keys == std::set<std::string>(ids.begin(), ids.end());
        if (!cached) with_person.clear();
      } catch (const nlohmann::json::exception&) {
        with_person.clear();  // not the authors' cache format: fall back to reading the annotations
      }
    }
    if (!cached) {
      ProgressBar bar("scan parts", static_cast<int64_t>(ids.size()), "img");
      std::vector<std::string> bad;
      for (size_t i = 0; i < ids.size(); ++i) {
        const std::string p = path_of("human_parts", ids[i], ".mat");
        try {
          if (has_person(read_parts_annotation(p))) with_person.insert(ids[i]);
        } catch (const Error& e) {
          if (!opts_.skip_bad) throw;
          with_person.insert(ids[i]);  // kept here so that the check below reports it
        }
        if (ids.size() >= 200) bar.update(static_cast<int64_t>(i + 1));
      }
      if (ids.size() >= 200) bar.finish();
    }
    ids.erase(std::remove_if(ids.begin(), ids.end(), [&](const std::string& id) { return !with_person.count(id); }),
              ids.end());
    if (ids.empty()) throw FormatError("PASCAL-Context " + opts_.split + ": no image with human parts");
  }

  if (!opts_.skip_bad) {
    for (const auto& id : ids)  // the authors assert every file exists up front (:151-185)
      for (const auto& f : required_files(id))
        if (!file_exists(f)) throw IoError("PASCAL-Context sample " + id + ": missing file " + f);
    ids_ = ids;
  } else {
    const auto keep = check_samples(ids, "PASCAL-Context " + opts_.split, [&](size_t i) { (void)load(ids[i]); },
                                    true, skipped_);
    for (size_t i : keep) ids_.push_back(ids[i]);
  }
}

std::string PascalContextDataset::path_of(const std::string& dir, const std::string& id, const std::string& ext) const {
  return opts_.root + "/" + dir + "/" + id + ext;
}

std::string PascalContextDataset::semseg_path(const std::string& id) const {
  const std::string voc = path_of("semseg/VOC12", id, ".png");
  return file_exists(voc) ? voc : path_of("semseg/pascal-context", id, ".png");
}

std::vector<std::string> PascalContextDataset::required_files(const std::string& id) const {
  std::vector<std::string> f = {path_of("JPEGImages", id, ".jpg")};
  for (const auto& t : tasks_) {
    if (t == "semseg") f.push_back(semseg_path(id));
    if (t == "human_parts") f.push_back(path_of("human_parts", id, ".mat"));
    if (t == "sal") f.push_back(path_of("sal_distill", id, ".png"));
    if (t == "normals") f.push_back(path_of("normals_distill", id, ".png"));
    if (t == "normals" || t == "edge") f.push_back(path_of("pascal-context/trainval", id, ".mat"));
  }
  return f;
}

std::string PascalContextDataset::sample_id(size_t i) const {
  if (i >= ids_.size()) throw ConfigError("PASCAL-Context index " + std::to_string(i) + " out of range");
  return ids_[i];
}

Sample PascalContextDataset::get(size_t i) const { return load(sample_id(i)); }

Sample PascalContextDataset::load(const std::string& id) const {
  Sample s;
  s.id = id;
  s.image = load_rgb(path_of("JPEGImages", id, ".jpg"));
  const int H = s.image.h, W = s.image.w;
  s.orig_h = H;
  s.orig_w = W;
  MatMatrix labelmap;
  auto get_labelmap = [&]() -> const MatMatrix& {
    if (labelmap.v.empty()) labelmap = read_mat_matrix(path_of("pascal-context/trainval", id, ".mat"), "LabelMap");
    return labelmap;
  };
  for (const auto& t : tasks_) {
    if (t == "edge") {
      ImageF e = edge_from_labelmap(get_labelmap());
      fit_to_image(e, H, W, Interp::nearest);
      s.labels[t] = std::move(e);
    } else if (t == "human_parts") {
      const std::string p = path_of("human_parts", id, ".mat");
      s.labels[t] = human_parts_map(read_parts_annotation(p), H, W, p);
    } else if (t == "semseg") {
      ImageF m = read_label_png(semseg_path(id));
      fit_to_image(m, H, W, Interp::nearest);
      s.labels[t] = std::move(m);
    } else if (t == "normals") {
      const std::string p = path_of("normals_distill", id, ".png");
      const ImageF rgb = load_rgb(p);
      const MatMatrix& lm = get_labelmap();
      if (lm.h != rgb.h || lm.w != rgb.w)
        throw FormatError(p + ": normals are " + std::to_string(rgb.h) + "x" + std::to_string(rgb.w) +
                          " but the LabelMap is " + std::to_string(lm.h) + "x" + std::to_string(lm.w));
      ImageF n(3, rgb.h, rgb.w, 0.f);
      const size_t np = n.plane_size();
      for (size_t k = 0; k < np; ++k) {
        const int cls = static_cast<int>(lm.v[k]);
        if (static_cast<double>(cls) != lm.v[k] ||
            !std::binary_search(normals_valid_.begin(), normals_valid_.end(), cls))
          continue;  // not a class with trustworthy distilled normals: left at 0 = invalid
        for (int c = 0; c < 3; ++c) n.data[c * np + k] = 2.f * rgb.data[c * np + k] / 255.f - 1.f;
      }
      fit_to_image(n, H, W, Interp::cubic);
      s.labels[t] = std::move(n);
    } else if (t == "sal") {
      ImageF m = read_label_png(path_of("sal_distill", id, ".png"));
      for (float& v : m.data) v = (v / 255.f > 0.5f) ? 1.f : 0.f;
      fit_to_image(m, H, W, Interp::nearest);
      s.labels[t] = std::move(m);
    }
  }
  return s;
}

}  // namespace m3vit
