// A whole config file: the model (ModelConfig) plus the `data:` and `train:` sections that the trainer
// and the evaluator read. Two formats are accepted (model/config_yaml.cpp, docs/CLI.md):
//   - ours: sections `model:`, `data:`, `train:` (configs/*.yaml), one key per ModelConfig field;
//   - the authors' experiment YAML (configs/{pascal,nyud}/vit_moe/*.yml in their repository):
//     backbone_kwargs, model_kwargs, head_kwargs, task_dictionary, loss_kwargs, trBatch, ...
//     Their `data`/`train` values are mapped onto the same DataSection / TrainSection.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>

#include "model/config.h"

namespace m3vit {

// `data:` section: where the images come from.
struct DataSection {
  std::string dataset = "synthetic";  // synthetic | pascal | nyud | cityscapes (also picks task channels)
  std::string root;                   // the data set folder, e.g. data/PASCAL_MT or data/NYUD_MT (real sets)
  std::string train_split = "train";  // split names (ImageSets/Context/<split>.txt, gt_sets/<split>.txt)
  std::string val_split = "val";
  int synthetic_train_images = 512;   // synthetic only: scenes in the training split
  int synthetic_val_images = 64;      // synthetic only: scenes in the validation split
  uint64_t synthetic_seed = 1;        // synthetic only: seed of the scene generator
  bool augment = true;                // flip + scale/rotate + resize (spec §4.4); off = resize only
  int num_workers = 2;                // loader threads
};

// `train:` section: optimisation recipe (spec §6; the authors' values are the defaults).
struct TrainSection {
  int batch_size = 8;                 // images per step (authors: trBatch 8 per GPU, 2 GPUs)
  int val_batch_size = 8;             // images per evaluation batch (valBatch)
  int epochs = 100;                   // passes over the training split
  int64_t steps = 0;                  // > 0: stop after this many optimizer steps instead
  std::string optimizer = "sgd";      // sgd | adam | adamw
  double lr = 0.002;                  // base learning rate
  double momentum = 0.9;              // SGD momentum
  double weight_decay = 1e-4;         // applied to every parameter, as the authors do
  std::string scheduler = "poly";     // poly | constant | cosine
  double poly_power = 0.9;            // lr_e = lr * (1 - e/epochs)^power, set per epoch
  std::map<std::string, double> loss_weights;  // task -> w_t; a task not listed has weight 1
  double edge_pos_weight = 0.95;      // balanced BCE weight of edge pixels (edge_w)
  double expert_grad_scale = 1.0;     // 2 reproduces the authors' 2-GPU expert gradients (quirk Q13)
  uint64_t seed = 0;                  // model init and data order
  int eval_every = 1;                 // epochs between validations (0 = only at the end)
  std::string out_dir = "out/train";  // checkpoints, logs, reports

  double loss_weight(const std::string& task) const;
};

struct ConfigFile {
  std::string path;
  bool authors_format = false;  // true when read from the authors' experiment YAML
  ModelConfig model;            // with overrides applied, validated
  DataSection data;
  TrainSection train;
  YAML::Node doc;               // the document as read, for keys this struct does not name
};

// Reads ours or the authors' format (detected by a `model:` mapping vs `backbone_kwargs:`), applies
// the overrides, validates. Errors (ConfigError / IoError) name the file and the key, e.g.
//   "configs/x.yaml: model.embed_dim (line 7): expected an integer, got 'abc'".
ConfigFile load_config_file(const std::string& path, const ConfigOverrides& overrides = {});

// Python truthiness of a YAML scalar as PyYAML + `if value:` see it: booleans, non-zero numbers and
// non-empty strings are true. The authors write `qkv_bias: True,` (the string "True,"), which is true.
bool python_truthy(const YAML::Node& node);

}  // namespace m3vit
