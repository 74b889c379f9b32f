// From a config file to data sets, loaders and torch tensors: the glue between the torch-free data/
// library and training / evaluation (the authors' get_train_dataset / get_val_dataset /
// get_train_dataloader, utils/common_config.py:459-570).
#pragma once

#include "common/pch/torch_pch.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "train/train_options.h"

namespace m3vit {

// The data set of `f.data` for a split ("train" or "val" name the config's train_split / val_split),
// loading the model's tasks. Synthetic scenes are rendered at the model's input size.
std::unique_ptr<Dataset> open_dataset(const TrainConfig& f, const std::string& split);

// Loader options: training (shuffled, augmented with the data set's recipe unless `augment` is off)
// or validation (in order, resize + normalise only, last batch kept).
LoaderOptions train_loader_options(const TrainConfig& f, int batch_size, uint64_t seed, bool augment,
                                   bool same_order_every_epoch, int workers);
LoaderOptions val_loader_options(const TrainConfig& f, int batch_size, int workers);

// Views of a Batch's arrays as tensors (no copy: the batch must outlive them).
//   images [B, 3, H, W]; labels task -> [B, C, H, W] (float, 255 = ignore).
struct TensorBatch {
  torch::Tensor images;
  std::map<std::string, torch::Tensor> labels;
};
TensorBatch tensor_view(Batch& b);

}  // namespace m3vit
