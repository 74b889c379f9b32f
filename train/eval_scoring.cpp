// Adapter to the metric meters of eval/ (see eval_scoring.h).
#include "train/eval_scoring.h"

#include "common/errors.h"

namespace m3vit {

struct EvalScorer::Impl {};

EvalScorer::EvalScorer(const std::string&, const ModelConfig&, const std::vector<std::string>&)
    : impl_(std::make_unique<Impl>()) {}
EvalScorer::~EvalScorer() = default;
void EvalScorer::add(const std::string&, const ImageF&, const ImageF&) {}
void EvalScorer::finish(EvalResult&) const {}

std::map<std::string, double> default_references(const std::string& dataset) {
  if (dataset == "pascal") return {{"semseg", 0.662}, {"human_parts", 0.599}, {"sal", 0.663}, {"normals", 13.9}};
  if (dataset == "nyud") return {{"semseg", 0.439}, {"depth", 0.585}, {"normals", 19.763}};
  return {};
}

bool lower_is_better(const std::string& task) { return task == "depth" || task == "normals"; }

std::string headline_metric(const std::string& task) {
  if (task == "semseg" || task == "human_parts") return "mIoU";
  if (task == "sal") return "maxIoU";
  if (task == "normals") return "mean";
  if (task == "depth") return "rmse";
  if (task == "edge") return "odsF";
  throw ConfigError("unknown task '" + task + "'");
}

}  // namespace m3vit
