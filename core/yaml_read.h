// One way to read YAML for every config parser (the model, `data:`, `train:`, the authors'
// experiment YAML, accelerator presets): typed reads whose errors name the file, the key and the
// line, e.g.
//   "configs/x.yaml: model.embed_dim (line 7): expected an integer, got 'abc'".
// yaml-cpp throws on type queries of a missing ("zombie") node, so every helper checks IsDefined first.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

namespace m3vit {

// "nothing", "a list", "a mapping" or the quoted scalar: for "expected X, got Y" messages.
std::string describe(const YAML::Node& n);
bool is_map(const YAML::Node& n);
// True when `map` is a mapping holding `key` with a non-null value.
bool present(const YAML::Node& map, const std::string& key);

// Python truthiness of a YAML scalar as PyYAML + `if value:` see it: booleans, non-zero numbers and
// non-empty strings are true. The authors write `qkv_bias: True,` (the string "True,"), which is true.
bool python_truthy(const YAML::Node& node);

// Reads values of one file; `key` is the dotted name used in messages ("train.lr").
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  // ConfigError "<file>: <key> (line L): <what>" (the line when the node has one).
  [[noreturn]] void fail(const std::string& key, const YAML::Node& n, const std::string& what) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  int to_int(const YAML::Node& n, const std::string& key) const;
  int64_t to_int64(const YAML::Node& n, const std::string& key) const;
  double to_double(const YAML::Node& n, const std::string& key) const;  // finite only
  bool to_bool(const YAML::Node& n, const std::string& key) const;
  std::string to_string(const YAML::Node& n, const std::string& key) const;
  std::vector<double> to_doubles(const YAML::Node& n, const std::string& key) const;  // a list of numbers
  // [H, W] or one size for a square; both > 0.
  void to_size(const YAML::Node& n, const std::string& key, int& h, int& w) const;
  // Fails on the first key of `map` not in `known`, listing the known ones.
  void check_known_keys(const YAML::Node& map, const std::string& section, const std::vector<std::string>& known) const;

  // Optional keys of a section: `section.key` if present, else `fallback`.
  int get(const YAML::Node& section, const std::string& prefix, const std::string& key, int fallback) const;
  int64_t get(const YAML::Node& section, const std::string& prefix, const std::string& key, int64_t fallback) const;
  double get(const YAML::Node& section, const std::string& prefix, const std::string& key, double fallback) const;
  bool get(const YAML::Node& section, const std::string& prefix, const std::string& key, bool fallback) const;
  std::string get(const YAML::Node& section, const std::string& prefix, const std::string& key,
                  const std::string& fallback) const;

 private:
  std::string file_;
};

// Parses a YAML file: IoError "<what> <path>: no such file / cannot read", ConfigError
// "<path>: not valid YAML (line L): ...".
YAML::Node load_yaml_file(const std::string& path, const std::string& what);

}  // namespace m3vit
