// `m3vit calibrate`: the calibration pass of `--precision int8` (docs/RUNTIME.md, "int8").
//
//   m3vit calibrate --model M.safetensors (--synthetic N | --images DIR [--resize]) --out M_int8.safetensors
//                   [--max-images N] [--threads N]
//
// Runs the fp32 runtime (resident weights) over the images, every task on each (the routers differ
// per task, and so do the experts' inputs), and records the largest |input| of every layer that int8
// mode quantises; then writes the int8 file (runtime/int8_format.h): the export's tensors with those
// layers' weights as per-output-channel s8, their scales and the input steps. --synthetic renders N
// scenes of the built-in synthetic set (data/synthetic.h, train split) at the model's size; --images
// takes a folder's PNG/JPEG files sorted by name, as `m3vit run --images` does. Lives in the libtorch
// companion only because the synthetic scenes do (m3vit_data); it uses no libtorch itself.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/errors.h"
#include "core/export.h"
#include "data/synthetic.h"
#include "runtime/image_input.h"
#include "runtime/int8_format.h"

namespace m3vit::cli {

namespace {

struct CalibrateArgs {
  std::string model, images_dir, out;
  int synthetic = 0, max_images = 0, threads = 0;
  bool resize = false;
};

// A rendered scene (RGB 0..255 floats) as 8-bit pixels, the same path a saved picture takes.
Image8 to_image8(const ImageF& im) {
  Image8 out;
  out.width = im.w;
  out.height = im.h;
  out.channels = 3;
  out.pixels.resize(static_cast<size_t>(im.w) * im.h * 3);
  for (int ch = 0; ch < 3; ++ch)
    for (size_t p = 0; p < im.plane_size(); ++p)
      out.pixels[p * 3 + ch] =
          static_cast<uint8_t>(std::clamp(std::lround(im.data[ch * im.plane_size() + p]), 0L, 255L));
  return out;
}

void run_calibrate(const CalibrateArgs& a) {
  namespace fs = std::filesystem;
  if ((a.synthetic > 0) == !a.images_dir.empty())
    throw ConfigError("give exactly one of --synthetic N (N >= 1) and --images DIR");
  if (a.out.empty()) throw ConfigError("--out is required");
  const ModelConfig cfg = read_export_config(a.model);
  std::vector<std::string> paths;
  std::string source;
  int n = a.synthetic;
  if (!a.images_dir.empty()) {
    if (!fs::is_directory(a.images_dir)) throw IoError("--images " + a.images_dir + ": not a folder");
    for (const auto& e : fs::directory_iterator(a.images_dir)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) paths.push_back(e.path().string());
    }
    std::sort(paths.begin(), paths.end());
    if (paths.empty()) throw IoError("--images " + a.images_dir + ": no .png, .jpg or .jpeg file in it");
    if (a.max_images > 0 && static_cast<int>(paths.size()) > a.max_images) paths.resize(a.max_images);
    n = static_cast<int>(paths.size());
    source = std::to_string(n) + " images of " + a.images_dir;
  } else {
    source = std::to_string(n) + " synthetic scenes (train split, seed 0)";
  }
  SyntheticOptions so;
  so.split = "train";
  so.size = std::max(1, a.synthetic);
  so.height = cfg.img_h;
  so.width = cfg.img_w;
  const SyntheticDataset scenes(so);
  std::fprintf(stderr, "calibrating %s (%d tasks) on %s\n", a.model.c_str(), cfg.num_tasks(), source.c_str());
  const rt::Calibration cal = rt::calibrate_model(
      a.model, n,
      [&](int i, std::vector<float>& x) {
        if (!paths.empty()) {
          x = rt::read_image_input(paths[i], cfg, a.resize);
        } else {
          x = rt::image_to_input(to_image8(scenes.get(i).image), cfg, false, "synthetic scene " + std::to_string(i));
        }
        std::fprintf(stderr, "\r  image %d/%d", i + 1, n);
      },
      a.threads);
  std::fprintf(stderr, "\n");
  rt::write_int8_export(a.model, cal, a.out, {"absmax of each quantised layer's input over " + source + ", every task"});
  std::printf("wrote %s (int8: s8 weights per output channel, %zu calibrated layers)\n", a.out.c_str(),
              cal.absmax.size());
}

}  // namespace

void register_calibrate(CLI::App& app) {
  auto* sub = app.add_subcommand("calibrate", "measure activation ranges and write the int8 model for --precision int8");
  auto a = std::make_shared<CalibrateArgs>();
  sub->add_option("--model,-m", a->model, "fp32 model export (.safetensors from `m3vit export`)")->required();
  sub->add_option("--synthetic", a->synthetic, "calibrate on N rendered synthetic scenes (train split)");
  sub->add_option("--images", a->images_dir, "calibrate on the PNG/JPEG files of this folder (sorted by name)");
  sub->add_option("--max-images", a->max_images, "with --images: at most this many (the first by name)");
  sub->add_flag("--resize", a->resize, "with --images: scale pictures of another size to the model's (bilinear)");
  sub->add_option("--out,-o", a->out, "the int8 model file to write (safetensors)")->required();
  sub->add_option("--threads", a->threads, "OpenMP threads (default: all cores)");
  sub->callback([a] { run_calibrate(*a); });
}

}  // namespace m3vit::cli
