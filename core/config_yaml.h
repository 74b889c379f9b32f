// A config file as far as the model goes: the ModelConfig and the parsed document, whose `data:`
// and `train:` sections data/data_config.h and train/train_options.h read. Two formats are accepted
// (core/config_yaml.cpp, docs/CLI.md):
//   - ours: sections `model:`, `data:`, `train:` (configs/*.yaml), one key per ModelConfig field;
//   - the authors' experiment YAML (configs/{pascal,nyud}/vit_moe/*.yml in their repository):
//     backbone_kwargs, model_kwargs, head_kwargs, task_dictionary, loss_kwargs, trBatch, ...
//     Their data and training values are mapped onto the same DataSection / TrainSection by data/
//     and train/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "core/config.h"
#include "core/yaml_read.h"

namespace m3vit {

struct ConfigFile {
  std::string path;
  bool authors_format = false;  // true when read from the authors' experiment YAML
  // The label set (synthetic, pascal, nyud, cityscapes): `data.dataset`, or the authors'
  // train_db_name. It fixes each head's output channels, so it is part of the model.
  std::string dataset;
  ModelConfig model;            // with overrides applied, validated
  YAML::Node doc;               // the document as read: data/ and train/ read their sections from it
};

// Reads ours or the authors' format (detected by a `model:` mapping vs `backbone_kwargs:`), applies
// the overrides, validates. Errors (ConfigError / IoError) name the file and the key, e.g.
//   "configs/x.yaml: model.embed_dim (line 7): expected an integer, got 'abc'".
ConfigFile load_config_file(const std::string& path, const ConfigOverrides& overrides = {});
// The same from text (a shipped config, core/shipped_configs.h); `name` stands for the path in
// messages and names an authors'-format model.
ConfigFile load_config_text(const std::string& yaml_text, const std::string& name, const ConfigOverrides& overrides = {});

}  // namespace m3vit
