// Shared pieces of the data sets (data/dataset.h): split files, task selection, RGB loading and the
// skip-bad policy.
#include "data/dataset.h"

#include <algorithm>
#include <fstream>
#include <iostream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"
#include "common/progress.h"

namespace m3vit {

std::vector<std::string> read_split_file(const std::string& path) {
  if (!file_exists(path)) throw IoError("split file " + path + ": no such file");
  std::ifstream in(path);
  if (!in) throw IoError("split file " + path + ": cannot open");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) continue;
    const auto e = line.find_last_not_of(" \t\r\n");
    ids.push_back(line.substr(b, e - b + 1));
  }
  if (ids.empty()) throw FormatError("split file " + path + ": lists no sample ids");
  return ids;
}

std::vector<std::string> select_tasks(const std::vector<std::string>& requested,
                                      const std::vector<std::string>& supported, const std::string& dataset) {
  if (requested.empty()) return supported;
  std::string known;
  for (const auto& t : supported) known += (known.empty() ? "" : ", ") + t;
  for (const auto& t : requested) {
    check_task_name(t);
    if (std::find(supported.begin(), supported.end(), t) == supported.end())
      throw ConfigError("task '" + t + "' is not available on " + dataset + " (it has: " + known + ")");
  }
  std::vector<std::string> out;  // the data set's canonical order, duplicates dropped
  for (const auto& t : supported)
    if (std::find(requested.begin(), requested.end(), t) != requested.end()) out.push_back(t);
  return out;
}

ImageF load_rgb(const std::string& path) {
  const Image8 img = read_image(path, 3);
  ImageF out(3, img.height, img.width);
  const size_t n = out.plane_size();
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) out.data[c * n + i] = img.pixels[i * 3 + c];
  return out;
}

std::vector<size_t> check_samples(const std::vector<std::string>& ids, const std::string& what,
                                  const std::function<void(size_t)>& load, bool skip_bad,
                                  std::vector<SkippedSample>& skipped) {
  std::vector<size_t> keep;
  keep.reserve(ids.size());
  if (!skip_bad) {
    for (size_t i = 0; i < ids.size(); ++i) keep.push_back(i);
    return keep;
  }
  const bool show = ids.size() >= 200;
  ProgressBar bar("check " + what, static_cast<int64_t>(ids.size()), "img");
  for (size_t i = 0; i < ids.size(); ++i) {
    try {
      load(i);
      keep.push_back(i);
    } catch (const Error& e) {
      skipped.push_back({ids[i], e.what()});
      std::cerr << "skipping " << what << " sample " << ids[i] << ": " << e.what() << "\n";
    }
    if (show) bar.update(static_cast<int64_t>(i + 1));
  }
  if (show) bar.finish();
  if (!skipped.empty())
    std::cerr << what << ": skipped " << skipped.size() << " of " << ids.size() << " samples (--skip-bad)\n";
  if (keep.empty()) throw FormatError(what + ": every sample is bad (" + std::to_string(ids.size()) + " checked)");
  return keep;
}

}  // namespace m3vit
