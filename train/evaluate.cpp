// Validation as the authors score it (see evaluate.h; evaluation/evaluate_utils.py:275-385,
// utils/utils.py:60-78 for the post-processing, utils/config.py INFER_FLAGVALS for the resizing).
#include "common/pch/torch_pch.h"

#include "train/evaluate.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/errors.h"
#include "common/image_io.h"
#include "common/progress.h"
#include "data/image_ops.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "io/npy.h"
#include "train/data_setup.h"
#include "train/eval_scoring.h"

namespace m3vit {

namespace {

// utils/utils.py:60-78 on one image's output [C, H, W] -> the map the authors write, at input size:
//   semseg/human_parts: argmax (class id); normals: (n/|n| + 1)·255/2; sal/edge: 255·sigmoid;
//   depth: raw. Returned as float [c, H, W] so that the resize can follow.
ImageF postprocess(const std::string& task, const torch::Tensor& out) {
  torch::Tensor m;
  if (task == "semseg" || task == "human_parts") {
    m = out.argmax(0, /*keepdim=*/true).to(torch::kFloat32);
  } else if (task == "normals") {
    m = (out / (out.norm(2, {0}, true) + 1e-12) + 1) * (255.0 / 2.0);  // F.normalize then (n+1)*255/2
  } else if (task == "sal" || task == "edge") {
    m = 255 * torch::sigmoid(out);
  } else if (task == "depth") {
    m = out;
  } else {
    throw ConfigError("cannot evaluate unknown task '" + task + "'");
  }
  m = m.contiguous().to(torch::kFloat32);
  ImageF im(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), static_cast<int>(m.size(2)));
  std::memcpy(im.data.data(), m.data_ptr<float>(), im.size() * sizeof(float));
  return im;
}

// Resize to the original size (nearest for label maps, bilinear otherwise) and the uint8 cast of
// the PNG the authors write (truncation; values are already in 0..255). Depth stays float (.mat).
ImageF to_original_resolution(const std::string& task, const ImageF& m, int orig_h, int orig_w) {
  const bool labels = task == "semseg" || task == "human_parts";
  ImageF r = resize(m, orig_h, orig_w, labels ? Interp::nearest : Interp::linear);
  if (task != "depth")
    for (float& v : r.data) v = std::floor(std::clamp(v, 0.f, 255.f));
  return r;
}

void write_prediction(const std::string& dir, const std::string& task, const std::string& id, const ImageF& m) {
  namespace fs = std::filesystem;
  const std::string tdir = dir + "/" + task;
  std::error_code ec;
  fs::create_directories(tdir, ec);
  if (ec) throw IoError("cannot create " + tdir + ": " + ec.message());
  if (task == "depth") {
    write_npy(tdir + "/" + id + ".npy", DType::F32, {m.h, m.w}, m.data.data());
    return;
  }
  Image8 img;
  img.width = m.w, img.height = m.h, img.channels = m.c == 3 ? 3 : 1;
  img.pixels.resize(static_cast<size_t>(m.w) * m.h * img.channels);
  const size_t np = m.plane_size();
  for (size_t k = 0; k < np; ++k)
    for (int c = 0; c < img.channels; ++c) img.pixels[k * img.channels + c] = static_cast<uint8_t>(m.data[c * np + k]);
  write_png(tdir + "/" + id + ".png", img);
}

bool all_ignored(const float* label, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (label[i] != kIgnoreLabel) return false;
  return true;
}

}  // namespace

EvalResult evaluate_model(MultiTaskModelImpl& model, const Dataset& val, const EvalOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& cfg = model.config();
  std::vector<std::string> tasks = opt.tasks;
  if (tasks.empty())
    for (const auto& ts : cfg.tasks) tasks.push_back(ts.name);
  for (const auto& t : tasks) {
    cfg.task_index(t);  // throws ConfigError naming an unknown task
    bool has = false;
    for (const auto& vt : val.tasks()) has |= vt == t;
    if (!has) throw ConfigError("the validation data set has no labels for task '" + t + "'");
  }
  if (val.size() == 0) throw ConfigError("the validation split is empty");

  LoaderOptions lo;
  lo.batch_size = opt.batch_size;
  lo.shuffle = false;
  lo.workers = opt.workers;
  lo.augment = augment_config(val.kind(), false, cfg.img_h, cfg.img_w);
  Loader loader(val, lo);
  int64_t batches = loader.batches_per_epoch();
  if (opt.max_images > 0) batches = std::min<int64_t>(batches, (opt.max_images + opt.batch_size - 1) / opt.batch_size);

  EvalScorer scorer(val.kind(), cfg, tasks);
  model.eval();
  torch::NoGradGuard no_grad;
  ProgressBar bar("eval", batches, "batch");
  EvalResult res;
  res.dataset = val.kind();
  res.tasks = tasks;
  const bool per_task = opt.single_task || tasks.size() < cfg.tasks.size() || cfg.gate != GateType::shared;
  for (int64_t bi = 0; bi < batches; ++bi) {
    Batch b = loader.next();
    TensorBatch tb = tensor_view(b);
    std::map<std::string, torch::Tensor> outs;
    if (per_task) {
      for (const auto& t : tasks) outs[t] = model.forward_task(tb.images, cfg.task_index(t));
    } else {
      outs = model.forward_all(tb.images);  // shared router: one backbone pass for every head
    }
    for (int i = 0; i < b.size; ++i) {
      if (opt.max_images > 0 && res.images >= opt.max_images) break;
      const Sample gt = val.get(b.indices[i]);  // original-resolution ground truth, no transform
      for (const auto& t : tasks) {
        // evaluate_utils.py:303-305: an image whose resized label is all ignore is not scored.
        const auto& lab = b.labels.at(t);
        const size_t n = lab.size() / b.size;
        if (all_ignored(lab.data() + i * n, n)) continue;
        ImageF pred = to_original_resolution(t, postprocess(t, outs.at(t)[i]), b.orig_h[i], b.orig_w[i]);
        if (!opt.png_dir.empty()) write_prediction(opt.png_dir, t, b.ids[i], pred);
        scorer.add(t, pred, gt.label(t));
      }
      ++res.images;
    }
    if (opt.progress) bar.update(bi + 1);
  }
  if (opt.progress) bar.finish();
  scorer.finish(res);
  std::map<std::string, double> refs = opt.references.empty() ? default_references(val.kind()) : opt.references;
  for (const auto& t : tasks)
    if (refs.count(t) && res.headline.count(t)) res.references[t] = refs[t];
  res.delta_m = delta_m_of(res, res.references);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

double delta_m_of(const EvalResult& r, const std::map<std::string, double>& references) {
  // Δm = 100/T' · Σ_t s_t (M_t − S_t)/S_t, s = −1 for errors (depth RMSE, normals mean angle)
  // (evaluate_utils.py:45-70).
  double sum = 0;
  int n = 0;
  for (const auto& [task, ref] : references) {
    auto it = r.headline.find(task);
    if (it == r.headline.end()) continue;
    const double sign = lower_is_better(task) ? -1.0 : 1.0;
    sum += sign * (it->second - ref) / ref;
    ++n;
  }
  return n ? 100.0 * sum / n : std::numeric_limits<double>::quiet_NaN();
}

std::string eval_table(const EvalResult& r) {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-22s %12s\n", "task", "metric", "value");
  s += line;
  for (const auto& t : r.tasks) {
    auto it = r.metrics.find(t);
    if (it == r.metrics.end()) continue;
    for (const auto& [name, v] : it->second) {
      std::snprintf(line, sizeof line, "%-12s %-22s %12.4f%s\n", t.c_str(), name.c_str(), v,
                    r.headline.count(t) && headline_metric(t) == name ? "  *" : "");
      s += line;
    }
  }
  if (!std::isnan(r.delta_m)) {
    std::string refs;
    for (const auto& [t, v] : r.references) refs += (refs.empty() ? "" : ", ") + t + " " + std::to_string(v).substr(0, 6);
    std::snprintf(line, sizeof line, "Δm %+.2f %% over %zu tasks (* = metric used; references: ", r.delta_m,
                  r.references.size());
    s += line + refs + ")\n";
  } else {
    s += "Δm: no single-task references for these tasks (set train.delta_m_references or --reference)\n";
  }
  std::snprintf(line, sizeof line, "%lld images, %.1f s\n", (long long)r.images, r.seconds);
  return s + line;
}

std::string eval_json(const EvalResult& r) {
  nlohmann::json j;
  j["dataset"] = r.dataset;
  j["images"] = r.images;
  j["tasks"] = nlohmann::json::object();
  for (const auto& [t, m] : r.metrics) j["tasks"][t] = m;
  j["headline"] = r.headline;
  j["references"] = r.references;
  if (std::isnan(r.delta_m)) j["delta_m"] = nullptr;
  else j["delta_m"] = r.delta_m;
  j["seconds"] = r.seconds;
  return j.dump(2);
}

}  // namespace m3vit
