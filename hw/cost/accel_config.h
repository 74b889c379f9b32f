// AccelConfig: every parameter of the layer-sequential FPGA accelerator that hw/cost/cycle_model.h
// counts cycles for, its YAML form, and the presets, which are the files configs/hw/<name>.yaml
// (the only place their values and sources are written; compiled into the library):
//
//   zcu104  the M³ViT paper's board and design point (arXiv 2210.14793 §4.1, Table 4): 300 MHz,
//           assumed 10 W, weights streamed from DDR4-2400, activations kept on chip. The paper
//           gives no breakdown (its supplement with bit widths and resources was not found), and
//           Edge-MoE's authors call its FPGA numbers "an optimistic estimation" (Edge-MoE paper §II).
//   zcu102  Edge-MoE's board and design (ICCAD 2023, sharc-lab/Edge-MoE at 984b23b): 300 MHz,
//           W16/A32, 16x16 linear unit, 4-query staggered attention, every intermediate in DRAM
//           behind 128-bit PS ports; 14.54 W as tabulated by UbiMoE (Table II) and CoQMoE (Table 3).
//
// Each field of a preset carries its source in `sources`, read from the field's `source:` in its
// file (printed in docs/HARDWARE.md); a test checks that no field is left without one.
// Everything a preset does not say is an assumption and its source line says so.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace m3vit::hw {

struct AccelConfig {
  std::string name = "custom";  // preset name or file
  std::string board;            // free text, e.g. "Xilinx ZCU104 (xczu7ev)"
  double clock_mhz = 300;       // fabric clock

  // --- linear unit: Q/K/V/proj, dense MLP, experts, router logits, patch embedding ---
  int linear_in_lanes = 16;   // input features consumed per cycle
  int linear_out_lanes = 16;  // output features produced per cycle (MACs/cycle = in x out lanes)

  // --- attention unit (Q·Kᵀ with single-pass softmax, then A·V) ---
  int attn_queries = 4;         // p: queries processed together, staggered by one key (Edge-MoE Fig. 5)
  int attn_lanes = 8;           // feature elements per query per cycle (MACs/cycle = p x lanes)
  int attn_heads_parallel = 3;  // heads handled in one pass over the keys (the rest in further passes)
  int softmax_pairs = 1;        // (query, key) pairs per cycle of the single-pass softmax stage

  // --- element-wise units ---
  int vector_lanes = 8;         // values per cycle of LayerNorm, residual add, GELU (if not fused)
  bool ln_pipelined = true;     // LayerNorm tokens overlap (else each token runs statistics, then output)
  int ln_token_overhead = 0;    // extra cycles per token when not pipelined (latency of sqrt, 1/x, DRAM)
  bool gelu_fused = true;       // GELU applied on the linear unit's output (no extra pass)

  // --- router (gating) ---
  int gate_lanes = 8;           // token features per cycle; each lane feeds E MACs
  int gate_softmax_ii = 1;      // cycles per expert in the router's single-pass softmax
  int gate_token_overhead = 0;  // cycles per token not overlapped (exp / divide latency)
  bool gate_pipelined = false;  // router stages overlap across tokens

  // --- memory system ---
  double dram_gbps = 19.2;      // peak DRAM bandwidth, GB/s
  double dram_efficiency = 1.0; // fraction of the peak that streaming sustains
  int port_bytes = 16;          // bytes per cycle one AXI port moves (one stream's limit)
  int dram_latency = 64;        // cycles from a burst request to its first beat (paid per unit call)
  bool activations_in_dram = false;  // intermediates streamed through DRAM (Edge-MoE) or kept on chip
  int act_buffers = 3;          // on-chip [tokens x d] activation buffers (when kept on chip)
  int act_head_buffers = 3;     // on-chip [tokens x head_dim] buffers (one head's Q, K, V)
  bool patch_weights_on_chip = false;  // patch-embedding weights cached once, not streamed per frame
  bool overlap_loads = true;    // weight loads overlap compute through the ping/pong buffers

  // --- number formats (bits) ---
  int weight_bits = 16;  // linear weights
  int bias_bits = 16;    // biases, LayerNorm parameters
  int act_bits = 16;     // activations and accumulators as stored
  int index_bits = 16;   // token indices in the expert queues

  // --- on-chip memory capacity ---
  double bram_mbit = 0;  // block RAM
  double uram_mbit = 0;  // UltraRAM

  // --- FPGA resources of the board's device (hw/cost/resources.h checks a design against them;
  //     0 everywhere: no device given, nothing is checked) ---
  int dsp_slices = 0;     // DSP48E2 slices (27x18 multiplier each, UG579)
  int bram18_blocks = 0;  // 18 Kbit block RAMs; a 36 Kbit block counts as two (UG573)
  int uram_blocks = 0;    // 288 Kbit UltraRAMs, 4K x 72 (UG573)
  int lut_count = 0;      // CLB LUTs (6-input)
  // Attention, router and LayerNorm multiply on the linear unit's DSPs (units run one at a time),
  // instead of each having multipliers of its own (Edge-MoE's separate HLS functions).
  bool shared_mac_array = false;

  // --- power ---
  double power_w = 10;   // board power while computing, without DRAM traffic (the paper's 10 W)
  double dram_pj_per_byte = 160;  // DRAM access energy per byte moved (hw_model.h: energy)

  // field name -> source of its value (paper, code, data sheet, or "assumed: ...")
  std::map<std::string, std::string> sources;

  // Derived quantities.
  int linear_macs() const { return linear_in_lanes * linear_out_lanes; }
  int attn_macs() const { return attn_queries * attn_lanes; }
  double dram_bytes_per_cycle() const { return dram_gbps * 1e3 / clock_mhz * dram_efficiency; }
  // One stream's rate: the AXI port or the DRAM, whichever is slower.
  double stream_bytes_per_cycle() const;
  // Xilinx counts block RAM in binary megabits (XCZU7EV: 312 x 36 Kbit = 11.0 Mbit).
  double capacity_bytes() const { return (bram_mbit + uram_mbit) * 1048576.0 / 8; }
  double ms(double cycles) const { return cycles / (clock_mhz * 1e3); }

  // Throws ConfigError naming the field on a non-positive rate or size.
  void validate() const;
};

// The field names, in the order the YAML file and the report list them.
const std::vector<std::string>& accel_field_names();

// The preset names: one per shipped file configs/hw/<name>.yaml, sorted ({"zcu102", "zcu104"}).
std::vector<std::string> preset_names();
bool is_accel_preset(const std::string& name);
// A preset by name, from its shipped file; ConfigError listing the presets if there is none.
AccelConfig accel_preset(const std::string& name);

// A preset name or a YAML file (see configs/hw/*.yaml). A file may start from a preset with
// `base: zcu104` and override single fields; unknown keys are errors naming the file and the key.
AccelConfig load_accel_config(const std::string& name_or_path);
// `origin` names the text in messages and in the sources of fields it sets. Each field is either a
// mapping of its value and that value's source,
//   clock_mhz:
//     value: 300
//     source: "M3ViT paper §4.1: 300 MHz"
// or a plain value (`clock_mhz: 200`), whose source is "set in <origin>" (as is a mapping's without
// `source`); with `base:` a field the file does not set keeps the preset's value and source. Errors
// name the origin, the key ("clock_mhz.value") and the line.
AccelConfig accel_config_from_yaml_text(const std::string& text, const std::string& origin);
// YAML with every field as {value, source} (a field without a source as a plain value), long sources
// wrapped at ~100 columns; configs/hw/<name>.yaml is exactly this text for its preset, and reading
// it back gives the same fields and sources.
std::string accel_config_to_yaml(const AccelConfig& c);
// JSON object of every field (for `m3vit hw --json`).
std::string accel_config_to_json(const AccelConfig& c);
// The value of a field as text ("300", "true").
std::string accel_field_value(const AccelConfig& c, const std::string& field);

}  // namespace m3vit::hw
