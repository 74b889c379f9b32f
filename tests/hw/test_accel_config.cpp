// Accelerator presets and their YAML form: the presets are the shipped files configs/hw/*.yaml,
// every constant has a source, the values are the papers' and Edge-MoE's, and bad files fail with
// the file and key named.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/errors.h"
#include "core/shipped_configs.h"
#include "hw/cost/accel_config.h"

namespace m3vit::hw {
namespace {

TEST(AccelConfig, EveryPresetFieldHasASource) {
  for (const AccelConfig& c : {accel_preset("zcu104"), accel_preset("zcu102")})
    for (const auto& f : accel_field_names()) {
      auto it = c.sources.find(f);
      ASSERT_NE(it, c.sources.end()) << c.name << "." << f << " has no source";
      EXPECT_GT(it->second.size(), 10u) << c.name << "." << f;
    }
}

TEST(AccelConfig, PresetsAreTheShippedFiles) {
  EXPECT_EQ(preset_names(), (std::vector<std::string>{"zcu102", "zcu104"}));
  // Compiled in: found from any working directory.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::temp_directory_path());
  AccelConfig z4 = load_accel_config("zcu104"), z2 = load_accel_config("zcu102");
  std::filesystem::current_path(cwd);
  EXPECT_EQ(z4.name, "zcu104");
  EXPECT_EQ(z2.name, "zcu102");
  EXPECT_EQ(z4.board, "Xilinx ZCU104 (XCZU7EV)");
  EXPECT_EQ(z2.board, "Xilinx ZCU102 (XCZU9EG)");
  EXPECT_THROW(accel_preset("zcu999"), ConfigError);
  try {
    load_accel_config("zcu999");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("zcu999"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("zcu104"), std::string::npos) << e.what();  // lists the presets
  }
}

// The source of a field contains `fragment`.
void expect_source(const AccelConfig& c, const std::string& field, const std::string& fragment) {
  EXPECT_NE(c.sources.at(field).find(fragment), std::string::npos)
      << c.name << "." << field << ": '" << c.sources.at(field) << "' lacks '" << fragment << "'";
}

TEST(AccelConfig, Zcu104IsTheM3vitPaperSetup) {
  // arXiv 2210.14793 §4.1, A.3 and Table 4 (the calibration is explained in docs/HW_MODEL.md).
  const AccelConfig c = accel_preset("zcu104");
  EXPECT_DOUBLE_EQ(c.clock_mhz, 300);
  expect_source(c, "clock_mhz", "300 MHz");
  EXPECT_EQ(c.linear_in_lanes, 48);
  EXPECT_EQ(c.linear_out_lanes, 32);
  expect_source(c, "linear_in_lanes", "1,535 MAC/cycle");  // 31.75 GMAC in 68.931 ms
  EXPECT_EQ(c.attn_queries * c.attn_lanes, 1536);
  EXPECT_DOUBLE_EQ(c.dram_gbps, 19.2);  // DDR4-2400, 64-bit bus
  expect_source(c, "dram_gbps", "DDR4-2400");
  EXPECT_DOUBLE_EQ(c.dram_efficiency, 1.0);
  EXPECT_EQ(c.weight_bits, 16);
  EXPECT_TRUE(c.overlap_loads);  // the paper's ping-pong buffers
  EXPECT_FALSE(c.activations_in_dram);
  EXPECT_DOUBLE_EQ(c.bram_mbit, 11);
  expect_source(c, "bram_mbit", "11 Mbit");
  EXPECT_DOUBLE_EQ(c.uram_mbit, 27);
  expect_source(c, "uram_mbit", "27 Mbit");
  EXPECT_DOUBLE_EQ(c.power_w, 10);
  expect_source(c, "power_w", "10 W");
}

TEST(AccelConfig, Zcu102IsEdgeMoe) {
  // sharc-lab/Edge-MoE at 984b23b: hardware.hpp, datatypes.hpp, vitis_hls.tcl, bitstream.hwh.
  const AccelConfig c = accel_preset("zcu102");
  EXPECT_DOUBLE_EQ(c.clock_mhz, 300);
  EXPECT_EQ(c.linear_in_lanes, 16);
  EXPECT_EQ(c.linear_out_lanes, 16);
  expect_source(c, "linear_in_lanes", "LINEAR_IN_SIZE");
  EXPECT_EQ(c.attn_queries, 4);
  expect_source(c, "attn_queries", "ATTN_MATMUL_PARALLEL = 4");
  EXPECT_EQ(c.attn_lanes, 8);
  EXPECT_EQ(c.vector_lanes, 8);
  EXPECT_FALSE(c.ln_pipelined);
  EXPECT_EQ(c.gate_softmax_ii, 3);
  expect_source(c, "gate_softmax_ii", "II=3");
  EXPECT_DOUBLE_EQ(c.dram_gbps, 2133 * 8 / 1000.0);  // DDR4-2133, 64-bit bus
  expect_source(c, "dram_gbps", "DDR4-2133");
  EXPECT_EQ(c.port_bytes, 16);  // 128-bit PS slave ports
  expect_source(c, "port_bytes", "128 bits");
  EXPECT_EQ(c.dram_latency, 64);
  expect_source(c, "dram_latency", "m_axi_latency 64");
  EXPECT_TRUE(c.activations_in_dram);
  EXPECT_FALSE(c.overlap_loads);
  EXPECT_TRUE(c.patch_weights_on_chip);
  EXPECT_EQ(c.weight_bits, 16);
  expect_source(c, "weight_bits", "ap_fixed<16,2>");
  EXPECT_EQ(c.act_bits, 32);
  expect_source(c, "act_bits", "ap_fixed<32,10>");
  EXPECT_EQ(c.index_bits, 32);
  EXPECT_DOUBLE_EQ(c.bram_mbit, 32.1);  // 912 x 36 Kbit
  expect_source(c, "bram_mbit", "912 x 36 Kbit");
  EXPECT_DOUBLE_EQ(c.uram_mbit, 0);
  EXPECT_DOUBLE_EQ(c.power_w, 14.54);
  expect_source(c, "power_w", "UbiMoE");
}

TEST(AccelConfig, ShippedFilesAreTheDumpOfTheirPresets) {
  // configs/hw/<name>.yaml is byte for byte what `m3vit hw --hw <name> --dump-hw` writes, so a file
  // edited by hand stays in the one layout (run the dump and copy it over if this fails).
  for (const auto& name : preset_names()) {
    const std::string* text = shipped_file("configs/hw/" + name + ".yaml");
    ASSERT_NE(text, nullptr) << name;
    EXPECT_EQ(*text, accel_config_to_yaml(accel_preset(name))) << "configs/hw/" << name << ".yaml";
  }
}

TEST(AccelConfig, SourcesAreDataNotComments) {
  // A YAML tool that drops comments keeps every source: each field is {value, source}.
  const AccelConfig c = accel_config_from_yaml_text(
      "base: zcu104\n"
      "clock_mhz:\n  value: 250\n  source: \"my board: 250 MHz\"  # a comment is not the source\n"
      "port_bytes: {value: 32, source: \"assumed: a 256-bit port\"}\n"
      "power_w:\n  value: 12\n"
      "act_bits: 8\n",
      "mine.yaml");
  EXPECT_DOUBLE_EQ(c.clock_mhz, 250);
  EXPECT_EQ(c.sources.at("clock_mhz"), "my board: 250 MHz");
  EXPECT_EQ(c.port_bytes, 32);
  EXPECT_EQ(c.sources.at("port_bytes"), "assumed: a 256-bit port");
  EXPECT_DOUBLE_EQ(c.power_w, 12);
  EXPECT_EQ(c.sources.at("power_w"), "set in mine.yaml");  // a mapping without a source
  EXPECT_EQ(c.act_bits, 8);
  EXPECT_EQ(c.sources.at("act_bits"), "set in mine.yaml");  // a plain value
  EXPECT_EQ(c.sources.at("dram_gbps"), accel_preset("zcu104").sources.at("dram_gbps"));  // from the base

  // Long sources are wrapped, quotes and backslashes escaped; all read back unchanged.
  AccelConfig odd = accel_preset("zcu102");
  odd.sources["board"] = std::string(150, 'x') + " a \"quoted\" C:\\path, two  spaces,\ttab,  " +
                         "and a long tail of words that wraps onto a further line of the file, " +
                         "ending in a space ";
  odd.sources["clock_mhz"] = " leading space: # not a comment";
  const std::string yaml = accel_config_to_yaml(odd);
  const AccelConfig back = accel_config_from_yaml_text(yaml, "roundtrip");
  EXPECT_EQ(back.sources.at("board"), odd.sources.at("board")) << yaml;
  EXPECT_EQ(back.sources.at("clock_mhz"), odd.sources.at("clock_mhz")) << yaml;
  EXPECT_EQ(back.board, odd.board);
}

TEST(AccelConfig, PresetsSurviveTheirYamlForm) {
  // `m3vit hw --dump-hw` writes a preset in the layout of configs/hw/*.yaml; reading that back must
  // give the same values and sources.
  for (const auto& name : preset_names()) {
    const AccelConfig p = accel_preset(name);
    const AccelConfig back = accel_config_from_yaml_text(accel_config_to_yaml(p), "roundtrip");
    EXPECT_EQ(back.name, p.name);
    for (const auto& f : accel_field_names()) {
      EXPECT_EQ(accel_field_value(back, f), accel_field_value(p, f)) << name << "." << f;
      EXPECT_EQ(back.sources.at(f), p.sources.at(f)) << name << "." << f;
    }
  }
}

TEST(AccelConfig, YamlRoundTripAndBase) {
  AccelConfig p = accel_preset("zcu102");
  AccelConfig back = accel_config_from_yaml_text(accel_config_to_yaml(p), "roundtrip");
  for (const auto& name : accel_field_names()) EXPECT_EQ(accel_field_value(back, name), accel_field_value(p, name));
  AccelConfig o = accel_config_from_yaml_text("base: zcu104\nclock_mhz: 200\noverlap_loads: false\n", "mine.yaml");
  EXPECT_DOUBLE_EQ(o.clock_mhz, 200);
  EXPECT_FALSE(o.overlap_loads);
  EXPECT_EQ(o.linear_in_lanes, 48);  // from the base
  EXPECT_EQ(o.sources["clock_mhz"], "set in mine.yaml");
  EXPECT_EQ(o.sources["linear_in_lanes"], accel_preset("zcu104").sources["linear_in_lanes"]);
}

TEST(AccelConfig, BadInputNamesTheProblem) {
  auto msg = [](const std::string& text) {
    try {
      accel_config_from_yaml_text(text, "bad.yaml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg("base: zcu104\nclok_mhz: 3\n").find("unknown key 'clok_mhz'"), std::string::npos);
  EXPECT_NE(msg("base: zcu104\nclock_mhz: fast\n").find("clock_mhz"), std::string::npos);
  EXPECT_NE(msg("base: zcu104\nclock_mhz: -1\n").find("clock_mhz must be > 0"), std::string::npos);
  EXPECT_NE(msg("base: zcu999\n").find("zcu999"), std::string::npos);
  EXPECT_NE(msg("[1, 2]").find("bad.yaml"), std::string::npos);
  // The {value, source} form: errors name the file, the key within the field and the line.
  EXPECT_NE(msg("base: zcu104\nclock_mhz:\n  value: fast\n  source: x\n").find("bad.yaml: clock_mhz.value (line 3)"),
            std::string::npos);
  EXPECT_NE(msg("base: zcu104\nclock_mhz:\n  value: 300\n  sauce: x\n").find("bad.yaml: clock_mhz.sauce (line 4)"),
            std::string::npos);
  EXPECT_NE(msg("base: zcu104\nclock_mhz:\n  source: x\n").find("clock_mhz (line 3)"), std::string::npos);
  EXPECT_NE(msg("base: zcu104\nclock_mhz:\n  value: 300\n  source: [a]\n").find("clock_mhz.source (line 4)"),
            std::string::npos);
  EXPECT_NE(msg("base: zcu104\nclock_mhz:\n  value: 300\n  source: \"\"\n").find("clock_mhz.source (line 4)"),
            std::string::npos);
  EXPECT_THROW(load_accel_config("/nonexistent/hw.yaml"), IoError);
}

TEST(AccelConfig, DerivedRates) {
  AccelConfig z4 = accel_preset("zcu104"), z2 = accel_preset("zcu102");
  EXPECT_EQ(z4.linear_macs(), 1536);
  EXPECT_EQ(z2.linear_macs(), 256);
  EXPECT_DOUBLE_EQ(z4.stream_bytes_per_cycle(), 64);  // 19.2 GB/s at 300 MHz
  EXPECT_DOUBLE_EQ(z2.stream_bytes_per_cycle(), 16);  // the 128-bit port, not the 56.9 B/cycle DDR
  EXPECT_NEAR(z4.capacity_bytes() / 1048576.0, 4.75, 1e-9);  // 38 Mbit
}

}  // namespace
}  // namespace m3vit::hw
