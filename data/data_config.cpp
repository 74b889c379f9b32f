// The `data:` section of a config file (data/data_config.h).
#include "data/data_config.h"

#include "common/errors.h"
#include "core/yaml_read.h"

namespace m3vit {

DataSection read_data_section(const ConfigFile& f) {
  const YamlReader c(f.path);
  DataSection s;
  s.dataset = f.dataset;
  if (f.authors_format) {
    // Their loader threads (utils/common_config.py get_train_dataloader, p['nworkers']).
    if (present(f.doc, "nworkers")) s.num_workers = c.to_int(f.doc["nworkers"], "nworkers");
    return s;
  }
  const YAML::Node d = f.doc["data"];  // a mapping: load_config_file checked it
  const std::string p = "data.";
  s.root = c.get(d, p, "root", s.root);
  s.train_split = c.get(d, p, "train_split", s.train_split);
  s.val_split = c.get(d, p, "val_split", s.val_split);
  s.synthetic_train_images = c.get(d, p, "synthetic_train_images", s.synthetic_train_images);
  s.synthetic_val_images = c.get(d, p, "synthetic_val_images", s.synthetic_val_images);
  if (present(d, "synthetic_seed"))
    s.synthetic_seed = static_cast<uint64_t>(c.to_int64(d["synthetic_seed"], "data.synthetic_seed"));
  s.augment = c.get(d, p, "augment", s.augment);
  s.num_workers = c.get(d, p, "num_workers", s.num_workers);
  if (s.synthetic_train_images < 1 || s.synthetic_val_images < 1)
    c.fail("data.synthetic_train_images", "synthetic split sizes must be >= 1");
  if (s.num_workers < 0) c.fail("data.num_workers", d["num_workers"], "must be >= 0");
  return s;
}

}  // namespace m3vit
