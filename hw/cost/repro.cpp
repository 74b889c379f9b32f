// Reproduction rows of the hardware model (hw/cost/repro.h).
#include "hw/cost/repro.h"

#include "common/errors.h"
#include "core/config_yaml.h"
#include "core/shipped_configs.h"
#include "hw/cost/hw_model.h"

namespace m3vit::hw {

namespace {

// A paper model from its shipped config file, read by the same parser as `--config` (the file
// compiled into the library, so this works from any directory).
ModelConfig shipped_model(const std::string& path) {
  const std::string* text = shipped_file(path);
  if (!text) throw ConfigError("paper model: " + path + " is not among the shipped config files");
  return load_config_text(*text, path).model;
}

}  // namespace

ModelConfig m3vit_vits_pascal() { return shipped_model("configs/pascal_vits_moe16.yaml"); }
ModelConfig m3vit_vits_pascal_dense() { return shipped_model("configs/pascal_vits_dense.yaml"); }
ModelConfig m3vit_vits_nyud() { return shipped_model("configs/nyud_vits_moe16.yaml"); }
ModelConfig m3vit_vits_nyud_dense() { return shipped_model("configs/nyud_vits_dense.yaml"); }
ModelConfig edge_moe_vitt_cityscapes() { return shipped_model("configs/cityscapes_vitt_moe16.yaml"); }

std::vector<ReproRow> reproduce(int trace_images) {
  const AccelConfig z4 = accel_preset("zcu104"), z2 = accel_preset("zcu102");
  const double MiB = 1024.0 * 1024.0;
  SyntheticTraceSpec uniform;
  uniform.images = trace_images;
  uniform.seed = 1;

  const ModelConfig pascal = m3vit_vits_pascal(), nyud = m3vit_vits_nyud();
  const ExpertTrace tp = synthetic_trace(pascal, uniform), tn = synthetic_trace(nyud, uniform);
  HwResult p_all = evaluate(pascal, z4, MoeStrategy::all_on_chip, &tp);
  HwResult p_cache = evaluate(pascal, z4, MoeStrategy::cache, &tp);
  HwResult p_reo = evaluate(pascal, z4, MoeStrategy::reordered, &tp);
  HwResult p_dense = evaluate(m3vit_vits_pascal_dense(), z4, MoeStrategy::reordered, nullptr);
  HwResult n_cache = evaluate(nyud, z4, MoeStrategy::cache, &tn);
  HwResult n_reo = evaluate(nyud, z4, MoeStrategy::reordered, &tn);
  HwResult n_dense = evaluate(m3vit_vits_nyud_dense(), z4, MoeStrategy::reordered, nullptr);

  const ModelConfig edge = edge_moe_vitt_cityscapes();
  const ExpertTrace te = synthetic_trace(edge, uniform);
  HwResult e_reo = evaluate(edge, z2, MoeStrategy::reordered, &te);

  const std::string t4 = "M3ViT Table 4";
  std::vector<ReproRow> rows = {
      {"zcu104.memory_all_on_chip", "PASCAL MoE ViT-S, all experts on chip: on-chip memory", "zcu104", "MiB", 11.610,
       p_all.memory.total() / MiB, "M3ViT §4.4 text", true, true},
      {"zcu104.memory_reordered", "PASCAL MoE ViT-S, computation reordering: on-chip memory", "zcu104", "MiB", 4.840,
       p_reo.memory.total() / MiB, t4, true, true},
      {"zcu104.memory_ratio", "memory saved by reordering (all-on-chip / reordered)", "zcu104", "x", 11.610 / 4.840,
       p_all.memory.total() / p_reo.memory.total(), "M3ViT §4.4 (2.40x)", true, true},
      {"zcu104.latency_cache", "PASCAL MoE ViT-S, expert cache at the same memory: latency", "zcu104", "ms", 637.478,
       p_cache.latency_ms, t4, true, true},
      {"zcu104.latency_reordered", "PASCAL MoE ViT-S, computation reordering: latency", "zcu104", "ms", 69.033,
       p_reo.latency_ms, t4, true, true},
      {"zcu104.speedup_cache_to_reordered", "energy efficiency of reordering vs the cache (= latency ratio at 10 W)",
       "zcu104", "x", 637.478 / 69.033, p_cache.latency_ms / p_reo.latency_ms, "M3ViT abstract, Table 4 (9.23x)", true,
       true},
      {"zcu104.latency_dense", "PASCAL dense ViT-S (M-ViT): latency", "zcu104", "ms", 68.931, p_dense.latency_ms, t4,
       true, true},
      {"zcu104.moe_over_dense", "reordered MoE over dense ViT-S latency (paper: within 1%)", "zcu104", "x",
       69.033 / 68.931, p_reo.latency_ms / p_dense.latency_ms, t4, true, true},
      {"zcu102.latency_edge_moe", "Edge-MoE ViT-T 128x256, top-2 of 16, reordered: latency per image", "zcu102", "ms",
       34.64, e_reo.latency_ms, "UbiMoE Table II / CoQMoE Table 3 (on board)", false, true},
      // Cross-checks: same constants, numbers the issue does not pin.
      {"zcu104.memory_dense", "PASCAL dense ViT-S: on-chip memory", "zcu104", "MiB", 4.828, p_dense.memory.total() / MiB,
       t4, true, false},
      {"zcu104.energy_reordered", "PASCAL MoE ViT-S, reordered: energy", "zcu104", "J", 0.690, p_reo.energy_j, t4, true,
       false},
      {"zcu104.energy_cache", "PASCAL MoE ViT-S, cache: energy", "zcu104", "J", 6.375, p_cache.energy_j, t4, true,
       false},
      {"zcu104.nyud_latency_dense", "NYUD 480x640 dense ViT-S: latency", "zcu104", "ms", 84.418, n_dense.latency_ms, t4,
       true, false},
      {"zcu104.nyud_latency_reordered", "NYUD 480x640 MoE ViT-S, reordered: latency", "zcu104", "ms", 84.538,
       n_reo.latency_ms, t4, true, false},
      {"zcu104.nyud_latency_cache", "NYUD 480x640 MoE ViT-S, cache: latency", "zcu104", "ms", 750.557,
       n_cache.latency_ms, t4, true, false},
      {"zcu104.nyud_speedup", "NYUD reordering vs cache (8.88x)", "zcu104", "x", 750.557 / 84.538,
       n_cache.latency_ms / n_reo.latency_ms, t4, true, false},
      {"zcu104.gpu_energy_ratio", "energy vs the RTX 8000 GPU (7.446 J at 295 W, Table 4)", "zcu104", "x",
       7.446 / 0.690, 7.446 / p_reo.energy_j, "M3ViT abstract (10.79x)", true, false},
      {"zcu102.energy_edge_moe", "Edge-MoE energy per image (34.64 ms x 14.54 W)", "zcu102", "J", 34.64e-3 * 14.54,
       e_reo.energy_j, "UbiMoE Table II (derived)", false, false},
  };
  return rows;
}

}  // namespace m3vit::hw
