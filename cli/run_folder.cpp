#include "cli/run_folder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/errors.h"
#include "common/image_io.h"
#include "common/progress.h"
#include "common/visualize.h"
#include "io/npy.h"
#include "runtime/engine.h"
#include "runtime/image_input.h"

namespace m3vit::cli {

namespace fs = std::filesystem;

namespace {

// "all", or names separated by commas, each a task of the model, none twice.
std::vector<int> parse_tasks(const std::string& spec, const rt::Engine& eng) {
  std::vector<int> tasks;
  if (spec == "all") {
    for (int t = 0; t < eng.config().num_tasks(); ++t) tasks.push_back(t);
    return tasks;
  }
  std::stringstream ss(spec);
  std::string name;
  while (std::getline(ss, name, ',')) {
    const int t = eng.task_index(name);  // ConfigError naming the known tasks
    if (std::find(tasks.begin(), tasks.end(), t) != tasks.end()) throw ConfigError("--task names '" + name + "' twice");
    tasks.push_back(t);
  }
  if (tasks.empty()) throw ConfigError("--task is empty: give task names separated by commas, or 'all'");
  return tasks;
}

bool is_picture(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// The images to run, in order: a folder's pictures sorted by name, a list file's lines, or one image.
std::vector<std::string> collect_inputs(const RunFolderArgs& a) {
  const int given = !a.images_dir.empty() + !a.list_file.empty() + !a.image.empty();
  if (given != 1) throw ConfigError("give exactly one of --images, --list and --image");
  std::vector<std::string> paths;
  if (!a.image.empty()) {
    paths.push_back(a.image);
  } else if (!a.images_dir.empty()) {
    if (!fs::is_directory(a.images_dir)) throw IoError("--images " + a.images_dir + ": not a folder");
    for (const auto& e : fs::directory_iterator(a.images_dir))
      if (e.is_regular_file() && is_picture(e.path())) paths.push_back(e.path().string());
    std::sort(paths.begin(), paths.end());
    if (paths.empty()) throw IoError("--images " + a.images_dir + ": no .png, .jpg or .jpeg file in it");
  } else {
    std::ifstream in(a.list_file);
    if (!in) throw IoError("--list " + a.list_file + ": cannot read it");
    const fs::path base = fs::path(a.list_file).parent_path();
    std::string line;
    while (std::getline(in, line)) {
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (line.empty() || line[0] == '#') continue;
      const fs::path p(line);
      paths.push_back((p.is_absolute() ? p : base / p).string());
    }
    if (paths.empty()) throw IoError("--list " + a.list_file + ": no image in it");
  }
  return paths;
}

}  // namespace

int run_folder(const RunFolderArgs& a) {
  const std::vector<std::string> inputs = collect_inputs(a);
  if (a.out_dir.empty()) throw ConfigError("--out-dir is needed with --images, --list or several tasks");
  std::error_code ec;
  fs::create_directories(a.out_dir, ec);
  if (!fs::is_directory(a.out_dir)) throw IoError("--out-dir " + a.out_dir + ": cannot create the folder");

  rt::Engine eng(a.model, a.engine);  // every check of the file and the options happens here
  const ModelConfig& cfg = eng.config();
  const std::vector<int> tasks = parse_tasks(a.tasks, eng);
  const int64_t plane = static_cast<int64_t>(cfg.img_h) * cfg.img_w;
  std::vector<std::vector<float>> logits(tasks.size());
  std::vector<float*> outs;
  for (size_t i = 0; i < tasks.size(); ++i) {
    logits[i].resize(static_cast<size_t>(eng.out_channels(tasks[i])) * plane);
    outs.push_back(logits[i].data());
  }

  std::vector<std::string> failed;
  std::map<std::string, std::string> stems;  // output stem -> the input that took it
  double run_ms = 0;
  ProgressBar bar("run", static_cast<int64_t>(inputs.size()), "img");
  for (size_t n = 0; n < inputs.size(); ++n) {
    const std::string& path = inputs[n];
    const std::string stem = fs::path(path).stem().string();
    std::vector<Image8> pictures;
    try {  // what concerns this image only: reported, and the run goes on
      const auto [it, fresh] = stems.emplace(stem, path);
      if (!fresh) throw ConfigError("its outputs would have the names of " + it->second + "'s (" + stem + "_*)");
      const std::vector<float> x = rt::read_image_input(path, cfg, a.resize);  // IoError / ShapeError
      eng.run_tasks(tasks, x.data(), outs);
      run_ms += eng.last_times().total;
      // Everything is computed before the image's first file is written.
      for (size_t i = 0; i < tasks.size(); ++i)
        pictures.push_back(visualize_task(cfg.tasks[tasks[i]].name, logits[i].data(), eng.out_channels(tasks[i]),
                                          cfg.img_h, cfg.img_w));  // NumericError on NaN/Inf
    } catch (const Error& e) {
      failed.push_back(path);
      std::fprintf(stderr, "\nm3vit: skipped %s: %s\n", path.c_str(), e.what());
      bar.update(static_cast<int64_t>(n + 1), std::to_string(failed.size()) + " failed");
      continue;
    }
    // An output that cannot be written concerns every image: that error ends the run.
    for (size_t i = 0; i < tasks.size(); ++i) {
      const std::string out = (fs::path(a.out_dir) / (stem + "_" + cfg.tasks[tasks[i]].name)).string();
      write_png(out + ".png", pictures[i]);
      if (a.save_logits)
        write_npy(out + ".npy", DType::F32, {1, eng.out_channels(tasks[i]), cfg.img_h, cfg.img_w}, logits[i].data());
    }
    bar.update(static_cast<int64_t>(n + 1), std::to_string(failed.size()) + " failed");
  }
  bar.finish(std::to_string(failed.size()) + " failed");

  const size_t done = inputs.size() - failed.size();
  std::string names;
  for (int t : tasks) names += (names.empty() ? "" : ",") + cfg.tasks[t].name;
  std::printf("images   %zu of %zu written to %s (tasks %s%s)\n", done, inputs.size(), a.out_dir.c_str(), names.c_str(),
              a.save_logits ? ", with logits" : "");
  if (done > 0)
    std::printf("time     %.1f ms per image for %zu task%s (one model load, shared work done once)\n", run_ms / done,
                tasks.size(), tasks.size() > 1 ? "s" : "");
  if (!failed.empty()) {
    std::printf("failed   %zu:", failed.size());
    for (const auto& f : failed) std::printf(" %s", f.c_str());
    std::printf("\n");
  }
  return static_cast<int>(failed.size());
}

}  // namespace m3vit::cli
