#include "core/config.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/errors.h"

namespace m3vit {

bool ModelConfig::is_moe_block(int i) const {
  return std::find(moe_blocks.begin(), moe_blocks.end(), i) != moe_blocks.end();
}

int ModelConfig::task_index(const std::string& task) const {
  for (int t = 0; t < num_tasks(); ++t)
    if (tasks[t].name == task) return t;
  std::string known;
  for (const auto& ts : tasks) known += (known.empty() ? "" : ", ") + ts.name;
  throw ConfigError("unknown task '" + task + "' (this model has: " + known + ")");
}

void ModelConfig::validate() const {
  auto fail = [&](const std::string& what) { throw ConfigError("config '" + name + "': " + what); };
  // Stated limits (docs/TESTING.md "Resource bounds"), far above any ViT of the field (and the lower
  // bounds: sizes at least 1), checked first: configs come from files, and every size below (tokens, hidden widths, tensor shapes of an
  // export) is computed from these in int without overflow only inside them.
  auto within = [&](const char* what, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi))
      fail(std::string(what) + " = " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  };
  within("img_h", img_h, 1, kMaxImageSide);
  within("img_w", img_w, 1, kMaxImageSide);
  within("patch_size", patch, 1, kMaxImageSide);
  within("embed_dim", embed_dim, 1, kMaxWidth);
  within("depth", depth, 1, kMaxDepth);
  within("num_heads", num_heads, 1, kMaxWidth);
  within("mlp_ratio", mlp_ratio, 0, kMaxRatio);
  within("moe_mlp_ratio", moe_mlp_ratio, 0, kMaxRatio);
  within("moe_experts", moe_experts, 0, kMaxExperts);
  within("moe_top_k", moe_top_k, 0, kMaxExperts);
  within("head_channels", head_channels, 1, kMaxWidth);
  within("task_emb_dim", task_emb_dim, -1e9, kMaxWidth);
  for (const auto& t : tasks) within(("out_channels of " + t.name).c_str(), t.out_channels, 1, kMaxWidth);
  if (tasks.size() > 64) fail("more than 64 tasks");
  // Names travel in the export's JSON metadata, which must be UTF-8.
  auto utf8 = [&](const std::string& what, const std::string& text) {
    try {
      (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::type_error&) {
      throw ConfigError("config: " + what + " is not valid UTF-8");
    }
  };
  utf8("the model name", name);
  for (const auto& t : tasks) utf8("a task name", t.name);
  if (img_h % patch || img_w % patch)
    fail("image size " + std::to_string(img_h) + "x" + std::to_string(img_w) + " is not a multiple of patch " +
         std::to_string(patch));
  if (embed_dim % num_heads) fail("embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " +
                                  std::to_string(num_heads));
  for (int b : moe_blocks)
    if (b < 0 || b >= depth) fail("moe block " + std::to_string(b) + " is outside 0.." + std::to_string(depth - 1));
  if (!moe_blocks.empty()) {
    if (moe_experts < 1) fail("moe_experts must be >= 1");
    if (moe_top_k < 1 || moe_top_k > moe_experts)
      fail("moe_top_k " + std::to_string(moe_top_k) + " must be in 1..moe_experts (" + std::to_string(moe_experts) + ")");
    if (moe_hidden() < 1) fail("moe_mlp_ratio gives an empty expert");
  }
  if (tasks.empty()) fail("no tasks");
  for (size_t i = 0; i < tasks.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      if (tasks[i].name == tasks[j].name) fail("task " + tasks[i].name + " listed twice");
  }
  if (gate == GateType::task_cond && task_emb_dim == 0) fail("task_emb_dim must be > 0 or < 0 (none)");
  if (tam && tasks.size() > 5) fail("TAM supports 2..5 tasks (models.py:62-71)");
  if (tam && tasks.size() < 2) fail("TAM needs at least 2 tasks");
  // TAM level L works on the head's feature map of (2^(L+1) h) x (2^(L+1) w); its two stride-2 convs
  // and two transposed convs give the input size back only when both sides are multiples of 4
  // (models.py:9-101 has the same limit). Level 0 therefore needs an even patch grid.
  if (tam)
    for (int l = 0; l < 3; ++l)
      if (tam_levels[l] && (((grid_h() << (l + 1)) % 4) || ((grid_w() << (l + 1)) % 4)))
        fail("TAM level " + std::to_string(l) + " needs a feature map whose sides are multiples of 4, but the " +
             std::to_string(grid_h()) + "x" + std::to_string(grid_w()) + " patch grid gives " +
             std::to_string(grid_h() << (l + 1)) + "x" + std::to_string(grid_w() << (l + 1)) +
             " (use an even grid or other tam_levels)");
}

std::vector<int> odd_blocks(int depth) {
  std::vector<int> v;
  for (int i = 1; i < depth; i += 2) v.push_back(i);
  return v;
}

ModelConfig dense_baseline(ModelConfig cfg) {
  cfg.moe_blocks.clear();
  cfg.name += "_dense";
  return cfg;
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = {"semseg", "human_parts", "sal", "normals", "edge", "depth"};
  return names;
}

bool is_task_name(const std::string& task) {
  for (const auto& n : task_names())
    if (n == task) return true;
  return false;
}

int task_channels(const std::string& task, const std::string& dataset) {
  if (task == "semseg") {
    if (dataset == "nyud") return 40;
    if (dataset == "pascal") return 21;
    if (dataset == "synthetic") return 8;  // background, floor, wall, sphere, box, cylinder, person, cone
    throw ConfigError("unknown data set '" + dataset + "' (pascal, nyud, synthetic)");
  }
  if (task == "human_parts") return 7;
  if (task == "normals") return 3;
  if (task == "sal" || task == "edge" || task == "depth") return 1;
  throw ConfigError("unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
}

const char* to_string(GateType g) {
  switch (g) {
    case GateType::multi: return "multi";
    case GateType::task_cond: return "task_cond";
    case GateType::shared: return "shared";
  }
  return "?";
}

GateType gate_from_string(const std::string& s) {
  if (s == "multi") return GateType::multi;
  if (s == "task_cond") return GateType::task_cond;
  if (s == "shared") return GateType::shared;
  throw ConfigError("unknown gate type '" + s + "' (multi, task_cond, shared)");
}

}  // namespace m3vit
