// ModelConfig: every size and switch of an M³ViT model, torch-free.
// Field names follow the authors' YAML/CLI (backbone_kwargs, --moe_* flags; train_fastmoe.py:80-190).
// Loaded from our YAML files or the authors' own (core/config_yaml.cpp), and stored as JSON
// in the `__metadata__` of an exported safetensors file so the runtime can rebuild the model.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace m3vit {

// How a MoE layer picks experts for a task (custom_moe_layer.py:127-179, models/models.py:225-263).
enum class GateType {
  multi,      // one router per task per MoE layer (the paper's best; `--multi_gate True`)
  task_cond,  // one router over [token ; task embedding] (`--task_one_hot True`)
  shared,     // one router shared by all tasks; one backbone pass serves every head
};

// A dense-prediction task: its name is one of semseg, human_parts, sal, normals, edge, depth.
struct TaskSpec {
  std::string name;
  int out_channels = 1;  // PASCAL semseg 21, NYUD semseg 40, human_parts 7, normals 3, others 1
};

struct ModelConfig {
  std::string name = "m3vit";  // free text, printed by `m3vit info`

  // --- backbone (vision_transformer_moe.py:350-566) ---
  int img_h = 512, img_w = 512;  // fixed input size; the patch grid is img/patch
  int patch = 16;
  int in_chans = 3;
  int embed_dim = 384;       // d
  int depth = 12;
  int num_heads = 12;        // authors' ViT-S uses 12 heads of 32 (quirk Q1), not DeiT-S's 6
  double mlp_ratio = 4.0;    // dense MLP hidden = d * mlp_ratio
  bool qkv_bias = true;
  double ln_eps = 1e-6;      // every backbone and head LayerNorm

  // --- MoE (custom_moe_layer.py:66-314, noisy_gate_vmoe.py) ---
  std::vector<int> moe_blocks;  // block indices with a MoE MLP; empty = dense ViT (M-ViT baseline)
  int moe_experts = 16;         // E
  int moe_top_k = 4;            // k
  double moe_mlp_ratio = 1.0;   // expert hidden = int(d * moe_mlp_ratio)
  GateType gate = GateType::multi;
  int task_emb_dim = 64;        // task_cond only: width of the task embedding (gate_task_specific_dim)
  double noise_std = 0.0;       // vmoe_noisy_std; training-time logit noise sigma = noise_std / E
  bool authors_noisy_load = false;  // true: reproduce quirk Q6 in the smooth load estimate
  double aux_weight = 0.01;     // moe_noisy_gate_loss_weight

  // --- heads (vit_up_head.py, models/models.py:9-101) ---
  int head_channels = 256;      // PUP conv width
  std::vector<TaskSpec> tasks;  // order = task id order (authors' p.TASKS.NAMES order)
  bool tam = false;             // training-only deep supervision (models/models.py:9-101)
  bool tam_levels[3] = {true, true, false};

  // --- derived quantities ---
  int grid_h() const { return img_h / patch; }
  int grid_w() const { return img_w / patch; }
  int num_patches() const { return grid_h() * grid_w(); }
  int num_tokens() const { return 1 + num_patches(); }  // cls + patches
  int head_dim() const { return embed_dim / num_heads; }
  int mlp_hidden() const { return static_cast<int>(embed_dim * mlp_ratio); }
  int moe_hidden() const { return static_cast<int>(embed_dim * moe_mlp_ratio); }
  int num_tasks() const { return static_cast<int>(tasks.size()); }
  bool is_moe_block(int i) const;
  // Index of a task by name; throws ConfigError naming the task and the known ones.
  int task_index(const std::string& task) const;
  // Throws ConfigError on an inconsistent config (size not divisible by patch, k > E, ...).
  void validate() const;
};

// The authors' default MoE placement: odd blocks (vision_transformer_moe.py:425-437).
// Limits every config is held to (ModelConfig::validate): far above the paper's models (512 x 512
// inputs, width 384, depth 12, 16 experts), low enough that no size derived from them overflows.
inline constexpr int kMaxImageSide = 16384;
inline constexpr int kMaxWidth = 65536;     // embed_dim, heads, head channels, task outputs, embeddings
inline constexpr int kMaxDepth = 1024;
inline constexpr int kMaxExperts = 4096;
inline constexpr double kMaxRatio = 64.0;   // mlp_ratio, moe_mlp_ratio

std::vector<int> odd_blocks(int depth);

// The dense M-ViT baseline of a config: the same network with every MoE layer replaced by the dense
// MLP (no MoE blocks), named "<name>_dense".
ModelConfig dense_baseline(ModelConfig cfg);

// The six task names in the authors' task-dictionary order, which is the task id order
// (utils/config.py:16-93), and whether a name is one of them.
const std::vector<std::string>& task_names();
bool is_task_name(const std::string& task);

// Standard output channels of a task on a data set ("pascal", "nyud", "synthetic").
int task_channels(const std::string& task, const std::string& dataset);

const char* to_string(GateType g);
GateType gate_from_string(const std::string& s);  // "multi", "task_cond", "shared"

}  // namespace m3vit

namespace m3vit {
// JSON form of a config, stored under `__metadata__["m3vit_config"]` of an exported safetensors file.
std::string config_to_json(const ModelConfig& cfg);
ModelConfig config_from_json(const std::string& json);  // throws ConfigError naming the bad key
}  // namespace m3vit

namespace m3vit {
// Command-line overrides of a config file, for the switches the authors pass on their command line
// (train_fastmoe.py:92-117; README canonical run: --moe_experts 16 --moe_top_k 4 --moe_mlp_ratio 1
// --multi_gate True --vmoe_noisy_std 0). Unset fields leave the file's value.
struct ConfigOverrides {
  std::optional<int> moe_experts;         // --moe-experts   (authors: --moe_experts)
  std::optional<int> moe_top_k;           // --moe-top-k     (authors: --moe_top_k)
  std::optional<double> moe_mlp_ratio;    // --moe-mlp-ratio (authors: --moe_mlp_ratio)
  std::optional<std::string> gate_type;   // --gate-type multi|task_cond|shared (must agree with the two below)
  std::optional<bool> multi_gate;         // --multi-gate    (authors: --multi_gate) true -> multi
  std::optional<bool> task_one_hot;       // --task-one-hot  (authors: --task_one_hot) true -> task_cond if
                                          //   task_emb_dim >= 0, else a shared router (AUTHORS_CODE.md Q26)
  std::optional<int> task_emb_dim;        // --task-emb-dim  (authors: --gate_task_specific_dim)
  std::optional<double> noise_std;        // --noise-std     (authors: --vmoe_noisy_std)
  bool empty() const;
};

// Reads a config file, ours or the authors' YAML (core/config_yaml.cpp), applies the overrides and
// validates. Throws ConfigError / IoError naming the file and the key.
ModelConfig load_config(const std::string& path, const ConfigOverrides& overrides = {});
// Applies overrides to a loaded config (does not validate).
void apply_overrides(ModelConfig& cfg, const ConfigOverrides& overrides);
}  // namespace m3vit
