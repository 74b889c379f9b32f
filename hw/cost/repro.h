// The paper numbers the hardware model reproduces (M³ViT Table 4 and §4.4; Edge-MoE as tabulated
// by UbiMoE Table II and CoQMoE Table 3), each computed from one constant set per board
// (the zcu104 and zcu102 presets, no per-target tuning). A few zcu104 constants are fit on cells of
// the PASCAL column (hw/cost/calibration.h); every row says whether it was fit on, is a prediction,
// or is derived from other rows.
//
// The paper's routing is not available (no trained weights were released, VITA-Group/M3ViT issue #2), so the
// MoE rows are driven by a seeded synthetic uniform trace: every token picks k distinct experts
// uniformly. This is the cache-hostile routing the paper describes (nearly every expert touched in
// every frame, §3.2), and the cache-based figures are consistent with it (derived: 75% misses with
// 4 expert slots at top-4 of 16). `m3vit hw --trace` runs the same model on a real model's trace.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "hw/cost/accel_config.h"

namespace m3vit::hw {

// The model configurations of the two papers' hardware results: the shipped config files (the
// same ones `--config` takes), compiled into the library, so there is one copy of each model.
ModelConfig m3vit_vits_pascal();         // configs/pascal_vits_moe16.yaml: ViT-S, 512x512, 16 experts, top-4, expert hidden 384
ModelConfig m3vit_vits_pascal_dense();   // configs/pascal_vits_dense.yaml: the dense M-ViT baseline (no MoE blocks)
ModelConfig m3vit_vits_nyud();           // configs/nyud_vits_moe16.yaml: ViT-S, 480x640, 16 experts, top-4
ModelConfig m3vit_vits_nyud_dense();     // configs/nyud_vits_dense.yaml
ModelConfig edge_moe_vitt_cityscapes();  // configs/cityscapes_vitt_moe16.yaml: ViT-T, 128x256, 16 experts, top-2, expert hidden 384

struct ReproRow {
  std::string id;          // stable key, e.g. "zcu104.memory_ratio"
  std::string what;        // one line of description
  std::string board;       // zcu104 | zcu102
  std::string unit;        // "MiB", "ms", "x", "J"
  double paper = 0;        // the published number
  double model = 0;        // ours
  std::string source;      // where the published number is
  bool estimate = false;   // the published number is itself an estimate, not a measurement
  // How the row relates to the calibration (hw/cost/calibration.h):
  //   "fitted"      a preset constant was fit on this cell (`fit` names it): agreement is by construction
  //   "prediction"  no fit used this cell: the model's error here is its real error
  //   "derived"     a ratio or product of other rows (energy = latency x power, speed-ups)
  std::string role;
  std::string fit;         // fitted rows: the field(s) fit on this cell
  double rel_error() const { return paper != 0 ? model / paper - 1 : 0; }
};

// The published number of a row (M³ViT Table 4 and §4.4, Edge-MoE via UbiMoE/CoQMoE), by id; the one
// copy of each, shared with the fits (hw/cost/calibration.cpp). ConfigError on an unknown id.
double paper_number(const std::string& id);

// All rows, from the given presets as they are (each loaded once by the caller): PASCAL column first,
// then NYUD and Edge-MoE. `trace_images` synthetic uniform images per MoE trace (seed 1).
std::vector<ReproRow> reproduce(const AccelConfig& zcu104, const AccelConfig& zcu102, int trace_images = 2);
// The same with the shipped presets.
std::vector<ReproRow> reproduce(int trace_images = 2);

// Mean and largest |relative error| over the prediction rows only.
struct PredictionError {
  int rows = 0;
  double mean_abs = 0, max_abs = 0;
  std::string worst;  // id of the row with the largest error
};
PredictionError prediction_error(const std::vector<ReproRow>& rows);

// Edge-MoE's latency with weight loads and computation serialised (the preset, as its code reads)
// and overlapped (its MoE unit's two weight buffers used as a ping/pong), each with the shares of
// the frame that Edge-MoE's latency breakdown (paper Fig. 12) reports: the two attention matmuls,
// all linear layers (attention linears, dense MLPs, experts), and waiting for weights.
struct OverlapCase {
  bool overlap = false;
  double latency_ms = 0;
  double attention_share = 0, linear_share = 0, weight_wait_share = 0, other_share = 0;
};
std::vector<OverlapCase> edge_moe_overlap_cases(const AccelConfig& zcu102, int trace_images = 2);

}  // namespace m3vit::hw
