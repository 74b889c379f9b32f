// `m3vit run`: single-task inference with the libtorch-free runtime (runtime/engine.h): one backbone
// pass with the task's routers, then that task's head only, on oneDNN.
//
//   m3vit run --model M.safetensors --task T (--image in.png | --input-npy x.npy) [--resize]
//             [--out pred.png] [--save-logits out.npy] [--experts resident|stream] [--memory-budget B]
//             [--precision fp32|bf16|int8] [--conv winograd|winograd-f2|direct] [--threads N] [--repeat N [--json]]
//   m3vit run --model M --task T[,T2,...|all] (--images DIR | --list FILE | --image X) --out-dir OUT
//             [--save-logits] [...]          many images and tasks: cli/run_folder.cpp
//
// M is an export written by `m3vit export` (docs/ARCHITECTURE.md, "Model export"). Inputs and outputs
// are those of `m3vit infer`, so the two can be compared file for file: the same ImageNet
// normalisation, logits saved as [1, C, H, W] float32 .npy, the same task pictures and logits hash.
// --json prints one JSON object on stdout (times, peak memory) and everything else on stderr, so a
// script reads stdout whole: json_report below.
// This file uses no torch: everything it calls is in m3vit_runtime, m3vit_io, m3vit_common and
// cli/cli_util.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/run_folder.h"
#include "common/errors.h"
#include "common/image_io.h"
#include "common/platform.h"
#include "common/visualize.h"
#include "io/npy.h"
#include "runtime/engine.h"
#include "runtime/image_input.h"

namespace m3vit::cli {

namespace {

struct RunArgs {
  std::string model, task, image, input_npy, save_logits, out;
  std::string images_dir, list_file, out_dir;
  bool save_logits_given = false;  // --save-logits with or without a file name
  std::string experts = "resident", layers = "resident", memory_budget, precision = "fp32", conv = "winograd";
  bool resize = false, json = false;
  int threads = 0, repeat = 1;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The peak resident set of this process (VmHWM of /proc/self/status, kB; -1 where there is none):
// what the run cost in memory, code and libraries included.
long vmhwm_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// --json: one object, keys in the documented order (ordered_json), the times in ms to the µs (each
// stage the median over the repeats, so that a slow first run or a noisy neighbour does not skew it;
// ms_best the fastest whole run).
nlohmann::ordered_json json_report(const RunArgs& a, const rt::Engine& eng, const std::vector<rt::RunTimes>& runs) {
  std::vector<double> total, embed, attention, mlp, moe, head;
  for (const rt::RunTimes& t : runs) {
    total.push_back(t.total);
    embed.push_back(t.embed);
    attention.push_back(t.attention);
    mlp.push_back(t.mlp);
    moe.push_back(t.moe);
    head.push_back(t.head);
  }
  const long hwm = vmhwm_kb();
  auto ms = [](double v) { return std::round(v * 1000) / 1000; };
  nlohmann::ordered_json j;
  j["task"] = a.task;
  j["precision"] = rt::to_string(eng.options().precision);
  j["experts"] = rt::to_string(eng.options().experts);
  j["layers"] = rt::to_string(eng.options().layers);
  j["threads"] = eng.options().threads > 0 ? eng.options().threads : default_threads();
  j["ms_median"] = ms(median(total));
  j["ms_best"] = ms(*std::min_element(total.begin(), total.end()));
  nlohmann::ordered_json stages;
  stages["embed"] = ms(median(embed));
  stages["attention"] = ms(median(attention));
  stages["mlp"] = ms(median(mlp));
  stages["moe"] = ms(median(moe));
  stages["head"] = ms(median(head));
  j["stages_ms"] = stages;
  if (hwm < 0) j["vmhwm_mb"] = nullptr;
  else j["vmhwm_mb"] = std::round(hwm / 1024.0 * 10) / 10;
  return j;
}

rt::EngineOptions engine_options(const RunArgs& a) {
  rt::EngineOptions opt;
  opt.experts = rt::residency_from_string(a.experts);
  opt.layers = rt::residency_from_string(a.layers);
  opt.precision = rt::precision_from_string(a.precision);
  opt.threads = a.threads;
  opt.winograd = a.conv != "direct";
  opt.winograd_tile = a.conv == "winograd-f2" ? 2 : 4;
  if (!a.memory_budget.empty()) opt.memory_budget = rt::parse_bytes(a.memory_budget);
  return opt;
}

// Many images or several tasks: an output folder instead of output files.
bool folder_mode(const RunArgs& a) {
  return !a.images_dir.empty() || !a.list_file.empty() || !a.out_dir.empty() || a.task == "all" ||
         a.task.find(',') != std::string::npos;
}

void run_many(const RunArgs& a) {
  if (!a.input_npy.empty()) throw ConfigError("--input-npy takes one normalised input: use it without --out-dir");
  if (!a.out.empty()) throw ConfigError("--out names one picture: with --images, --list or --out-dir the pictures go to --out-dir");
  if (!a.save_logits.empty())
    throw ConfigError("with --out-dir, --save-logits takes no file name (the logits go beside the pictures)");
  if (a.repeat != 1) throw ConfigError("--repeat times one image: use it without --out-dir");
  if (a.json) throw ConfigError("--json reports the times of one image and one task: use it without --out-dir, --images, --list or several tasks");
  RunFolderArgs f;
  f.model = a.model;
  f.tasks = a.task;
  f.images_dir = a.images_dir;
  f.list_file = a.list_file;
  f.image = a.image;
  f.out_dir = a.out_dir;
  f.save_logits = a.save_logits_given;
  f.resize = a.resize;
  f.engine = engine_options(a);
  if (run_folder(f) > 0) set_exit_code(1);  // each failed image was reported by name
}

void run_run(const RunArgs& a) {
  if (folder_mode(a)) return run_many(a);
  if (a.image.empty() == a.input_npy.empty()) throw ConfigError("give exactly one of --image and --input-npy");
  if (a.repeat < 1) throw ConfigError("--repeat must be >= 1");
  if (a.save_logits_given && a.save_logits.empty()) throw ConfigError("--save-logits needs a file name (or use --out-dir)");
  check_output_dir(a.out, "--out");
  check_output_dir(a.save_logits, "--save-logits");
  const rt::EngineOptions opt = engine_options(a);

  const auto t0 = std::chrono::steady_clock::now();
  rt::Engine eng(a.model, opt);  // every check of the file and the options happens here
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ModelConfig& cfg = eng.config();
  const int task = eng.task_index(a.task);  // ConfigError naming the task and the known ones
  const std::vector<float> x = a.image.empty() ? rt::npy_to_input(read_npy(a.input_npy), cfg, a.input_npy) : rt::read_image_input(a.image, cfg, a.resize);

  const int C = eng.out_channels(task);
  std::vector<float> y(static_cast<size_t>(C) * cfg.img_h * cfg.img_w);
  double total_ms = 0, best_ms = 1e300;
  std::vector<rt::RunTimes> runs;
  for (int r = 0; r < a.repeat; ++r) {
    eng.run(task, x.data(), y.data());
    runs.push_back(eng.last_times());
    total_ms += eng.last_times().total;
    best_ms = std::min(best_ms, eng.last_times().total);
  }
  for (float v : y)
    if (!std::isfinite(v)) throw NumericError("task " + a.task + ": the logits contain NaN or Inf");

  // Everything is computed before the first file is written, so an error leaves no output behind.
  Image8 picture;
  if (!a.out.empty()) picture = visualize_task(a.task, y.data(), C, cfg.img_h, cfg.img_w);
  const rt::RunTimes& t = eng.last_times();
  // With --json stdout carries the JSON object only; the text goes to stderr.
  std::FILE* text = a.json ? stderr : stdout;
  std::fprintf(text, "model    %s (%s), task %s (%d of %d)\n", a.model.c_str(), cfg.name.c_str(), a.task.c_str(), task,
              cfg.num_tasks());
  std::fprintf(text, "runtime  %s, experts %s, layers %s, head convs %s, %d threads, loaded in %.2f s, %.1f MB of weights "
              "held\n",
              rt::to_string(opt.precision), rt::to_string(opt.experts), rt::to_string(opt.layers),
              eng.head_winograd() ? "Winograd" : "direct",
              eng.options().threads > 0 ? eng.options().threads : default_threads(), load_s, eng.weight_bytes() / 1e6);
  std::fprintf(text, "input    %s\n", (a.image.empty() ? a.input_npy : a.image).c_str());
  std::fprintf(text, "logits   [1, %d, %d, %d]  hash %s  (%.3f s)\n", C, cfg.img_h, cfg.img_w, logits_hash(y.data(), y.size()).c_str(),
              t.total / 1e3);
  std::fprintf(text, "time     %.1f ms mean, %.1f ms best of %d: embed %.1f, attention %.1f, mlp %.1f, moe %.1f, head %.1f; "
              "%.1f GFLOP/s\n",
              total_ms / a.repeat, best_ms, a.repeat, t.embed, t.attention, t.mlp, t.moe, t.head,
              eng.counted_flops(task) / best_ms / 1e6);
  std::fprintf(text, "experts  %d non-empty queues", t.experts_computed);
  if (eng.stream_bytes() > 0)
    std::fprintf(text, "; %lld weight loads streamed (%.1f MB) through %.1f MB of buffers, %.2f thread-ms waiting for a load",
                static_cast<long long>(t.stream.loads), t.stream.bytes_read / 1e6, eng.stream_bytes() / 1e6,
                t.stream.wait_ms);
  std::fprintf(text, "\n");
  if (!a.save_logits.empty()) {
    write_npy(a.save_logits, DType::F32, {1, C, cfg.img_h, cfg.img_w}, y.data());
    std::fprintf(text, "wrote    %s\n", a.save_logits.c_str());
  }
  if (!a.out.empty()) {
    write_png(a.out, picture);
    std::fprintf(text, "wrote    %s\n", a.out.c_str());
  }
  if (a.json) {
    std::fflush(stderr);
    std::printf("%s\n", json_report(a, eng, runs).dump().c_str());
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto* sub = app.add_subcommand("run", "single-task inference with the libtorch-free runtime");
  auto a = std::make_shared<RunArgs>();
  sub->add_option("--model,-m", a->model, "model export (.safetensors from `m3vit export`)")->required();
  sub->add_option("--task,-t", a->task,
                  "task to run: semseg, human_parts, sal, normals, edge, depth; with --out-dir also T1,T2,... or all")
      ->required();
  auto* img = sub->add_option("--image,-i", a->image, "input image (JPEG/PNG), exactly the model's size");
  auto* npy = sub->add_option("--input-npy", a->input_npy, "input .npy: normalised [3,H,W] or [1,3,H,W] float");
  img->excludes(npy);
  sub->add_option("--images", a->images_dir, "run every PNG/JPEG of this folder (sorted by name); needs --out-dir");
  sub->add_option("--list", a->list_file, "run the images listed in this file, one path per line; needs --out-dir");
  sub->add_option("--out-dir", a->out_dir, "folder for <image>_<task>.png (and .npy with --save-logits)");
  sub->add_flag("--resize", a->resize, "scale an image of another size to the model's size (bilinear)");
  sub->add_option("--save-logits", a->save_logits,
                  "write the raw output [1,C,H,W] float32 as .npy to this file; with --out-dir, no file name")
      ->expected(0, 1);
  sub->add_option("--out,-o", a->out, "write the task picture as PNG");
  sub->add_option("--experts", a->experts, "resident: all experts in RAM; stream: read from the file as needed")
      ->check(CLI::IsMember({"resident", "stream"}));
  sub->add_option("--layers", a->layers,
                  "attention, dense MLP and head conv weights: resident (default) or stream (read from the file as "
                  "needed, through the same buffers as streamed experts)")
      ->check(CLI::IsMember({"resident", "stream"}));
  sub->add_option("--memory-budget", a->memory_budget,
                  "stream modes: bytes for the weight buffers, e.g. 8M (default: two of the largest streamed load)");
  sub->add_option("--precision", a->precision, "fp32 (default), bf16 (AVX512-BF16) or int8 (AVX512-VNNI; the file of `m3vit calibrate`)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  sub->add_option("--conv", a->conv,
                  "head 3x3 convs: winograd (default, fastest; fp32: 4x the conv weights; bf16 and int8: F(4x4), 4x), "
                  "winograd-f2 (bf16 and int8: F(2x2), 16/9 of the weights, "
                  "a quarter (bf16) or half (int8) of the rounding error, slower) or direct")
      ->check(CLI::IsMember({"winograd", "winograd-f2", "direct"}));
  sub->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  sub->add_option("--repeat", a->repeat, "run the image this many times and report the mean and best time")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", a->json,
                "print one JSON object on stdout (task, precision, experts, layers, threads, ms_median, ms_best, "
                "stages_ms medians over the repeats, vmhwm_mb) and the text on stderr; one image only");
  sub->callback([a, sub] {
    a->save_logits_given = sub->get_option("--save-logits")->count() > 0;
    run_run(*a);
  });
}

}  // namespace m3vit::cli
