// Calibration of the zcu104 preset: which of its constants were fit on which cell of the M³ViT
// paper's Table 4, and the fits themselves, recomputed from the paper's PASCAL-Context column only.
//
// The zcu104 preset describes an estimate the paper does not break down (docs/HW_MODEL.md, "The two
// presets"), so a few of its constants cannot come from a data sheet or a design document. Each of
// those is fit here on exactly one group of Table 4 cells of the PASCAL column, with every other
// constant held at its preset value; every Table 4 cell not used by a fit (the NYUD column, the
// reordered latency, the dense memory) and Edge-MoE's on-board latency are then predictions
// (hw/cost/repro.h marks each row). A constant whose preset source starts with "calibrated:" must be
// one of these fits, and a fit must land on the preset's value (tests/hw/test_calibration.cpp), so
// the presets and this file cannot drift apart.
//
//   fit                                   on the cell(s)                        how
//   linear / attention MAC rate           dense ViT-S latency (68.931 ms)       MACs / (latency x clock), then
//   (linear_in_lanes x linear_out_lanes,                                        the array shape nearest to it
//    attn_queries x attn_lanes)
//   dram_efficiency                       cache latency (637.478 ms)            the stall time is linear in
//                                                                               1/efficiency: two model runs
//                                                                               solve it; capped at the peak (1)
//   weight_bits, act_buffers,             all-on-chip memory (11.61 MiB) and    grid search over widths and
//   act_head_buffers                      reordered memory (4.84 MiB)           buffer counts, least squares of
//                                                                               the two relative errors
#pragma once

#include <string>
#include <vector>

#include "hw/cost/accel_config.h"

namespace m3vit::hw {

struct Calibration {
  std::string fields;   // the AccelConfig field(s) this fit sets, e.g. "dram_efficiency"
  std::string cells;    // the repro row id(s) (hw/cost/repro.h) it is fit on, comma-separated
  std::string method;   // one line: how
  double fitted = 0;    // the value the fit gives (before rounding to a realisable design)
  double chosen = 0;    // the value a design can take (array shape, a cap, a whole number)
  double preset = 0;    // the value in the preset (the test requires chosen == preset)
  std::string note;     // the fitted quantity spelled out ("1535.4 MAC/cycle")
};

// The fits for the zcu104 preset from the PASCAL column of Table 4 (ViT-S 512x512, configs
// pascal_vits_moe16.yaml and pascal_vits_dense.yaml), holding every other field of `design` fixed.
// `trace_images` synthetic uniform images (seed 1) drive the cache (as in hw/cost/repro.h).
std::vector<Calibration> calibrate_zcu104(const AccelConfig& design, int trace_images = 2);

// Every repro row id that some fit of calibrate_zcu104 uses.
std::vector<std::string> calibration_cells();

// How a preset field's value was obtained, read off its source line: "calibrated" (fit on a Table 4
// cell, listed by calibrate_zcu104), "assumed" (a design choice no document gives and no number was
// fit to), "measured" (chosen from a measurement of this model, e.g. act_bits from the fixed-point
// encoder and the resource estimate), "unused" (no effect in that design) or "fact" (a paper, data
// sheet, code or bitstream says so).
std::string field_kind(const AccelConfig& a, const std::string& field);

}  // namespace m3vit::hw
