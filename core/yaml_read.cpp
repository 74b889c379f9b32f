// Typed YAML reads with named errors (core/yaml_read.h).
#include "core/yaml_read.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit {

std::string describe(const YAML::Node& n) {
  if (!n.IsDefined()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing";
  return "'" + n.Scalar() + "'";
}

bool is_map(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }

bool present(const YAML::Node& map, const std::string& key) {
  if (!is_map(map)) return false;
  const YAML::Node n = map[key];
  return n.IsDefined() && !n.IsNull();
}

bool python_truthy(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return false;
  if (!n.IsScalar()) return n.size() > 0;  // non-empty list / dict
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return !s.empty();  // a quoted scalar is always a string in PyYAML
  // PyYAML's bool forms (YAML 1.1): true/false/yes/no/on/off in lower, Title or UPPER case.
  for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
    if (s == t) return true;
  for (const char* f : {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})
    if (s == f) return false;
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return false;
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v != 0.0;
  } catch (const std::exception&) {
  }
  return !s.empty();  // any other string, e.g. "True,"
}

void YamlReader::fail(const std::string& key, const YAML::Node& n, const std::string& what) const {
  std::string where = file_ + ": " + key;
  if (n.IsDefined() && n.Mark().line >= 0) where += " (line " + std::to_string(n.Mark().line + 1) + ")";
  throw ConfigError(where + ": " + what);
}

void YamlReader::fail(const std::string& key, const std::string& what) const {
  throw ConfigError(file_ + ": " + key + ": " + what);
}

int YamlReader::to_int(const YAML::Node& n, const std::string& key) const {
  if (!n.IsDefined() || !n.IsScalar()) fail(key, n, "expected an integer, got " + describe(n));
  try {
    return n.as<int>();
  } catch (const YAML::Exception&) {
    fail(key, n, "expected an integer, got " + describe(n));
  }
}

int64_t YamlReader::to_int64(const YAML::Node& n, const std::string& key) const {
  if (!n.IsDefined() || !n.IsScalar()) fail(key, n, "expected an integer, got " + describe(n));
  try {
    return n.as<int64_t>();
  } catch (const YAML::Exception&) {
    fail(key, n, "expected an integer, got " + describe(n));
  }
}

double YamlReader::to_double(const YAML::Node& n, const std::string& key) const {
  if (!n.IsDefined() || !n.IsScalar()) fail(key, n, "expected a number, got " + describe(n));
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    fail(key, n, "expected a number, got " + describe(n));
  }
  if (!std::isfinite(v)) fail(key, n, "expected a finite number, got " + describe(n));
  return v;
}

bool YamlReader::to_bool(const YAML::Node& n, const std::string& key) const {
  if (!n.IsDefined() || !n.IsScalar()) fail(key, n, "expected true or false, got " + describe(n));
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    fail(key, n, "expected true or false, got " + describe(n));
  }
}

std::string YamlReader::to_string(const YAML::Node& n, const std::string& key) const {
  if (!n.IsDefined() || !n.IsScalar()) fail(key, n, "expected a string, got " + describe(n));
  return n.Scalar();
}

std::vector<double> YamlReader::to_doubles(const YAML::Node& n, const std::string& key) const {
  if (!n.IsDefined() || !n.IsSequence()) fail(key, n, "expected a list of numbers, got " + describe(n));
  std::vector<double> v;
  for (size_t i = 0; i < n.size(); ++i) v.push_back(to_double(n[i], key + "[" + std::to_string(i) + "]"));
  return v;
}

void YamlReader::to_size(const YAML::Node& n, const std::string& key, int& h, int& w) const {
  if (n.IsScalar()) {
    h = w = to_int(n, key);
  } else if (n.IsSequence() && n.size() == 2) {
    h = to_int(n[0], key + "[0]");
    w = to_int(n[1], key + "[1]");
  } else {
    fail(key, n, "expected [height, width] or one size, got " + describe(n));
  }
  if (h <= 0 || w <= 0) fail(key, n, "sizes must be positive");
}

void YamlReader::check_known_keys(const YAML::Node& map, const std::string& section,
                                  const std::vector<std::string>& known) const {
  for (const auto& kv : map) {
    const std::string k = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
      fail(section + "." + k, kv.first, "unknown key (known: " + list + ")");
    }
  }
}

int YamlReader::get(const YAML::Node& s, const std::string& prefix, const std::string& key, int fallback) const {
  return present(s, key) ? to_int(s[key], prefix + key) : fallback;
}
int64_t YamlReader::get(const YAML::Node& s, const std::string& prefix, const std::string& key, int64_t fallback) const {
  return present(s, key) ? to_int64(s[key], prefix + key) : fallback;
}
double YamlReader::get(const YAML::Node& s, const std::string& prefix, const std::string& key, double fallback) const {
  return present(s, key) ? to_double(s[key], prefix + key) : fallback;
}
bool YamlReader::get(const YAML::Node& s, const std::string& prefix, const std::string& key, bool fallback) const {
  return present(s, key) ? to_bool(s[key], prefix + key) : fallback;
}
std::string YamlReader::get(const YAML::Node& s, const std::string& prefix, const std::string& key,
                            const std::string& fallback) const {
  return present(s, key) ? to_string(s[key], prefix + key) : fallback;
}

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  if (!file_exists(path)) throw IoError(what + " " + path + ": no such file");
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw IoError(what + " " + path + ": cannot read");
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
  }
}

}  // namespace m3vit
