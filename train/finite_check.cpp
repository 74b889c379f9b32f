// NaN / Inf checks (see finite_check.h).
#include "common/pch/torch_pch.h"

#include "train/finite_check.h"

namespace m3vit {

std::vector<size_t> non_finite_entries(const NamedTensors& named) {
  std::vector<torch::Tensor> flags;
  std::vector<size_t> where;
  for (size_t i = 0; i < named.size(); ++i) {
    const torch::Tensor& t = named[i].second;
    if (!t.defined() || !t.is_floating_point() || t.numel() == 0) continue;
    flags.push_back(t.isfinite().all());
    where.push_back(i);
  }
  if (flags.empty()) return {};
  torch::Tensor ok = torch::stack(flags).cpu();
  if (ok.all().item<bool>()) return {};  // the common case: one read for the whole list
  std::vector<size_t> bad;
  auto a = ok.accessor<bool, 1>();
  for (size_t k = 0; k < where.size(); ++k)
    if (!a[static_cast<int64_t>(k)]) bad.push_back(where[k]);
  return bad;
}

std::string non_finite_summary(const torch::Tensor& t) {
  const int64_t nan = t.isnan().sum().item<int64_t>();
  const int64_t inf = t.isinf().sum().item<int64_t>();
  return std::to_string(nan) + " NaN, " + std::to_string(inf) + " Inf of " + std::to_string(t.numel()) + " values";
}

}  // namespace m3vit
