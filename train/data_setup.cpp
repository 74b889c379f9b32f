// Config -> data sets, loaders and tensor views (see data_setup.h).
#include "common/pch/torch_pch.h"

#include "train/data_setup.h"

#include "common/errors.h"
#include "data/nyud.h"
#include "data/pascal_context.h"
#include "data/synthetic.h"

namespace m3vit {

namespace {

std::vector<std::string> model_tasks(const TrainConfig& f) {
  std::vector<std::string> t;
  for (const auto& ts : f.model.tasks) t.push_back(ts.name);
  return t;
}

// The data set kind used by the augmentation recipe.
std::string recipe_kind(const TrainConfig& f) {
  if (f.data.dataset == "nyud") return "nyud";
  if (f.data.dataset == "pascal") return "pascal";
  if (f.data.dataset == "synthetic") return "synthetic";
  throw ConfigError(f.path + ": data.dataset '" + f.data.dataset + "' has no loader (synthetic, pascal, nyud)");
}

}  // namespace

std::unique_ptr<Dataset> open_dataset(const TrainConfig& f, const std::string& split) {
  const bool train = split == "train";
  if (!train && split != "val") throw ConfigError("unknown split '" + split + "' (train, val)");
  const auto& d = f.data;
  if (d.dataset == "synthetic") {
    SyntheticOptions o;
    o.seed = d.synthetic_seed;
    o.split = train ? "train" : "val";
    o.size = train ? d.synthetic_train_images : d.synthetic_val_images;
    o.height = f.model.img_h;
    o.width = f.model.img_w;
    o.tasks = model_tasks(f);
    return std::make_unique<SyntheticDataset>(o);
  }
  if (d.root.empty()) throw ConfigError(f.path + ": data.root is required for data set '" + d.dataset + "'");
  if (d.dataset == "pascal") {
    PascalOptions o;
    o.root = d.root;
    o.split = train ? d.train_split : d.val_split;
    o.tasks = model_tasks(f);
    return std::make_unique<PascalContextDataset>(o);
  }
  if (d.dataset == "nyud") {
    NyudOptions o;
    o.root = d.root;
    o.split = train ? d.train_split : d.val_split;
    o.tasks = model_tasks(f);
    return std::make_unique<NyudDataset>(o);
  }
  throw ConfigError(f.path + ": data.dataset '" + d.dataset + "' has no loader (synthetic, pascal, nyud)");
}

LoaderOptions train_loader_options(const TrainConfig& f, int batch_size, uint64_t seed, bool augment,
                                   bool same_order_every_epoch, int workers) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = true;
  o.same_order_every_epoch = same_order_every_epoch;
  o.drop_last = false;  // the authors' distributed loader keeps the last batch (common_config.py:542-570)
  o.seed = seed;
  o.workers = workers;
  o.augment = augment_config(recipe_kind(f), augment, f.model.img_h, f.model.img_w);
  return o;
}

LoaderOptions val_loader_options(const TrainConfig& f, int batch_size, int workers) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  o.workers = workers;
  o.augment = augment_config(recipe_kind(f), false, f.model.img_h, f.model.img_w);
  return o;
}

TensorBatch tensor_view(Batch& b) {
  TensorBatch t;
  const int64_t B = b.size, H = b.height, W = b.width;
  if (b.image.size() != static_cast<size_t>(B * 3 * H * W))
    throw ShapeError("batch image holds " + std::to_string(b.image.size()) + " floats, expected [" +
                     std::to_string(B) + ", 3, " + std::to_string(H) + ", " + std::to_string(W) + "]");
  t.images = torch::from_blob(b.image.data(), {B, 3, H, W}, torch::kFloat32);
  for (auto& [task, v] : b.labels) {
    const int64_t C = b.channels.at(task);
    if (v.size() != static_cast<size_t>(B * C * H * W))
      throw ShapeError("batch label '" + task + "' holds " + std::to_string(v.size()) + " floats, expected [" +
                       std::to_string(B) + ", " + std::to_string(C) + ", " + std::to_string(H) + ", " +
                       std::to_string(W) + "]");
    t.labels[task] = torch::from_blob(v.data(), {B, C, H, W}, torch::kFloat32);
  }
  return t;
}

}  // namespace m3vit
