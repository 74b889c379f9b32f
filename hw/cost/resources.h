// FPGA resources of a design: DSP48E2 slices, 18 Kbit block RAMs, UltraRAMs and an LUT estimate per
// unit, from the model's shape, the accelerator's lanes and bit widths, and the on-chip buffers of
// memory_need (hw/cost/hw_model.h); then the totals against the board's device (AccelConfig's
// dsp_slices, bram18_blocks, uram_blocks, lut_count). docs/HW_MODEL.md "Resources" explains every
// rule; in short:
//
//   DSP48E2   one 27x18 signed multiplier each (UG579). A product of a x b bits takes the fewest
//             pieces that fit the ports: 16x16 → 1, 32x16 → 2, 32x32 → 4 (dsp_per_product). Two
//             products of at most 8x8 bits that share one operand fit one DSP (INT8 packing, Xilinx
//             WP487). exp is one multiplier, a reciprocal or 1/√ two (table seed + Newton step).
//   memory    every buffer is one or more banks, each bank row holding the words a unit reads per
//             cycle (e.g. 1,536 weights of the 48x32 linear array); a bank is built from BRAM18s
//             (simple dual port: 512x36, 1Kx18, 2Kx9, 4Kx4, 8Kx2, 16Kx1, UG573), from URAMs (4Kx72,
//             UG573) when the board has them and a bank is at least 2,048 rows deep, or from LUTs
//             (64x1 distributed RAM per LUT, UG574) when it is at most 64 rows deep.
//   LUT       a rough count of adders, comparators, muxes, LUT memories, AXI masters and control.
//
// Nothing here is synthesised: FFs, routing congestion and timing closure are not modelled.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hw/cost/accel_config.h"
#include "hw/cost/cycle_model.h"
#include "hw/cost/moe_strategies.h"

namespace m3vit::hw {

// DSP48E2s for one a_bits x b_bits signed product (no packing): the operand on the 27-bit port is
// split into a signed top piece and unsigned 26-bit pieces below it, the one on the 18-bit port into
// a signed top and unsigned 17-bit pieces; the pieces multiply pairwise and the partial products are
// added with their shifts (UG579: the cascade's 17-bit shift for wide multiplies). Both orientations
// are tried; the fewer wins.
int dsp_per_product(int a_bits, int b_bits);
// DSP48E2s for `groups` x `fanout` products where each group's `fanout` products share one operand
// (an input activation times Lout weights): pairs share a DSP when both widths are at most 8 bits
// (WP487), else dsp_per_product each.
int64_t dsps_for_products(int64_t groups, int64_t fanout, int a_bits, int b_bits);

enum class MemKind { none, lutram, bram18, uram };
const char* to_string(MemKind k);

// One on-chip buffer mapped to memory blocks: `banks` independent memories, each `depth` rows of
// `width_bits` (the words read per cycle side by side).
struct BufferMap {
  std::string name;
  double bits = 0;            // what the buffer holds (memory_need's bytes x 8)
  int64_t banks = 0;
  int64_t depth = 0;          // rows per bank
  int64_t width_bits = 0;     // bits per row
  MemKind kind = MemKind::none;
  std::string shape;          // the block configuration, "512x36", "4Kx72", "64x1"
  int64_t blocks_per_bank = 0;
  int64_t bram18 = 0, uram = 0, lut = 0;  // totals over the banks
  std::string partition() const;          // "3 banks x 6,150 rows x 1,024 bit → 29x13 BRAM18 (512x36) each"
};
// Maps `bits` into `banks` banks of rows `width_bits` wide by the rule above; `has_uram`: the board has
// UltraRAM.
BufferMap map_buffer(const std::string& name, double bits, int64_t banks, int64_t width_bits, bool has_uram);

struct ResourceRow {
  std::string unit;           // "linear array", "weight buffers (ping/pong)", ...
  int64_t dsp = 0, bram18 = 0, uram = 0, lut = 0;
  std::string partition;      // memories: banks x depth x width and the blocks; compute: the multipliers
  std::string note;           // the rule and its source
};

// One resource against the board: need, have, and by how much it is short (0 when it fits).
struct ResourceFit {
  int64_t need = 0, have = 0;
  bool fits() const { return need <= have; }
  int64_t short_by() const { return need > have ? need - have : 0; }
};

struct ResourceEstimate {
  std::string accel, board;
  MoeStrategy strategy = MoeStrategy::reordered;
  int cache_slots = 0;
  int weight_bits = 0, act_bits = 0;
  std::vector<ResourceRow> rows;   // compute units, then buffers, then AXI and control
  ResourceRow total;               // the sum of the rows
  bool board_known = false;        // the config gives the device's resources
  ResourceFit dsp, bram18, uram, lut;
  // On-chip memory in bytes (memory_need) against the board's BRAM + URAM capacity.
  double memory_bytes = 0, capacity_bytes = 0;
  bool memory_fits() const { return capacity_bytes <= 0 || memory_bytes <= capacity_bytes; }
  // Every resource and the memory in bytes fit (true when the board is not known).
  bool fits() const;
};

// cache_slots < 0: the budget of the reordered design (as evaluate()).
ResourceEstimate estimate_resources(const ModelShape& s, const AccelConfig& a, MoeStrategy strategy, int cache_slots);

// Markdown table: one row per unit, then the total, the board and what does not fit.
std::string format_resources_table(const ResourceEstimate& r);
// JSON object: rows, total, board, per-resource fit and shortfall.
std::string resources_to_json(const ResourceEstimate& r);
// One line: "zcu104 (W16/A32): does not fit: 6,884 DSP48E2 of 1,728 (5,156 short), ..., on-chip
// memory 9.31 MiB of 4.75 MiB (4.56 MiB short)", or "... fits: ...".
std::string fit_summary(const ResourceEstimate& r);

}  // namespace m3vit::hw
