// bf16 against fp32 on the synthetic validation set: how far the outputs move and what that does to
// each task's metric, so that a precision is reported with its accuracy, not only its speed.
// Each trained model (--model, and --long-model for one trained longer; exports from `m3vit train`)
// runs the validation scenes of the synthetic data set in both precisions; the predictions are
// scored as the authors score them (eval/prediction.h, eval/*_meter.h): semseg / human_parts mIoU,
// saliency max-threshold IoU, normals mean angle, depth RMSE, edge odsF. Besides the metrics: the
// largest output change, the share of pixels whose class flips, and the share of (token, MoE layer)
// pairs whose set of top-k experts differs from fp32's (a bf16 router input can move a token to
// another expert even though the routers themselves run in fp32).
//
// --precision int8 compares int8 (docs/RUNTIME.md "int8") instead: each model is first calibrated
// (runtime/int8_format.h) on --calib scenes of the synthetic train split, never the validation scenes.
//
//   runtime_bf16_accuracy --model M.safetensors [--long-model L.safetensors] [--images 64]
//                         [--data-seed 1] [--threads 2] [--precision bf16|int8] [--calib 16]
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <map>

#include "bench/bench_util.h"
#include "common/platform.h"
#include "core/export.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "eval/depth_meter.h"
#include "eval/edge_meter.h"
#include "eval/normals_meter.h"
#include "eval/prediction.h"
#include "eval/saliency_meter.h"
#include "eval/segmentation_meter.h"
#include "runtime/engine.h"
#include "runtime/int8_format.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

using namespace m3vit;
using namespace m3vit::bench;

namespace {

// The metric each task is reported with, higher-is-better flag, from one set of meters.
struct Meters {
  std::map<std::string, std::unique_ptr<SegmentationMeter>> seg;
  SaliencyMeter sal;
  NormalsMeter normals;
  DepthMeter depth;
  EdgeMeter edge{EdgeMeterOptions{edge_tolerance_for("synthetic"), 99, true}};

  void add(const std::string& task, int channels, const ImageF& pred, const ImageF& gt) {
    if (task == "semseg" || task == "human_parts") {
      auto& m = seg[task];
      if (!m) m = std::make_unique<SegmentationMeter>(channels, task == "human_parts");
      m->update(pred, gt);
    } else if (task == "sal") {
      sal.update(pred, gt);
    } else if (task == "normals") {
      normals.update(pred, gt);
    } else if (task == "depth") {
      depth.update(pred, gt);
    } else if (task == "edge") {
      edge.update(pred, gt);
    }
  }
  double value(const std::string& task) const {
    if (task == "semseg" || task == "human_parts") return 100 * seg.at(task)->result().miou;
    if (task == "sal") return 100 * sal.result().miou;
    if (task == "normals") return normals.result().mean;
    if (task == "depth") return depth.result().rmse;
    return 100 * edge.result().ods_f;
  }
};

std::string metric_name(const std::string& task) {
  if (task == "semseg" || task == "human_parts") return "mIoU %";
  if (task == "sal") return "max-threshold IoU %";
  if (task == "normals") return "mean angle ° (lower better)";
  if (task == "depth") return "RMSE (lower better)";
  return "odsF %";
}

// Share of (token, layer) entries whose k chosen experts differ as a set (the order within the k
// follows the gate probabilities, which rounding may swap without changing the experts).
struct TopkAgreement {
  int64_t differ = 0, total = 0;
  void add(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int k) {
    if (a.size() != b.size() || k < 1) throw std::runtime_error("routing of different shapes");
    for (size_t i = 0; i + k <= a.size(); i += k) {
      std::vector<int32_t> x(a.begin() + i, a.begin() + i + k), y(b.begin() + i, b.begin() + i + k);
      std::sort(x.begin(), x.end());
      std::sort(y.begin(), y.end());
      differ += x != y;
      ++total;
    }
  }
};

// How long the model was trained, from the train_log.jsonl `m3vit train` writes beside its exports
// (the last "train" record's step and time_s): ", trained 600 steps in 26.1 min". Empty without a log.
std::string training_time(const std::string& model) {
  std::ifstream in(std::filesystem::path(model).parent_path() / "train_log.jsonl");
  long step = -1;
  double seconds = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("type", "") != "train") continue;
    step = j.value("step", -1L);
    seconds = j.value("time_s", 0.0);
  }
  return step < 0 ? "" : ", trained " + std::to_string(step) + " steps in " + fmt("%.1f min", seconds / 60);
}

// The metrics of one model in fp32 and bf16, printed as a table; returns the largest relative change
// of a metric (|bf16 − fp32| / |fp32|).
double report_model(const std::string& model, const std::string& label, int images, uint64_t seed, int threads,
                    rt::Precision prec, int calib) {
  rt::EngineOptions o32;
  o32.threads = threads;
  rt::EngineOptions o16 = o32;
  o16.precision = prec;
  // int8: the calibrated file, from train-split scenes prepared as the validation ones are.
  std::string low_model = model;
  if (prec == rt::Precision::int8) {
    const ModelConfig mc = read_export_config(model);
    SyntheticOptions to;
    to.seed = seed;
    to.split = "train";
    to.size = calib;
    to.height = mc.img_h;
    to.width = mc.img_w;
    const SyntheticDataset train(to);
    const AugmentConfig aug = augment_config("synthetic", false, mc.img_h, mc.img_w);
    low_model = (std::filesystem::temp_directory_path() / "m3vit_accuracy_int8.safetensors").string();
    rt::write_int8_export(model,
                          rt::calibrate_model(model, calib,
                                              [&](int i, std::vector<float>& x) {
                                                x = transform_sample(train.get(i), aug, 0).image.data;
                                              },
                                              threads),
                          low_model, {"absmax over " + std::to_string(calib) + " synthetic train scenes"});
  }
  rt::Engine e32(model, o32), e16(low_model, o16);
  if (low_model != model) std::filesystem::remove(low_model);
  const char* pname = rt::to_string(prec);
  const ModelConfig& c = e32.config();

  SyntheticOptions so;
  so.seed = seed;
  so.split = "val";
  so.size = images;
  so.height = c.img_h;
  so.width = c.img_w;
  SyntheticDataset ds(so);
  const AugmentConfig val = augment_config("synthetic", false, c.img_h, c.img_w);
  Meters m32, m16;
  std::map<std::string, double> worst;  // per task: max over images of max abs(bf16 − fp32) / max abs(fp32)
  std::map<std::string, double> flips;  // semseg / human_parts: share of pixels whose argmax changed
  std::map<std::string, int64_t> pixels;
  std::map<std::string, TopkAgreement> topk;
  for (int i = 0; i < images; ++i) {
    const Sample raw = ds.get(i);
    const Sample s = transform_sample(raw, val, 0);
    for (int t = 0; t < c.num_tasks(); ++t) {
      const std::string& task = c.tasks[t].name;
      if (!raw.has(task) || all_ignored(s.labels.at(task))) continue;
      const int C = c.tasks[t].out_channels;
      ImageF y32(C, c.img_h, c.img_w), y16(C, c.img_h, c.img_w);
      e32.run(t, s.image.data.data(), y32.data.data());
      e16.run(t, s.image.data.data(), y16.data.data());
      topk[task].add(e32.last_routing(), e16.last_routing(), c.moe_top_k);
      double err = 0, ref = 0;
      for (size_t j = 0; j < y32.size(); ++j) {
        err = std::max(err, static_cast<double>(std::fabs(y16.data[j] - y32.data[j])));
        ref = std::max(ref, static_cast<double>(std::fabs(y32.data[j])));
      }
      worst[task] = std::max(worst[task], err / std::max(ref, 1e-30));
      const ImageF p32 = stored_prediction(task, y32, raw.orig_h, raw.orig_w);
      const ImageF p16 = stored_prediction(task, y16, raw.orig_h, raw.orig_w);
      if (task == "semseg" || task == "human_parts") {
        for (size_t j = 0; j < p32.size(); ++j) flips[task] += p32.data[j] != p16.data[j];
        pixels[task] += static_cast<int64_t>(p32.size());
      }
      m32.add(task, C, p32, raw.labels.at(task));
      m16.add(task, C, p16, raw.labels.at(task));
    }
  }
  std::printf("%s: %s (%s%s), %d validation scenes at %d×%d, %d threads.\n\n", label.c_str(), model.c_str(),
              c.name.c_str(), training_time(model).c_str(), images, c.img_h, c.img_w, threads);
  std::printf("%s\n%s\n",
              row({"task", "metric", "fp32", pname, "change", "relative change",
                   std::string("max abs(") + pname + " − fp32) / max abs(fp32)", "argmax flips",
                   "tokens with other top-k experts"})
                  .c_str(),
              rule(9).c_str());
  double largest = 0;
  for (const auto& t : c.tasks) {
    if (!worst.count(t.name)) continue;
    const double a = m32.value(t.name), b = m16.value(t.name);
    const double rel = std::fabs(b - a) / std::max(std::fabs(a), 1e-12);
    largest = std::max(largest, rel);
    const TopkAgreement& k = topk[t.name];
    std::printf("%s\n", row({t.name, metric_name(t.name), fmt("%.3f", a), fmt("%.3f", b), fmt("%+.3f", b - a),
                             fmt("%.2f%%", 100 * rel), fmt("%.1e", worst[t.name]),
                             pixels.count(t.name) ? fmt("%.3f%%", 100 * flips[t.name] / pixels[t.name]) : "-",
                             k.total ? fmt("%.2f%%", 100.0 * k.differ / k.total) : "-"})
                            .c_str());
  }
  std::printf("\n");
  return largest;
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc();
  const std::string model = arg(argc, argv, "--model", "");
  const std::string long_model = arg(argc, argv, "--long-model", "");
  const int images = std::stoi(arg(argc, argv, "--images", "64"));
  const int threads = std::stoi(arg(argc, argv, "--threads", "2"));
  const uint64_t seed = std::stoull(arg(argc, argv, "--data-seed", "1"));
  const rt::Precision prec = rt::precision_from_string(arg(argc, argv, "--precision", "bf16"));
  const int calib = std::stoi(arg(argc, argv, "--calib", "16"));
  if (prec == rt::Precision::fp32) throw std::runtime_error("--precision: bf16 or int8 (compared against fp32)");
  const bool int8 = prec == rt::Precision::int8;
  std::printf("## %s accuracy against fp32 (synthetic validation set)\n\n", rt::to_string(prec));
  if (model.empty() || !(int8 ? rt::cpu_has_vnni() : rt::cpu_has_bf16())) {
    std::printf("Skipped: %s.\n\n", model.empty() ? "no trained model given (--model)"
                                     : int8     ? "this CPU has no AVX512-VNNI"
                                                : "this CPU has no AVX512-BF16");
    return 0;
  }
  if (int8)
    std::printf("int8: s8 weights per output channel, s8/u8 inputs with steps calibrated on %d synthetic train scenes, "
                "s32 sums (the head's 3×3 convs as int8 Winograd F(4×4, 3×3), F(2×2) where a map is not in whole 4×4 tiles); "
                "the attention core with q, k, v and the probabilities quantised as it runs (u8/s8, one step per query, "
                "key and value channel); conv_4 in bf16 on conv_3's bf16 output (AVX512-BF16); patch embedding, routers, LayerNorm, softmax and resizing stay fp32.\n\n",
                calib);
  else
    std::printf("bf16: weights and the inputs of every matmul and conv in bfloat16 with fp32 accumulation (the head's "
                "3×3 convs as bf16 Winograd F(4×4, 3×3), F(2×2) where a map is not in whole 4×4 tiles); routers, "
                "LayerNorm, softmax and resizing stay fp32.\n\n");
  double largest = report_model(model, "Demo model", images, seed, threads, prec, calib);
  if (!long_model.empty())
    largest = std::max(largest, report_model(long_model, "Model trained longer", images, seed, threads, prec, calib));
  else
    std::printf("No longer-trained model given (M3VIT_LONG_TRAINED_MODEL for `make bench`).\n\n");
  const double goal = int8 ? 0.02 : 0.01;
  std::printf("Goal: every metric within %.0f%% (relative) of fp32 in %s. Largest change: **%.2f%%** (%s).\n\n",
              100 * goal, rt::to_string(prec), 100 * largest, largest <= goal ? "met" : "not met");
  return 0;
}
