// Fields, YAML form and presets of AccelConfig (hw/cost/accel_config.h). The presets have one
// source, the files configs/hw/<name>.yaml, compiled into the library (core/shipped_configs.h) so
// that `--hw zcu104` works from any directory; each field there is a {value, source} mapping.
#include "hw/cost/accel_config.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "core/shipped_configs.h"
#include "core/yaml_read.h"

namespace m3vit::hw {

namespace {

// One row per field: how to read it from YAML, write it as text, and its kind.
struct Field {
  const char* name;
  // Reads the value node; errors name the file, `key` ("clock_mhz" or "clock_mhz.value") and the line.
  std::function<void(AccelConfig&, const YamlReader&, const YAML::Node&, const std::string& key)> set;
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
               [m](AccelConfig& c, const YamlReader& r, const YAML::Node& n, const std::string& key) {
                 if constexpr (std::is_same_v<T, bool>) c.*m = r.to_bool(n, key);
                 else if constexpr (std::is_same_v<T, double>) c.*m = r.to_double(n, key);
                 else c.*m = r.to_int(n, key);
               },
               [m](const AccelConfig& c) {
                 if constexpr (std::is_same_v<T, bool>) return std::string(c.*m ? "true" : "false");
                 else if constexpr (std::is_same_v<T, double>) return fmt_double(c.*m);
                 else return std::to_string(c.*m);
               },
               false};
}

Field str_field(const char* name, std::string AccelConfig::*m) {
  return Field{name,
               [m](AccelConfig& c, const YamlReader& r, const YAML::Node& n, const std::string& key) {
                 c.*m = r.to_string(n, key);
               },
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
      num_field("dsp_slices", &AccelConfig::dsp_slices),
      num_field("bram18_blocks", &AccelConfig::bram18_blocks),
      num_field("uram_blocks", &AccelConfig::uram_blocks),
      num_field("lut_count", &AccelConfig::lut_count),
      num_field("shared_mac_array", &AccelConfig::shared_mac_array),
      num_field("power_w", &AccelConfig::power_w),
      num_field("dram_pj_per_byte", &AccelConfig::dram_pj_per_byte),
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
  need(dsp_slices >= 0 && bram18_blocks >= 0 && uram_blocks >= 0 && lut_count >= 0,
       "dsp_slices, bram18_blocks, uram_blocks and lut_count must be >= 0");
  need(power_w > 0, "power_w must be > 0");
  need(dram_pj_per_byte >= 0, "dram_pj_per_byte must be >= 0");
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

// --- presets: the shipped files configs/hw/<name>.yaml -----------------------------------------

namespace {
const std::string kPresetDir = "configs/hw/";
const std::string kPresetExt = ".yaml";

std::string preset_list() {
  std::string list;
  for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
  return list;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& path : shipped_files(kPresetDir)) {
    std::string file = path.substr(kPresetDir.size());
    if (file.size() > kPresetExt.size() && file.compare(file.size() - kPresetExt.size(), kPresetExt.size(), kPresetExt) == 0 &&
        file.find('/') == std::string::npos)
      names.push_back(file.substr(0, file.size() - kPresetExt.size()));
  }
  return names;
}

bool is_accel_preset(const std::string& name) {
  const auto names = preset_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

AccelConfig accel_preset(const std::string& name) {
  const std::string path = kPresetDir + name + kPresetExt;
  const std::string* text = is_accel_preset(name) ? shipped_file(path) : nullptr;
  if (!text) throw ConfigError("accelerator '" + name + "' is not a preset (" + preset_list() + ")");
  return accel_config_from_yaml_text(*text, path);
}

AccelConfig accel_config_from_yaml_text(const std::string& text, const std::string& origin) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw FormatError(origin + ": not valid YAML: " + e.what());
  }
  if (!is_map(doc)) throw FormatError(origin + ": expected a mapping of accelerator fields, got " + describe(doc));
  const YamlReader r(origin);
  const bool has_base = present(doc, "base");
  AccelConfig c;
  if (has_base) {
    const std::string base = r.to_string(doc["base"], "base");
    if (!is_accel_preset(base)) r.fail("base", doc["base"], "'" + base + "' is not a preset (" + preset_list() + ")");
    c = accel_preset(base);
    // Fields set below get the file as their source, unless the file gives one.
  }
  c.name = origin;
  for (const auto& kv : doc) {
    const std::string key = kv.first.Scalar();
    if (key == "base" || key == "name") continue;
    const Field* f = nullptr;
    for (const auto& ff : fields())
      if (key == ff.name) f = &ff;
    if (!f) {
      std::string known = "base, name";
      for (const auto& ff : fields()) known += std::string(", ") + ff.name;
      r.fail(key, kv.first, "unknown key '" + key + "' (known: " + known + ")");
    }
    // A field is a plain value, or a mapping of its value and the value's source.
    const YAML::Node& entry = kv.second;
    if (entry.IsMap()) {
      r.check_known_keys(entry, key, {"value", "source"});
      if (!present(entry, "value"))
        r.fail(key, entry, "expected a value or {value, source}, got a mapping without 'value'");
      f->set(c, r, entry["value"], key + ".value");
      if (entry["source"].IsDefined()) {  // `source:` with nothing after it is an error, not "no source"
        const std::string src = r.to_string(entry["source"], key + ".source");
        if (src.find_first_not_of(" \t\n") == std::string::npos)
          r.fail(key + ".source", entry["source"], "must not be empty");
        c.sources[key] = src;
      } else {
        c.sources[key] = "set in " + origin;
      }
    } else {
      f->set(c, r, entry, key);
      c.sources[key] = "set in " + origin;
    }
  }
  if (present(doc, "name")) c.name = r.to_string(doc["name"], "name");
  for (const auto& f : fields())
    if (!c.sources.count(f.name)) c.sources[f.name] = "set in " + origin;
  c.validate();
  return c;
}

AccelConfig load_accel_config(const std::string& name_or_path) {
  AccelConfig c;
  if (is_accel_preset(name_or_path)) {
    c = accel_preset(name_or_path);
  } else {
    if (!file_exists(name_or_path))
      throw IoError("accelerator '" + name_or_path + "': not a preset (" + preset_list() + ") and no such file");
    c = accel_config_from_yaml_text(read_file(name_or_path), name_or_path);
  }
  c.validate();
  return c;
}

namespace {
// A YAML double-quoted scalar: `\` and `"` escaped, control characters as escapes.
std::string yaml_quote(const std::string& v) {
  std::string q = "\"";
  for (const char ch : v) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      q += '\\';
      q += ch;
    } else if (ch == '\n') {
      q += "\\n";
    } else if (ch == '\t') {
      q += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static const char* hex = "0123456789abcdef";
      q += "\\x";
      q += hex[u >> 4];
      q += hex[u & 15];
    } else {
      q += ch;
    }
  }
  return q + "\"";
}

// `first` + the quoted text, wrapped at ~100 columns onto lines indented by `indent`. A line break
// inside a double-quoted scalar reads back as one space, so breaks go only at a single space
// between two other characters of the text (not the quotes) and the text reads back unchanged.
std::string wrap_quoted(const std::string& first, const std::string& quoted, const std::string& indent) {
  constexpr size_t kWidth = 100;
  std::string out, line = first;
  size_t from = 0;
  while (from < quoted.size()) {
    // The next piece runs to the next breakable space (or the end).
    size_t to = from;
    do {
      to = quoted.find(' ', to + 1);
    } while (to != std::string::npos &&
             (to < 2 || quoted[to - 1] == ' ' || to + 2 >= quoted.size() || quoted[to + 1] == ' '));
    if (to == std::string::npos) to = quoted.size();
    const std::string piece = quoted.substr(from, to - from);
    if (from > 0 && line.size() + 1 + piece.size() > kWidth) {
      out += line + "\n";
      line = indent + piece;
    } else {
      line += (from > 0 ? " " : "") + piece;
    }
    from = to + 1;
  }
  return out + line + "\n";
}
}  // namespace

std::string accel_config_to_yaml(const AccelConfig& c) {
  std::ostringstream os;
  os << "# Accelerator parameters for `m3vit hw --hw FILE` (see docs/HW_MODEL.md). Each field holds its\n"
     << "# value and the source of that value. A file may also start from a preset with `base: zcu104`\n"
     << "# and override single fields, either in this form or as a plain value (`clock_mhz: 200`).\n";
  os << "name: " << c.name << "\n";
  for (const auto& f : fields()) {
    std::string v = f.get(c);
    if (f.is_string) v = yaml_quote(v);
    auto it = c.sources.find(f.name);
    if (it == c.sources.end()) {  // no source to write: a plain value
      os << f.name << ": " << v << "\n";
      continue;
    }
    os << f.name << ":\n  value: " << v << "\n" << wrap_quoted("  source: ", yaml_quote(it->second), "    ");
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
