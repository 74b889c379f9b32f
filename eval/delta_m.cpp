// Multi-task Δm (eval/delta_m.h).
#include "eval/delta_m.h"

#include <cmath>
#include <sstream>

#include "common/errors.h"
#include "data/sample.h"

namespace m3vit {

const char* delta_m_metric(const std::string& task) {
  check_task_name(task);
  if (task == "depth") return "rmse";
  if (task == "normals") return "mean";
  if (task == "edge") return "odsF";
  return "mIoU";
}

int delta_m_sign(const std::string& task) {
  check_task_name(task);
  return (task == "depth" || task == "normals") ? -1 : +1;
}

std::map<std::string, double> default_delta_m_references(const std::string& dataset, bool include_edge) {
  if (dataset == "pascal") {
    std::map<std::string, double> r = {{"semseg", 0.662}, {"human_parts", 0.599}, {"sal", 0.663}, {"normals", 13.9}};
    if (include_edge) r["edge"] = 0.688;  // commented out in evaluate_utils.py:368
    return r;
  }
  if (dataset == "nyud") return {{"semseg", 0.439}, {"depth", 0.585}, {"normals", 19.763}};
  throw ConfigError("no single-task references for data set '" + dataset +
                    "': give them as task=value pairs (the authors have values for pascal and nyud)");
}

std::map<std::string, double> parse_delta_m_references(const std::string& text) {
  std::map<std::string, double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw ConfigError("Δm reference '" + item + "' is not task=value");
    const std::string task = item.substr(0, eq), value = item.substr(eq + 1);
    check_task_name(task);
    double v = 0;
    try {
      size_t used = 0;
      v = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw ConfigError("Δm reference for " + task + ": '" + value + "' is not a number");
    }
    if (!(v > 0) || !std::isfinite(v)) throw ConfigError("Δm reference for " + task + " must be positive, got " + value);
    out[task] = v;
  }
  if (out.empty()) throw ConfigError("no Δm references in '" + text + "'");
  return out;
}

double delta_m(const std::map<std::string, double>& scores, const std::map<std::string, double>& refs) {
  if (refs.empty()) throw ConfigError("Δm needs at least one single-task reference");
  double sum = 0;
  for (const auto& [task, ref] : refs) {
    auto it = scores.find(task);
    if (it == scores.end())
      throw ConfigError(std::string("Δm: no ") + delta_m_metric(task) + " score for task '" + task + "'");
    if (!std::isfinite(it->second)) throw NumericError("Δm: the " + task + " score is not finite");
    sum += delta_m_sign(task) * (it->second - ref) / ref;
  }
  return sum / static_cast<double>(refs.size());
}

}  // namespace m3vit
