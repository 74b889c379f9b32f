// Multi-task performance Δm against single-task references (authors' evaluation/evaluate_utils.py:
// 45-70 and 354-385; docs/METRICS.md):
//   Δm = (1/T) sum_t s_t (M_t - S_t) / S_t,
//   s_t = +1 for mIoU (semseg, human_parts, sal) and odsF (edge), -1 for depth RMSE and normals mean angle,
// over the T tasks that have a reference. The authors' references (hard-coded, edge commented out so
// edge never counts): PASCAL semseg 0.662, human_parts 0.599, sal 0.663, normals 13.9 (edge 0.688 if
// asked for); NYUD semseg 0.439, depth 0.585, normals 19.763. Returned as a fraction (the authors
// print 100 x Δm).
#pragma once

#include <map>
#include <string>

namespace m3vit {

// The metric of each task that enters Δm: "mIoU" (semseg, human_parts, sal), "odsF" (edge),
// "rmse" (depth), "mean" (normals), and its sign.
const char* delta_m_metric(const std::string& task);
int delta_m_sign(const std::string& task);

// The authors' references for "pascal" or "nyud", restricted to `tasks` when it is non-empty.
// include_edge adds PASCAL's commented-out edge reference 0.688. Throws ConfigError for another data set
// (e.g. "synthetic": give references explicitly).
std::map<std::string, double> default_delta_m_references(const std::string& dataset, bool include_edge = false);

// Parses "semseg=0.662,normals=13.9" (task=value pairs, comma separated). Throws ConfigError naming
// an unknown task or a value that is not a positive number.
std::map<std::string, double> parse_delta_m_references(const std::string& text);

// Δm over the tasks in `references`. `scores` maps task -> its Δm metric (delta_m_metric). A referenced
// task without a score is a ConfigError naming it; scored tasks without a reference are left out (as
// the authors drop edge).
double delta_m(const std::map<std::string, double>& scores, const std::map<std::string, double>& references);

}  // namespace m3vit
