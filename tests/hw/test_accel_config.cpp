// Accelerator presets and their YAML form: every constant has a source, the files under
// configs/hw/ equal the presets, and bad files fail with the file and key named.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/errors.h"
#include "hw/accel_config.h"

namespace m3vit::hw {
namespace {

TEST(AccelConfig, EveryPresetFieldHasASource) {
  for (const AccelConfig& c : {preset_zcu104(), preset_zcu102()})
    for (const auto& f : accel_field_names()) {
      auto it = c.sources.find(f);
      ASSERT_NE(it, c.sources.end()) << c.name << "." << f << " has no source";
      EXPECT_GT(it->second.size(), 10u) << c.name << "." << f;
    }
}

TEST(AccelConfig, PresetFilesEqualPresets) {
  for (const AccelConfig& p : {preset_zcu104(), preset_zcu102()}) {
    std::string path = std::string(M3VIT_SOURCE_DIR) + "/configs/hw/" + p.name + ".yaml";
    AccelConfig f = load_accel_config(path);
    for (const auto& name : accel_field_names())
      EXPECT_EQ(accel_field_value(f, name), accel_field_value(p, name)) << path << ": " << name;
  }
}

TEST(AccelConfig, YamlRoundTripAndBase) {
  AccelConfig p = preset_zcu102();
  AccelConfig back = accel_config_from_yaml_text(accel_config_to_yaml(p), "roundtrip");
  for (const auto& name : accel_field_names()) EXPECT_EQ(accel_field_value(back, name), accel_field_value(p, name));
  AccelConfig o = accel_config_from_yaml_text("base: zcu104\nclock_mhz: 200\noverlap_loads: false\n", "mine.yaml");
  EXPECT_DOUBLE_EQ(o.clock_mhz, 200);
  EXPECT_FALSE(o.overlap_loads);
  EXPECT_EQ(o.linear_in_lanes, 48);  // from the base
  EXPECT_EQ(o.sources["clock_mhz"], "set in mine.yaml");
  EXPECT_EQ(o.sources["linear_in_lanes"], preset_zcu104().sources["linear_in_lanes"]);
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
  EXPECT_THROW(load_accel_config("/nonexistent/hw.yaml"), IoError);
}

TEST(AccelConfig, DerivedRates) {
  AccelConfig z4 = preset_zcu104(), z2 = preset_zcu102();
  EXPECT_EQ(z4.linear_macs(), 1536);
  EXPECT_EQ(z2.linear_macs(), 256);
  EXPECT_DOUBLE_EQ(z4.stream_bytes_per_cycle(), 64);  // 19.2 GB/s at 300 MHz
  EXPECT_DOUBLE_EQ(z2.stream_bytes_per_cycle(), 16);  // the 128-bit port, not the 56.9 B/cycle DDR
  EXPECT_NEAR(z4.capacity_bytes() / 1048576.0, 4.75, 1e-9);  // 38 Mbit
}

}  // namespace
}  // namespace m3vit::hw
