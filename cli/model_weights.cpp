#include "common/pch/torch_pch.h"

// Weights for the CLI's model subcommands (cli/model_weights.h).
#include "cli/model_weights.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "common/errors.h"
#include "common/fileutil.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"

namespace m3vit::cli {

namespace {

// Our export carries its config; a different model (e.g. another top-k, which no tensor shape
// reveals) must not be run silently under --config's settings.
void check_export_config(const ModelConfig& cfg, const std::string& path) {
  if (std::filesystem::is_directory(path)) return;
  std::map<std::string, std::string> meta;
  try {
    meta = SafeTensorsFile(path).metadata();
  } catch (const Error&) {
    return;  // not safetensors (a .pth zip, or corrupt): load_checkpoint reports what it is
  }
  if (!meta.count("format") || meta.at("format").rfind(kExportFormatPrefix, 0) != 0) return;  // newer: read_export_config says so
  const auto stored = nlohmann::json::parse(config_to_json(read_export_config(path)));
  const auto want = nlohmann::json::parse(config_to_json(cfg));
  std::string diff;
  int n = 0;
  for (const auto& [k, v] : want.items()) {
    if (k == "name" || (stored.contains(k) && stored.at(k) == v)) continue;
    if (++n <= 4) {
      std::string got = stored.contains(k) ? stored.at(k).dump() : "?", exp = v.dump();
      if (got.size() > 40) got = got.substr(0, 37) + "...";
      if (exp.size() > 40) exp = exp.substr(0, 37) + "...";
      diff += (diff.empty() ? "" : ", ") + k + " " + got + " vs " + exp;
    }
  }
  if (n > 4) diff += ", and " + std::to_string(n - 4) + " more";
  if (!diff.empty())
    throw ConfigError("weights " + path + " were exported for another model than --config (stored vs config: " + diff + ")");
}

}  // namespace

std::string load_model_weights(MultiTaskModelImpl& m, const std::string& path, bool need_training_weights) {
  if (!file_exists(path) && !std::filesystem::is_directory(path)) throw IoError("weights " + path + ": no such file");
  check_export_config(m.config(), path);
  const LoadReport r =
      load_checkpoint(m, path, /*strict=*/true, need_training_weights ? LoadFor::training : LoadFor::inference);
  return path + " (" + r.summary() + ")";
}

}  // namespace m3vit::cli
