// Presets and YAML form of AccelConfig (hw/accel_config.h). The two presets are written out with
// one source per field; configs/hw/zcu104.yaml and zcu102.yaml are the same presets as files
// (tests/hw/test_accel_config.cpp checks that they agree).
#include "hw/accel_config.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit::hw {

namespace {

// One row per field: how to read it from YAML, write it as text, and its kind.
struct Field {
  const char* name;
  std::function<void(AccelConfig&, const YAML::Node&)> set;
  std::function<std::string(const AccelConfig&)> get;
  bool is_string;
};

std::string fmt_double(double v) {
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

template <class T>
Field num_field(const char* name, T AccelConfig::*m) {
  return Field{name,
               [m](AccelConfig& c, const YAML::Node& n) { c.*m = n.as<T>(); },
               [m](const AccelConfig& c) {
                 if constexpr (std::is_same_v<T, bool>) return std::string(c.*m ? "true" : "false");
                 else if constexpr (std::is_same_v<T, double>) return fmt_double(c.*m);
                 else return std::to_string(c.*m);
               },
               false};
}

Field str_field(const char* name, std::string AccelConfig::*m) {
  return Field{name, [m](AccelConfig& c, const YAML::Node& n) { c.*m = n.as<std::string>(); },
               [m](const AccelConfig& c) { return c.*m; }, true};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      str_field("board", &AccelConfig::board),
      num_field("clock_mhz", &AccelConfig::clock_mhz),
      num_field("linear_in_lanes", &AccelConfig::linear_in_lanes),
      num_field("linear_out_lanes", &AccelConfig::linear_out_lanes),
      num_field("attn_queries", &AccelConfig::attn_queries),
      num_field("attn_lanes", &AccelConfig::attn_lanes),
      num_field("attn_heads_parallel", &AccelConfig::attn_heads_parallel),
      num_field("softmax_pairs", &AccelConfig::softmax_pairs),
      num_field("vector_lanes", &AccelConfig::vector_lanes),
      num_field("ln_pipelined", &AccelConfig::ln_pipelined),
      num_field("ln_token_overhead", &AccelConfig::ln_token_overhead),
      num_field("gelu_fused", &AccelConfig::gelu_fused),
      num_field("gate_lanes", &AccelConfig::gate_lanes),
      num_field("gate_softmax_ii", &AccelConfig::gate_softmax_ii),
      num_field("gate_token_overhead", &AccelConfig::gate_token_overhead),
      num_field("gate_pipelined", &AccelConfig::gate_pipelined),
      num_field("dram_gbps", &AccelConfig::dram_gbps),
      num_field("dram_efficiency", &AccelConfig::dram_efficiency),
      num_field("port_bytes", &AccelConfig::port_bytes),
      num_field("dram_latency", &AccelConfig::dram_latency),
      num_field("activations_in_dram", &AccelConfig::activations_in_dram),
      num_field("act_buffers", &AccelConfig::act_buffers),
      num_field("act_head_buffers", &AccelConfig::act_head_buffers),
      num_field("patch_weights_on_chip", &AccelConfig::patch_weights_on_chip),
      num_field("overlap_loads", &AccelConfig::overlap_loads),
      num_field("weight_bits", &AccelConfig::weight_bits),
      num_field("bias_bits", &AccelConfig::bias_bits),
      num_field("act_bits", &AccelConfig::act_bits),
      num_field("index_bits", &AccelConfig::index_bits),
      num_field("bram_mbit", &AccelConfig::bram_mbit),
      num_field("uram_mbit", &AccelConfig::uram_mbit),
      num_field("power_w", &AccelConfig::power_w),
  };
  return f;
}

const Field& field(const std::string& name) {
  for (const auto& f : fields())
    if (name == f.name) return f;
  throw ConfigError("unknown accelerator field '" + name + "'");
}

}  // namespace

double AccelConfig::stream_bytes_per_cycle() const {
  return std::min(static_cast<double>(port_bytes), dram_bytes_per_cycle());
}

void AccelConfig::validate() const {
  auto need = [&](bool ok, const char* what) {
    if (!ok) throw ConfigError("accelerator '" + name + "': " + what);
  };
  need(clock_mhz > 0, "clock_mhz must be > 0");
  need(linear_in_lanes > 0 && linear_out_lanes > 0, "linear_in_lanes and linear_out_lanes must be > 0");
  need(attn_queries > 0 && attn_lanes > 0, "attn_queries and attn_lanes must be > 0");
  need(attn_heads_parallel > 0, "attn_heads_parallel must be > 0");
  need(softmax_pairs > 0, "softmax_pairs must be > 0");
  need(vector_lanes > 0, "vector_lanes must be > 0");
  need(ln_token_overhead >= 0, "ln_token_overhead must be >= 0");
  need(gate_lanes > 0 && gate_softmax_ii > 0, "gate_lanes and gate_softmax_ii must be > 0");
  need(gate_token_overhead >= 0, "gate_token_overhead must be >= 0");
  need(dram_gbps > 0 && std::isfinite(dram_gbps), "dram_gbps must be > 0");
  need(dram_efficiency > 0 && dram_efficiency <= 1, "dram_efficiency must be in (0, 1]");
  need(port_bytes > 0, "port_bytes must be > 0");
  need(dram_latency >= 0, "dram_latency must be >= 0");
  need(act_buffers >= 0 && act_head_buffers >= 0, "act_buffers and act_head_buffers must be >= 0");
  need(weight_bits > 0 && bias_bits > 0 && act_bits > 0 && index_bits > 0, "bit widths must be > 0");
  need(bram_mbit >= 0 && uram_mbit >= 0, "bram_mbit and uram_mbit must be >= 0");
  need(power_w > 0, "power_w must be > 0");
}

const std::vector<std::string>& accel_field_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& f : fields()) v.push_back(f.name);
    return v;
  }();
  return names;
}

std::string accel_field_value(const AccelConfig& c, const std::string& name) { return field(name).get(c); }

AccelConfig preset_zcu104() {
  AccelConfig c;
  c.name = "zcu104";
  auto& s = c.sources;
  c.board = "Xilinx ZCU104 (XCZU7EV)";
  s["board"] = "M3ViT paper §4.1 and appendix A.3 (anchors.md §1.6)";
  c.clock_mhz = 300;
  s["clock_mhz"] = "M3ViT paper §4.1: 300 MHz";
  c.linear_in_lanes = 48;
  c.linear_out_lanes = 32;
  s["linear_in_lanes"] = s["linear_out_lanes"] =
      "calibrated: the paper's dense ViT-S row (68.931 ms for 31.75 GMAC at 300 MHz, Table 4) implies 1,535 "
      "MAC/cycle; 48 x 32 = 1,536 of the 1,728 DSP slices, one 16x16-bit MAC each, a shape that divides 192, "
      "384, 768 and 1,536";
  c.attn_queries = 48;
  s["attn_queries"] =
      "assumed: 48 queries staggered by one key (Edge-MoE's scheme, Fig. 5) so that 48 x 32 = 1,536 MAC/cycle, "
      "the rate the dense row implies for the whole model (same calibration); units run one at a time, so this "
      "is consistent with one shared 1,536-MAC array";
  c.attn_lanes = 32;
  s["attn_lanes"] = "assumed: one head's 32 features per query per cycle (ViT-S head dim 32)";
  c.attn_heads_parallel = 1;
  s["attn_heads_parallel"] = "assumed: one head at a time (the paper's per-head attention units, Fig. 3)";
  c.softmax_pairs = 48;
  s["softmax_pairs"] = "assumed: one softmax lane per query, so the stage keeps pace with a one-cycle key step";
  c.vector_lanes = 64;
  s["vector_lanes"] = "assumed: 64 values per cycle (one 1,024-bit row of 16-bit values)";
  c.ln_pipelined = true;
  s["ln_pipelined"] = "assumed: one-pass LayerNorm with tokens pipelined back to back";
  c.ln_token_overhead = 0;
  s["ln_token_overhead"] = "unused when pipelined";
  c.gelu_fused = true;
  s["gelu_fused"] = "assumed as in Edge-MoE (linear.cpp: gelu() on the linear unit's output)";
  c.gate_lanes = 32;
  s["gate_lanes"] = "assumed: router logits on 32 lanes, each feeding E MACs";
  c.gate_softmax_ii = 1;
  s["gate_softmax_ii"] = "assumed: one expert per cycle in the router's single-pass softmax";
  c.gate_token_overhead = 0;
  s["gate_token_overhead"] = "assumed: router stages pipelined across tokens";
  c.gate_pipelined = true;
  s["gate_pipelined"] = "assumed: router stages pipelined across tokens";
  c.dram_gbps = 19.2;
  s["dram_gbps"] =
      "ZCU104 PS DDR4-2400 with a 64-bit bus: 2,400 MT/s x 8 B (ZCU104 user guide UG1267); the paper's "
      "cache-based rows imply this rate (anchors.md §1.6, derived)";
  c.dram_efficiency = 1.0;
  s["dram_efficiency"] =
      "the paper's estimate runs DRAM at its peak (derived: 637.478 - 69.033 ms = 18,450 expert misses x "
      "591,360 B / 19.2 GB/s)";
  c.port_bytes = 64;
  s["port_bytes"] = "assumed: a 512-bit AXI port, so the DRAM, not the port, limits one stream";
  c.dram_latency = 64;
  s["dram_latency"] = "assumed as Edge-MoE's HLS setting (vitis_hls.tcl: -m_axi_latency 64)";
  c.activations_in_dram = false;
  s["activations_in_dram"] =
      "assumed: the paper's on-chip memory for dense ViT-S (4.828 MiB, Table 4) is about twice its weight "
      "buffers, so activations are held on chip";
  c.act_buffers = 3;
  s["act_buffers"] = "assumed: residual stream, LayerNorm output and attention output, each [tokens x d]";
  c.act_head_buffers = 3;
  s["act_head_buffers"] = "assumed: Q, K and V of one head at a time, each [tokens x head_dim]";
  c.patch_weights_on_chip = false;
  s["patch_weights_on_chip"] = "assumed: patch-embedding weights stream through the ping/pong buffers";
  c.overlap_loads = true;
  s["overlap_loads"] = "M3ViT paper §3.2: ping-pong weight buffers hide the next expert's load behind computation";
  c.weight_bits = 16;
  s["weight_bits"] =
      "assumed W16 as Edge-MoE (the paper's bit widths are in its supplement, not found); with 16-bit weights "
      "both the all-experts memory (11.61 MiB) and the cache misses (637 ms) of the paper follow";
  c.bias_bits = 16;
  s["bias_bits"] = "assumed: 16-bit biases and LayerNorm parameters as Edge-MoE";
  c.act_bits = 16;
  s["act_bits"] = "assumed: 16-bit stored activations (the paper's supplement was not found)";
  c.index_bits = 16;
  s["index_bits"] = "assumed: 16-bit token index in the expert queues (up to 65,535 tokens)";
  c.bram_mbit = 11;
  s["bram_mbit"] = "M3ViT paper A.3: 11 Mbit BRAM (XCZU7EV: 312 x 36 Kbit)";
  c.uram_mbit = 27;
  s["uram_mbit"] = "M3ViT paper A.3: 27 Mbit URAM (XCZU7EV: 96 x 288 Kbit)";
  c.power_w = 10;
  s["power_w"] = "M3ViT paper §4.1/A.3: assumed 10 W board power";
  return c;
}

AccelConfig preset_zcu102() {
  AccelConfig c;
  c.name = "zcu102";
  auto& s = c.sources;
  c.board = "Xilinx ZCU102 (XCZU9EG)";
  s["board"] = "Edge-MoE bitstream.hwh (device xczu9eg) and vitis_hls.tcl (part xczu9eg-ffvb1156-2-e)";
  c.clock_mhz = 300;
  s["clock_mhz"] = "Edge-MoE vitis_hls.tcl create_clock 300MHz; bitstream.hwh FREQ_HZ 299,970,032";
  c.linear_in_lanes = 16;
  c.linear_out_lanes = 16;
  s["linear_in_lanes"] = s["linear_out_lanes"] =
      "Edge-MoE hardware.hpp: LINEAR_IN_SIZE = LINEAR_OUT_SIZE = 2 x (256/32) = 16, a 16x16 block per cycle";
  c.attn_queries = 4;
  s["attn_queries"] = "Edge-MoE hardware.hpp: ATTN_MATMUL_PARALLEL = 4";
  c.attn_lanes = 8;
  s["attn_lanes"] = "Edge-MoE hardware.hpp: FEATURE_BLOCK_SIZE = 256/32 = 8 features per cycle";
  c.attn_heads_parallel = 3;
  s["attn_heads_parallel"] =
      "Edge-MoE attention.cpp: the 24 feature blocks of a key cover all 3 heads in turn, a partial sum per head";
  c.softmax_pairs = 1;
  s["softmax_pairs"] = "Edge-MoE attention.cpp finalize_attn: one (query, key) pair per iteration, heads unrolled";
  c.vector_lanes = 8;
  s["vector_lanes"] = "Edge-MoE hardware.hpp: FEATURE_BLOCK_SIZE = 8 (one 256-bit beat of 32-bit values)";
  c.ln_pipelined = false;
  s["ln_pipelined"] = "Edge-MoE layernorm.cpp: a dataflow region per token inside a plain loop over tokens";
  c.ln_token_overhead = 94;
  s["ln_token_overhead"] =
      "Edge-MoE layernorm.cpp: one dataflow region per token, so each token pays the m_axi latency (64, "
      "vitis_hls.tcl) plus square root and reciprocal (assumed 30 cycles)";
  c.gelu_fused = true;
  s["gelu_fused"] = "Edge-MoE linear.cpp: gelu() applied to the linear unit's output block";
  c.gate_lanes = 8;
  s["gate_lanes"] = "Edge-MoE moe.cpp compute_gating_for_patch: one 8-feature block per cycle against all experts";
  c.gate_softmax_ii = 3;
  s["gate_softmax_ii"] = "Edge-MoE moe.cpp update_softmax_info: pipeline II=3 over the experts";
  c.gate_token_overhead = 40;
  s["gate_token_overhead"] =
      "assumed: exp and divide latency of finalize_topk_scores_softmax plus per-token call overhead (moe.cpp)";
  c.gate_pipelined = false;
  s["gate_pipelined"] = "Edge-MoE moe.cpp compute_gating: a sequence of non-dataflow calls per token";
  c.dram_gbps = 17.064;
  s["dram_gbps"] = "Edge-MoE bitstream.hwh: DDR4-2133 (PSU__DDRC__SPEED_BIN), 64-bit bus: 2,133 MT/s x 8 B";
  c.dram_efficiency = 1.0;
  s["dram_efficiency"] = "assumed: full-rate bursts (the 128-bit ports, not the DDR, are the limit)";
  c.port_bytes = 16;
  s["port_bytes"] =
      "Edge-MoE bitstream.hwh: the PS slave ports S_AXI_GP0..4 are 128 bits wide (PSU__SAXIGP*__DATA_WIDTH) "
      "behind 256-bit m_axi masters: 16 B per 300 MHz cycle";
  c.dram_latency = 64;
  s["dram_latency"] = "Edge-MoE vitis_hls.tcl: config_interface -m_axi_latency 64";
  c.activations_in_dram = true;
  s["activations_in_dram"] =
      "Edge-MoE ViT_compute.cpp: x, tmp1-4, tmp_hidden, attention scores and softmax statistics are m_axi "
      "arguments";
  c.act_buffers = 0;
  s["act_buffers"] = "activations live in DRAM; only line buffers are on chip (counted by the memory model)";
  c.act_head_buffers = 0;
  s["act_head_buffers"] = "activations live in DRAM";
  c.patch_weights_on_chip = true;
  s["patch_weights_on_chip"] = "Edge-MoE ViT_compute.cpp load_one_time_weights: conv weights cached once";
  c.overlap_loads = false;
  s["overlap_loads"] =
      "Edge-MoE ViT_compute.cpp: each load_linear_weights is followed by its compute_linear in sequential code "
      "with early debug_id returns between them, so we assume no load runs beside a compute (anchors.md §2.5)";
  c.weight_bits = 16;
  s["weight_bits"] = "Edge-MoE datatypes.hpp: wt_linear_t = ap_fixed<16,2>";
  c.bias_bits = 16;
  s["bias_bits"] = "Edge-MoE datatypes.hpp: wt_bias_t = ap_fixed<16,5>, wt_attn_bias_t = ap_fixed<16,7>";
  c.act_bits = 32;
  s["act_bits"] = "Edge-MoE datatypes.hpp: fm_t = ap_fixed<32,10>";
  c.index_bits = 32;
  s["index_bits"] = "Edge-MoE moe.cpp: expert_queues hold unsigned int";
  c.bram_mbit = 32.1;
  s["bram_mbit"] = "XCZU9EG: 912 x 36 Kbit block RAM = 32.1 Mbit (Zynq UltraScale+ product table)";
  c.uram_mbit = 0;
  s["uram_mbit"] = "XCZU9EG has no UltraRAM";
  c.power_w = 14.54;
  s["power_w"] = "Edge-MoE on ZCU102 as tabulated by UbiMoE (arXiv 2502.05602, Table II) and CoQMoE (Table 3)";
  return c;
}

std::vector<std::string> preset_names() { return {"zcu104", "zcu102"}; }

AccelConfig accel_config_from_yaml_text(const std::string& text, const std::string& origin) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw FormatError(origin + ": not valid YAML: " + e.what());
  }
  if (!doc.IsMap()) throw FormatError(origin + ": expected a mapping of accelerator fields");
  AccelConfig c;
  if (doc["base"]) {
    std::string base = doc["base"].as<std::string>();
    if (base == "zcu104") c = preset_zcu104();
    else if (base == "zcu102") c = preset_zcu102();
    else throw ConfigError(origin + ": base '" + base + "' is not a preset (zcu104, zcu102)");
    // Fields overridden below keep the file as their source.
  }
  c.name = origin;
  for (const auto& kv : doc) {
    std::string key = kv.first.as<std::string>();
    if (key == "base" || key == "name") continue;
    const Field* f = nullptr;
    for (const auto& ff : fields())
      if (key == ff.name) f = &ff;
    if (!f) throw ConfigError(origin + ": unknown key '" + key + "' (line " + std::to_string(kv.first.Mark().line + 1) + ")");
    try {
      f->set(c, kv.second);
    } catch (const YAML::Exception&) {
      throw ConfigError(origin + ": key '" + key + "' (line " + std::to_string(kv.second.Mark().line + 1) +
                        "): cannot read '" + (kv.second.IsScalar() ? kv.second.Scalar() : std::string("?")) +
                        "' as a " + (f->is_string ? "string" : "number"));
    }
    if (doc["base"]) c.sources[key] = "set in " + origin;
  }
  if (doc["name"]) c.name = doc["name"].as<std::string>();
  for (const auto& f : fields())
    if (!c.sources.count(f.name)) c.sources[f.name] = "set in " + origin;
  c.validate();
  return c;
}

AccelConfig load_accel_config(const std::string& name_or_path) {
  AccelConfig c;
  if (name_or_path == "zcu104") c = preset_zcu104();
  else if (name_or_path == "zcu102") c = preset_zcu102();
  else {
    if (!file_exists(name_or_path))
      throw IoError("accelerator '" + name_or_path + "': not a preset (zcu104, zcu102) and no such file");
    c = accel_config_from_yaml_text(read_file(name_or_path), name_or_path);
  }
  c.validate();
  return c;
}

std::string accel_config_to_yaml(const AccelConfig& c) {
  std::ostringstream os;
  os << "# Accelerator parameters for `m3vit hw --hw FILE` (see docs/HW_MODEL.md). One field per line,\n"
     << "# each with the source of its value. A file may also start from a preset with `base: zcu104`\n"
     << "# and override single fields.\n";
  os << "name: " << c.name << "\n";
  for (const auto& f : fields()) {
    std::string v = f.get(c);
    if (f.is_string) v = "\"" + v + "\"";
    os << f.name << ": " << v << "\n";
    auto it = c.sources.find(f.name);
    if (it != c.sources.end()) {
      // Wrap the source comment at ~100 columns.
      std::istringstream words(it->second);
      std::string w, line = "  #";
      while (words >> w) {
        if (line.size() + 1 + w.size() > 100) {
          os << line << "\n";
          line = "  #";
        }
        line += " " + w;
      }
      os << line << "\n";
    }
  }
  return os.str();
}

std::string accel_config_to_json(const AccelConfig& c) {
  nlohmann::ordered_json j;
  j["name"] = c.name;
  for (const auto& f : fields()) {
    std::string v = f.get(c);
    if (f.is_string) j[f.name] = v;
    else if (v == "true" || v == "false") j[f.name] = (v == "true");
    else j[f.name] = std::stod(v);
  }
  return j.dump();
}

}  // namespace m3vit::hw
