// Task names and sample accessors (data/sample.h).
#include "data/sample.h"

#include <algorithm>

#include "common/errors.h"

namespace m3vit {

std::string shape_of(const ImageF& im) {
  return "[" + std::to_string(im.c) + ", " + std::to_string(im.h) + ", " + std::to_string(im.w) + "]";
}

void check_task_name(const std::string& task) {
  if (!is_task_name(task))
    throw ConfigError("unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
}

int label_channels(const std::string& task) {
  check_task_name(task);
  return task == "normals" ? 3 : 1;
}

const ImageF& Sample::label(const std::string& task) const {
  auto it = labels.find(task);
  if (it == labels.end()) throw ConfigError("sample '" + id + "' has no '" + task + "' label");
  return it->second;
}

ImageF& Sample::label(const std::string& task) {
  auto it = labels.find(task);
  if (it == labels.end()) throw ConfigError("sample '" + id + "' has no '" + task + "' label");
  return it->second;
}

}  // namespace m3vit
