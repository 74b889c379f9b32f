// `m3vit infer`: single-task inference with the libtorch model (paper §3.2, docs/CLI.md): one backbone
// pass with the task's routers, then that task's head only.
//
//   m3vit infer --config C [--weights W] --task T (--image in.png | --input-npy x.npy)
//               [--resize] [--save-logits out.npy] [--out pred.png] [--seed S] [--threads N] [--device cpu|cuda]
//
// Input: a JPEG/PNG (gray and RGBA are converted to RGB) of exactly the model's size, or --resize to
// scale it bilinearly; ImageNet normalisation as the authors' transforms (common_config.py:407-456). Or a .npy
// holding the already-normalised network input [3, H, W] or [1, 3, H, W] (float32/float64).
// Without --weights the model gets seeded random weights (the authors' initialisation).
// Every bad input is one error line and exit code 2 (cli/main.cpp), checked before any output is
// written; outputs are written atomically, the picture only after the logits proved finite.
#include "common/pch/torch_pch.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/config_options.h"
#include "cli/model_weights.h"
#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"
#include "common/platform.h"
#include "common/imagenet.h"
#include "common/visualize.h"
#include "io/npy.h"
#include "model/multitask_model.h"
#include "model/tensor_io.h"

namespace m3vit::cli {

namespace {

struct InferArgs {
  ConfigArgs config;
  std::string weights, task, image, input_npy, save_logits, out, device = "cpu";
  bool resize = false;
  uint64_t seed = 0;
  int threads = 0;
};

// [1, 3, H, W] float32, normalised.
torch::Tensor load_image_input(const std::string& path, const ModelConfig& cfg, bool resize) {
  if (cfg.in_chans != 3) throw ConfigError("--image needs a 3-channel model; this one takes " + std::to_string(cfg.in_chans));
  const Image8 img = read_image(path, 3);  // IoError when missing or not decodable
  torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8)
                        .permute({2, 0, 1})
                        .to(torch::kFloat32)
                        .div(255.0)
                        .unsqueeze(0);  // [1, 3, h, w] in [0, 1]
  if (img.height != cfg.img_h || img.width != cfg.img_w) {
    if (!resize)
      throw ShapeError("image " + path + " is " + size_str(img.height, img.width) + " but model " + cfg.name +
                       " takes " + size_str(cfg.img_h, cfg.img_w) + " (pass --resize to scale it)");
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{cfg.img_h, cfg.img_w})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  const auto mean = torch::tensor({kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]}).view({1, 3, 1, 1});
  const auto std = torch::tensor({kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]}).view({1, 3, 1, 1});
  return ((x - mean) / std).contiguous();
}

// [1, C, H, W] float32 from a .npy that already holds the normalised input.
torch::Tensor load_npy_input(const std::string& path, const ModelConfig& cfg) {
  const OwnedTensor t = read_npy(path);  // IoError / FormatError
  std::vector<int64_t> shape = t.shape;
  if (shape.size() == 4 && shape[0] == 1) shape.erase(shape.begin());
  if (shape.size() != 3)
    throw ShapeError("input " + path + " has shape " + shape_str(t.shape) + "; expected [" + std::to_string(cfg.in_chans) +
                     ", H, W] or [1, " + std::to_string(cfg.in_chans) + ", H, W]");
  if (shape[0] != cfg.in_chans)
    throw ShapeError("input " + path + " has " + std::to_string(shape[0]) + " channels; model " + cfg.name + " takes " +
                     std::to_string(cfg.in_chans));
  if (shape[1] != cfg.img_h || shape[2] != cfg.img_w)
    throw ShapeError("input " + path + " is " + size_str(shape[1], shape[2]) + " but model " + cfg.name + " takes " +
                     size_str(cfg.img_h, cfg.img_w));
  if (t.dtype != DType::F32 && t.dtype != DType::F64)
    throw FormatError("input " + path + " has dtype " + dtype_name(t.dtype) + "; expected float32 or float64");
  const torch::Tensor x = tensor_from_bytes(t.dtype, shape, t.bytes.data(), t.bytes.size(), path).to(torch::kFloat32);
  if (!torch::isfinite(x).all().item<bool>()) throw NumericError("input " + path + " contains NaN or Inf");
  return x.unsqueeze(0);
}

void run_infer(const InferArgs& a) {
  const TrainConfig f = load_config_args(a.config);
  const ModelConfig& cfg = f.model;
  const int task = cfg.task_index(a.task);  // ConfigError naming the task and the known ones
  if (a.image.empty() == a.input_npy.empty()) throw ConfigError("give exactly one of --image and --input-npy");
  check_output_dir(a.out, "--out");
  check_output_dir(a.save_logits, "--save-logits");
  if (!a.weights.empty() && !file_exists(a.weights)) throw IoError("weights " + a.weights + ": no such file");
  torch::Device device(torch::kCPU);
  if (a.device == "cuda") {
    if (!torch::cuda::is_available())
      throw ConfigError("--device cuda: no CUDA device or this libtorch was built without CUDA");
    device = torch::Device(torch::kCUDA);
  }
  at::set_num_threads(a.threads > 0 ? a.threads : default_threads());

  const torch::Tensor x = a.image.empty() ? load_npy_input(a.input_npy, cfg) : load_image_input(a.image, cfg, a.resize);

  torch::manual_seed(a.seed);  // random weights are a function of the seed
  MultiTaskModel model(cfg);
  std::string source = "random (seed " + std::to_string(a.seed) + ")";
  if (!a.weights.empty()) source = load_model_weights(*model, a.weights);  // FormatError / ShapeError naming tensors
  model->eval();
  model->to(device);

  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  const torch::Tensor y = model->forward_task(x.to(device), task).to(torch::kCPU).contiguous();  // [1, C, H, W]
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!torch::isfinite(y).all().item<bool>())
    throw NumericError("task " + a.task + ": the logits contain NaN or Inf (weights " + source + ")");

  // Everything is computed before the first file is written, so an error leaves no output behind.
  Image8 picture;
  if (!a.out.empty())
    picture = visualize_task(a.task, y.data_ptr<float>(), static_cast<int>(y.size(1)), static_cast<int>(y.size(2)),
                             static_cast<int>(y.size(3)));
  std::printf("model    %s, task %s (%d of %d), %d threads, %s\n", cfg.name.c_str(), a.task.c_str(), task,
              cfg.num_tasks(), at::get_num_threads(), device.str().c_str());
  std::printf("input    %s\n", (a.image.empty() ? a.input_npy : a.image).c_str());
  std::printf("weights  %s\n", source.c_str());
  std::printf("logits   %s  hash %s  (%.3f s)\n", shape_str(std::vector<int64_t>(y.sizes().begin(), y.sizes().end())).c_str(),
              logits_hash(y.data_ptr<float>(), y.numel()).c_str(), secs);
  if (!a.save_logits.empty()) {
    write_npy(a.save_logits, DType::F32, std::vector<int64_t>(y.sizes().begin(), y.sizes().end()), y.data_ptr<float>());
    std::printf("wrote    %s\n", a.save_logits.c_str());
  }
  if (!a.out.empty()) {
    write_png(a.out, picture);
    std::printf("wrote    %s\n", a.out.c_str());
  }
}

}  // namespace

void register_infer(CLI::App& app) {
  auto* sub = app.add_subcommand("infer", "single-task inference with the libtorch model");
  auto a = std::make_shared<InferArgs>();
  add_config_options(sub, a->config);
  sub->add_option("--weights,-w", a->weights, "checkpoint (.pth, our .pt) or exported .safetensors; default: random");
  sub->add_option("--task,-t", a->task, "task to run: semseg, human_parts, sal, normals, edge, depth")->required();
  auto* img = sub->add_option("--image,-i", a->image, "input image (JPEG/PNG), exactly the model's size");
  auto* npy = sub->add_option("--input-npy", a->input_npy, "input .npy: normalised [3,H,W] or [1,3,H,W] float");
  img->excludes(npy);
  sub->add_flag("--resize", a->resize, "scale an image of another size to the model's size (bilinear)");
  sub->add_option("--save-logits", a->save_logits, "write the raw output [1,C,H,W] float32 as .npy");
  sub->add_option("--out,-o", a->out, "write the task picture as PNG");
  sub->add_option("--seed", a->seed, "seed of the random weights when no --weights is given");
  sub->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  sub->add_option("--device", a->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->callback([a] { run_infer(*a); });
}

}  // namespace m3vit::cli
