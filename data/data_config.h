// The `data:` section of a config file: where the images come from and how they are loaded. The
// label set itself (`data.dataset`) is read with the model (core/config_yaml.h ConfigFile::dataset),
// since it fixes each head's channels.
#pragma once

#include <cstdint>
#include <string>

#include "core/config_yaml.h"

namespace m3vit {

struct DataSection {
  std::string dataset = "synthetic";  // synthetic | pascal | nyud | cityscapes (ConfigFile::dataset)
  std::string root;                   // the data set folder, e.g. data/PASCAL_MT or data/NYUD_MT (real sets)
  std::string train_split = "train";  // split names (ImageSets/Context/<split>.txt, gt_sets/<split>.txt)
  std::string val_split = "val";
  int synthetic_train_images = 512;   // synthetic only: scenes in the training split
  int synthetic_val_images = 64;      // synthetic only: scenes in the validation split
  uint64_t synthetic_seed = 1;        // synthetic only: seed of the scene generator
  bool augment = true;                // flip + scale/rotate + resize (docs/DATA.md); off = resize only
  int num_workers = 2;                // loader threads
};

// Our `data:` section, or the authors' format (train_db_name; `nworkers` for the loader threads).
// ConfigError naming the file, the key and its line.
DataSection read_data_section(const ConfigFile& f);

}  // namespace m3vit
