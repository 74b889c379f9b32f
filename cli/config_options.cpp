// Shared config options of the model subcommands (cli/config_options.h).
#include "cli/config_options.h"

#include <CLI/CLI.hpp>

#include "common/errors.h"

namespace m3vit::cli {

namespace {

bool parse_bool(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0") return false;
  throw ConfigError(flag + " takes true or false, got '" + v + "'");
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s.empty() ? "none" : s;
}

}  // namespace

void add_config_options(CLI::App* sub, ConfigArgs& a) {
  sub->add_option("--config,-c", a.path, "model config: ours (configs/*.yaml) or the authors' experiment .yml")
      ->required();
  auto* g = "Config overrides (the authors' command-line switches)";
  a.o_experts = sub->add_option("--moe-experts", a.moe_experts, "number of experts E (--moe_experts)")
                    ->check(CLI::PositiveNumber)->group(g);
  a.o_top_k = sub->add_option("--moe-top-k", a.moe_top_k, "experts per token k (--moe_top_k)")
                  ->check(CLI::PositiveNumber)->group(g);
  a.o_ratio = sub->add_option("--moe-mlp-ratio", a.moe_mlp_ratio, "expert hidden = embed_dim * ratio (--moe_mlp_ratio)")
                  ->check(CLI::PositiveNumber)->group(g);
  a.o_gate = sub->add_option("--gate-type", a.gate_type, "router: multi (one per task), task_cond, shared")
                 ->check(CLI::IsMember({"multi", "task_cond", "shared"}))->group(g);
  a.o_multi = sub->add_option("--multi-gate", a.multi_gate, "true: one router per task (--multi_gate)")
                  ->check(CLI::IsMember({"true", "false", "True", "False", "1", "0"}))->group(g);
  a.o_one_hot = sub->add_option("--task-one-hot", a.task_one_hot,
                                "true: task-conditioned router if --task-emb-dim >= 0 (--task_one_hot)")
                    ->check(CLI::IsMember({"true", "false", "True", "False", "1", "0"}))->group(g);
  a.o_emb = sub->add_option("--task-emb-dim", a.task_emb_dim, "task embedding width, < 0 none (--gate_task_specific_dim)")
                ->group(g);
  a.o_noise = sub->add_option("--noise-std", a.noise_std, "router noise std; sigma = std / E (--vmoe_noisy_std)")
                  ->check(CLI::NonNegativeNumber)->group(g);
}

ConfigOverrides config_overrides(const ConfigArgs& a) {
  ConfigOverrides o;
  if (a.o_experts && a.o_experts->count()) o.moe_experts = a.moe_experts;
  if (a.o_top_k && a.o_top_k->count()) o.moe_top_k = a.moe_top_k;
  if (a.o_ratio && a.o_ratio->count()) o.moe_mlp_ratio = a.moe_mlp_ratio;
  if (a.o_gate && a.o_gate->count()) o.gate_type = a.gate_type;
  if (a.o_multi && a.o_multi->count()) o.multi_gate = parse_bool("--multi-gate", a.multi_gate);
  if (a.o_one_hot && a.o_one_hot->count()) o.task_one_hot = parse_bool("--task-one-hot", a.task_one_hot);
  if (a.o_emb && a.o_emb->count()) o.task_emb_dim = a.task_emb_dim;
  if (a.o_noise && a.o_noise->count()) o.noise_std = a.noise_std;
  return o;
}

TrainConfig load_config_args(const ConfigArgs& a) { return load_train_config(a.path, config_overrides(a)); }

std::string describe_config(const TrainConfig& f) {
  const ModelConfig& m = f.model;
  std::string s;
  s += "config   " + f.path + (f.authors_format ? "  (the authors' format)" : "") + "\n";
  s += "model    " + m.name + ": ViT d=" + std::to_string(m.embed_dim) + ", depth " + std::to_string(m.depth) + ", " +
       std::to_string(m.num_heads) + " heads of " + std::to_string(m.head_dim()) + ", MLP " +
       std::to_string(m.mlp_hidden()) + (m.qkv_bias ? ", qkv bias" : "") + "\n";
  s += "input    " + std::to_string(m.in_chans) + "x" + std::to_string(m.img_h) + "x" + std::to_string(m.img_w) +
       ", patch " + std::to_string(m.patch) + " -> " + std::to_string(m.grid_h()) + "x" + std::to_string(m.grid_w()) +
       " grid, " + std::to_string(m.num_tokens()) + " tokens\n";
  if (m.moe_blocks.empty()) {
    s += "MoE      none (dense M-ViT)\n";
  } else {
    char buf[256];
    std::snprintf(buf, sizeof buf, "MoE      blocks %s: %d experts, top-%d, expert hidden %d, %s router%s, noise std %g\n",
                  join_ints(m.moe_blocks).c_str(), m.moe_experts, m.moe_top_k, m.moe_hidden(), to_string(m.gate),
                  m.gate == GateType::task_cond ? (" (task embedding " + std::to_string(m.task_emb_dim) + ")").c_str() : "",
                  m.noise_std);
    s += buf;
  }
  s += "tasks   ";
  for (const auto& t : m.tasks) s += " " + t.name + "(" + std::to_string(t.out_channels) + ")";
  s += "\n";
  std::string lv;
  for (int l = 0; l < 3; ++l)
    if (m.tam_levels[l]) lv += (lv.empty() ? "" : ",") + std::to_string(l);
  s += "heads    PUP, " + std::to_string(m.head_channels) + " channels; TAM " +
       (m.tam ? "levels " + (lv.empty() ? std::string("none") : lv) + " (training only)" : std::string("off")) + "\n";
  s += "data     " + f.data.dataset + (f.data.root.empty() ? "" : " at " + f.data.root) + "\n";
  return s;
}

}  // namespace m3vit::cli
