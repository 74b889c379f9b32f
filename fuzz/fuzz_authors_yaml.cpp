// The authors' experiment YAML with their command-line switches (core/config_yaml.h,
// core/config.h ConfigOverrides: --moe_experts, --moe_top_k, --moe_mlp_ratio, --multi_gate,
// --task_one_hot, --gate_task_specific_dim, --vmoe_noisy_std). The first bytes choose which switches
// are given and their values (including out-of-range ones); the rest is the YAML.
#include "core/config.h"
#include "core/config_yaml.h"
#include "data/data_config.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::Choices c(data, size);
  m3vit::ConfigOverrides o;
  const uint8_t given = c.byte();
  if (given & 1) o.moe_experts = c.in_range(-2, 300);
  if (given & 2) o.moe_top_k = c.in_range(-2, 20);
  if (given & 4) o.moe_mlp_ratio = c.in_range(-4, 16) / 4.0;
  if (given & 8) o.multi_gate = c.byte() & 1;
  if (given & 16) o.task_one_hot = c.byte() & 1;
  if (given & 32) o.task_emb_dim = c.in_range(-2, 600);
  if (given & 64) o.noise_std = c.in_range(-2, 10) / 2.0;
  if (given & 128) {
    static const char* kinds[] = {"multi", "task_cond", "shared", "bogus"};
    o.gate_type = kinds[c.byte() % 4];
  }
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::ConfigFile f = m3vit::load_config_text(c.rest_string(), "experiment.yml", o);
    (void)m3vit::read_data_section(f);
  });
}
