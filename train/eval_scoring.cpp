// Adapter to the metric meters of eval/ (see eval_scoring.h).
#include "train/eval_scoring.h"

#include "common/errors.h"
#include "eval/delta_m.h"
#include "eval/depth_meter.h"
#include "eval/edge_meter.h"
#include "eval/normals_meter.h"
#include "eval/saliency_meter.h"
#include "eval/segmentation_meter.h"

namespace m3vit {

struct EvalScorer::Impl {
  std::vector<std::string> tasks;
  std::map<std::string, SegmentationMeter> seg;  // semseg, human_parts
  SaliencyMeter sal;
  NormalsMeter normals;
  DepthMeter depth;
  std::unique_ptr<EdgeMeter> edge;
};

EvalScorer::EvalScorer(const std::string& dataset, const ModelConfig& cfg, const std::vector<std::string>& tasks)
    : impl_(std::make_unique<Impl>()) {
  impl_->tasks = tasks;
  for (const auto& t : tasks) {
    const int c = cfg.tasks.at(cfg.task_index(t)).out_channels;
    // eval_human_parts.py skips images whose ground truth is a single value 0 or 255 (no person).
    if (t == "semseg") impl_->seg.emplace(t, SegmentationMeter(c, false));
    if (t == "human_parts") impl_->seg.emplace(t, SegmentationMeter(c, true));
    if (t == "edge") {
      EdgeMeterOptions eo;
      eo.max_dist_ratio = edge_tolerance_for(dataset);
      impl_->edge = std::make_unique<EdgeMeter>(eo);
    }
  }
}

EvalScorer::~EvalScorer() = default;

void EvalScorer::add(const std::string& task, const ImageF& pred, const ImageF& gt, const std::string& what) {
  if (task == "semseg" || task == "human_parts") impl_->seg.at(task).update(pred, gt, what);
  else if (task == "sal") impl_->sal.update(pred, gt, what);
  else if (task == "normals") impl_->normals.update(pred, gt, what);
  else if (task == "depth") impl_->depth.update(pred, gt, what);
  else if (task == "edge") impl_->edge->update(pred, gt, what);
  else throw ConfigError("cannot score unknown task '" + task + "'");
}

void EvalScorer::finish(EvalResult& r) const {
  for (const auto& t : impl_->tasks) {
    auto& m = r.metrics[t];
    if (t == "semseg" || t == "human_parts") {
      auto s = impl_->seg.at(t).result();
      m["mIoU"] = s.miou;
      m["images"] = static_cast<double>(s.images);
    } else if (t == "sal") {
      auto s = impl_->sal.result();
      m["mIoU"] = s.miou;
      m["maxF"] = s.max_f;
      m["images"] = static_cast<double>(s.images);
    } else if (t == "normals") {
      auto s = impl_->normals.result();
      m["mean"] = s.mean;
      m["median"] = s.median;
      m["rmse"] = s.rmse;
      m["within_11.25"] = s.within_11_25;
      m["within_22.5"] = s.within_22_5;
      m["within_30"] = s.within_30;
    } else if (t == "depth") {
      auto s = impl_->depth.result();
      m["rmse"] = s.rmse;
      m["log_rmse"] = s.log_rmse;
    } else if (t == "edge") {
      auto s = impl_->edge->result();
      m["odsF"] = s.ods_f;
      m["oisF"] = s.ois_f;
      m["AP"] = s.ap;
    }
    r.headline[t] = m.at(delta_m_metric(t));
  }
}

std::map<std::string, double> default_references(const std::string& dataset, const std::vector<std::string>& tasks) {
  if (dataset != "pascal" && dataset != "nyud") return {};
  std::map<std::string, double> out;
  for (const auto& [t, v] : default_delta_m_references(dataset))
    if (std::find(tasks.begin(), tasks.end(), t) != tasks.end()) out[t] = v;
  return out;
}

}  // namespace m3vit
