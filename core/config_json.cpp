// JSON (de)serialisation of ModelConfig for export metadata (core/config.h).
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "core/config.h"

#include <cmath>
#include <functional>
#include <limits>

namespace m3vit {

std::string config_to_json(const ModelConfig& c) {
  nlohmann::json j;
  j["name"] = c.name;
  j["img_size"] = {c.img_h, c.img_w};
  j["patch_size"] = c.patch;
  j["in_chans"] = c.in_chans;
  j["embed_dim"] = c.embed_dim;
  j["depth"] = c.depth;
  j["num_heads"] = c.num_heads;
  j["mlp_ratio"] = c.mlp_ratio;
  j["qkv_bias"] = c.qkv_bias;
  j["ln_eps"] = c.ln_eps;
  j["moe_blocks"] = c.moe_blocks;
  j["moe_experts"] = c.moe_experts;
  j["moe_top_k"] = c.moe_top_k;
  j["moe_mlp_ratio"] = c.moe_mlp_ratio;
  j["gate"] = to_string(c.gate);
  j["task_emb_dim"] = c.task_emb_dim;
  j["noise_std"] = c.noise_std;
  j["authors_noisy_load"] = c.authors_noisy_load;
  j["aux_weight"] = c.aux_weight;
  j["head_channels"] = c.head_channels;
  j["tam"] = c.tam;
  j["tam_levels"] = {c.tam_levels[0], c.tam_levels[1], c.tam_levels[2]};
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : c.tasks) tasks.push_back({{"name", t.name}, {"out_channels", t.out_channels}});
  j["tasks"] = tasks;
  return j.dump();
}

ModelConfig config_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw ConfigError(std::string("model config JSON does not parse: ") + e.what());
  }
  // Numbers become ints below: one past int's range (or a float such as 1e30 where an int goes)
  // would be undefined behaviour in the conversion, so every number is held to that range first.
  std::function<void(const nlohmann::json&)> check_numbers = [&](const nlohmann::json& v) {
    if (v.is_number() && !(std::fabs(v.get<double>()) <= std::numeric_limits<int32_t>::max()))
      throw ConfigError("model config JSON has a number out of range: " + v.dump());
    if (v.is_structured())
      for (const auto& e : v) check_numbers(e);
  };
  check_numbers(j);
  ModelConfig c;
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw ConfigError(std::string("model config JSON lacks '") + key + "'");
    return j.at(key);
  };
  try {
    c.name = j.value("name", c.name);
    c.img_h = need("img_size").at(0).get<int>();
    c.img_w = need("img_size").at(1).get<int>();
    c.patch = need("patch_size").get<int>();
    c.in_chans = j.value("in_chans", 3);
    c.embed_dim = need("embed_dim").get<int>();
    c.depth = need("depth").get<int>();
    c.num_heads = need("num_heads").get<int>();
    c.mlp_ratio = need("mlp_ratio").get<double>();
    c.qkv_bias = j.value("qkv_bias", true);
    c.ln_eps = j.value("ln_eps", 1e-6);
    c.moe_blocks = need("moe_blocks").get<std::vector<int>>();
    c.moe_experts = need("moe_experts").get<int>();
    c.moe_top_k = need("moe_top_k").get<int>();
    c.moe_mlp_ratio = need("moe_mlp_ratio").get<double>();
    c.gate = gate_from_string(need("gate").get<std::string>());
    c.task_emb_dim = j.value("task_emb_dim", 64);
    c.noise_std = j.value("noise_std", 0.0);
    c.authors_noisy_load = j.value("authors_noisy_load", false);
    c.aux_weight = j.value("aux_weight", 0.01);
    c.head_channels = j.value("head_channels", 256);
    c.tam = j.value("tam", false);
    if (j.contains("tam_levels"))
      for (int i = 0; i < 3; ++i) c.tam_levels[i] = j["tam_levels"].at(i).get<bool>();
    for (const auto& t : need("tasks")) c.tasks.push_back({t.at("name").get<std::string>(), t.at("out_channels").get<int>()});
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(std::string("model config JSON has a bad value: ") + e.what());
  }
  c.validate();
  return c;
}

}  // namespace m3vit
