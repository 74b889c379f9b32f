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
#include "eval/delta_m.h"
#include "eval/prediction.h"
#include "train/data_setup.h"
#include "train/eval_scoring.h"
#include "train/train_checkpoint.h"
#include "model/checkpoint.h"
#include "common/fileutil.h"

namespace m3vit {

namespace {

// One image's head output [C, h, w] as a torch-free map.
ImageF to_image(const torch::Tensor& out) {
  auto c = out.detach().to(torch::kFloat32).contiguous();
  ImageF im(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), static_cast<int>(c.size(2)));
  std::memcpy(im.data.data(), c.data_ptr<float>(), im.size() * sizeof(float));
  return im;
}

// The transformed label of sample i of a batch, for the all-ignore check.
ImageF batch_label(const Batch& b, const std::string& task, int i) {
  const int C = b.channels.at(task);
  ImageF m(C, b.height, b.width);
  const auto& v = b.labels.at(task);
  std::memcpy(m.data.data(), v.data() + static_cast<size_t>(i) * m.size(), m.size() * sizeof(float));
  return m;
}

}  // namespace

MultiTaskModel load_model_for_eval(const ModelConfig& cfg, const std::string& weights) {
  if (!file_exists(weights)) throw IoError("weights " + weights + ": no such file or directory");
  MultiTaskModel model(cfg);
  if (is_train_checkpoint(weights)) {
    const LoadedCheckpoint meta = read_train_checkpoint_metadata(weights);
    if (meta.config_json != config_to_json(cfg))
      throw ConfigError(weights + " was trained with another model config (" + meta.config_json.substr(0, 80) +
                        "...) than the one given");
    load_train_checkpoint(weights, *model, nullptr);
  } else {
    load_checkpoint(*model, weights, /*strict=*/true, LoadFor::inference);  // eval mode runs no TAM
  }
  model->eval();
  return model;
}

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
        if (all_ignored(batch_label(b, t, i))) continue;
        ImageF pred = stored_prediction(t, to_image(outs.at(t)[i]), b.orig_h[i], b.orig_w[i]);
        if (!opt.png_dir.empty()) {
          const std::string dir = opt.png_dir + "/" + t;
          std::filesystem::create_directories(dir);
          save_stored_prediction(dir + "/" + b.ids[i] + (t == "depth" ? ".mat" : ".png"), t, pred);
        }
        scorer.add(t, pred, gt.label(t), b.ids[i] + " (" + t + ")");
      }
      ++res.images;
    }
    if (opt.progress) bar.update(bi + 1);
  }
  if (opt.progress) bar.finish();
  scorer.finish(res);
  std::map<std::string, double> refs = opt.references.empty() ? default_references(val.kind(), tasks) : opt.references;
  for (const auto& t : tasks)
    if (refs.count(t) && res.headline.count(t)) res.references[t] = refs[t];
  res.delta_m = delta_m_of(res, res.references);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

double delta_m_of(const EvalResult& r, const std::map<std::string, double>& references) {
  // Δm over the referenced tasks that were scored, in percent (eval/delta_m.h returns a fraction).
  std::map<std::string, double> refs;
  for (const auto& [t, v] : references)
    if (r.headline.count(t)) refs[t] = v;
  if (refs.empty()) return std::numeric_limits<double>::quiet_NaN();
  return 100.0 * delta_m(r.headline, refs);
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
                    r.headline.count(t) && delta_m_metric(t) == name ? "  *" : "");
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
