// Config files: our YAML (configs/*.yaml: `model:`, `data:`, `train:`) and the authors' experiment
// YAML (their configs/{pascal,nyud}/vit_moe/*.yml, read by utils/config.py:create_config and
// train_fastmoe.py:163-190), both turned into a ModelConfig. This file reads what the model is: the
// `model:` section and `data.dataset` (the label set fixes each head's channels), or the authors'
// backbone_kwargs, head_kwargs, task_dictionary and model_kwargs. The rest of `data:` is read by
// data/data_config.cpp, `train:` by train/train_options.cpp, each from ConfigFile::doc.
//
// The authors' files are read as their training script reads them, with their argparse defaults for
// what the file does not say (train_fastmoe.py:92-117): 16 experts, a shared router (--multi_gate
// False, --task_one_hot False), --vmoe_noisy_std 1, --gate_task_specific_dim -1. The README's canonical
// run is therefore `--moe-top-k 4 --moe-mlp-ratio 1 --multi-gate true --noise-std 0` on top of the file.
// Every error names the file, the key and (when known) its line.
#include "core/config_yaml.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/errors.h"
#include "common/fileutil.h"
#include "core/yaml_read.h"

namespace m3vit {

namespace {

using Ctx = YamlReader;

// Output channels of a task on a data set; cityscapes (the Edge-MoE / ViT-T setting, the authors'
// configs/cityscapes/*.yml) is known here because only the config files name it.
int channels_for(const Ctx& c, const std::string& key, const std::string& task, const std::string& dataset) {
  if (!is_task_name(task))
    c.fail(key, "unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
  if (dataset == "cityscapes") {
    if (task == "semseg") return 7;  // utils/config.py:37-38
    if (task == "depth") return 1;
    c.fail(key, "task '" + task + "' has no labels on cityscapes (semseg, depth)");
  }
  try {
    return task_channels(task, dataset);
  } catch (const ConfigError& e) {
    c.fail(key, e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Our format.

const std::vector<std::string> kModelKeys = {
    "name",         "img_size",    "patch_size", "in_chans",      "embed_dim",          "depth",
    "num_heads",    "mlp_ratio",   "qkv_bias",   "ln_eps",        "moe_blocks",         "moe_experts",
    "moe_top_k",    "moe_mlp_ratio", "gate",     "task_emb_dim",  "noise_std",          "authors_noisy_load",
    "aux_weight",   "head_channels", "tasks",    "tam",           "tam_levels"};

// `data.dataset` names the label set, which fixes each head's output channels; the rest of `data:`
// (where the images are, splits, loader) belongs to data/ (data/data_config.h).
std::string parse_dataset(const Ctx& c, const YAML::Node& d) {
  if (!d.IsDefined() || d.IsNull()) c.fail("data", "missing section (it names the data set, e.g. 'dataset: pascal')");
  if (!d.IsMap()) c.fail("data", d, "expected a mapping, got " + describe(d));
  if (!present(d, "dataset")) c.fail("data.dataset", "missing (synthetic, pascal, nyud, cityscapes)");
  const std::string ds = c.to_string(d["dataset"], "data.dataset");
  if (ds != "synthetic" && ds != "pascal" && ds != "nyud" && ds != "cityscapes")
    c.fail("data.dataset", d["dataset"], "unknown data set '" + ds + "' (synthetic, pascal, nyud, cityscapes)");
  return ds;
}

ModelConfig parse_model(const Ctx& c, const YAML::Node& mm, const std::string& dataset, const std::string& stem) {
  ModelConfig m;
  c.check_known_keys(mm, "model", kModelKeys);
  auto req = [&](const char* k) -> YAML::Node {
    if (!present(mm, k)) c.fail(std::string("model.") + k, "missing required key");
    return mm[k];
  };
  auto key = [](const char* k) { return std::string("model.") + k; };
  m.name = present(mm, "name") ? c.to_string(mm["name"], key("name")) : stem;
  c.to_size(req("img_size"), key("img_size"), m.img_h, m.img_w);
  m.patch = c.to_int(req("patch_size"), key("patch_size"));
  if (present(mm, "in_chans")) m.in_chans = c.to_int(mm["in_chans"], key("in_chans"));
  m.embed_dim = c.to_int(req("embed_dim"), key("embed_dim"));
  m.depth = c.to_int(req("depth"), key("depth"));
  m.num_heads = c.to_int(req("num_heads"), key("num_heads"));
  if (present(mm, "mlp_ratio")) m.mlp_ratio = c.to_double(mm["mlp_ratio"], key("mlp_ratio"));
  if (present(mm, "qkv_bias")) m.qkv_bias = c.to_bool(mm["qkv_bias"], key("qkv_bias"));
  if (present(mm, "ln_eps")) m.ln_eps = c.to_double(mm["ln_eps"], key("ln_eps"));

  // moe_blocks: a list of block indices, [] for a dense ViT, or "odd" (the authors' placement).
  if (!mm["moe_blocks"].IsDefined()) c.fail(key("moe_blocks"), "missing required key (a list, [] or odd)");
  const YAML::Node mb = mm["moe_blocks"];
  if (mb.IsScalar()) {
    const std::string v = mb.Scalar();
    if (v == "odd") m.moe_blocks = odd_blocks(m.depth);
    else if (v == "none") m.moe_blocks.clear();
    else c.fail(key("moe_blocks"), mb, "expected a list of block indices, [], 'odd' or 'none', got " + describe(mb));
  } else if (mb.IsSequence()) {
    for (size_t i = 0; i < mb.size(); ++i) m.moe_blocks.push_back(c.to_int(mb[i], key("moe_blocks") + "[" + std::to_string(i) + "]"));
  } else if (!mb.IsNull()) {
    c.fail(key("moe_blocks"), mb, "expected a list of block indices, got " + describe(mb));
  }
  if (present(mm, "moe_experts")) m.moe_experts = c.to_int(mm["moe_experts"], key("moe_experts"));
  if (present(mm, "moe_top_k")) m.moe_top_k = c.to_int(mm["moe_top_k"], key("moe_top_k"));
  if (present(mm, "moe_mlp_ratio")) m.moe_mlp_ratio = c.to_double(mm["moe_mlp_ratio"], key("moe_mlp_ratio"));
  if (present(mm, "gate")) {
    try {
      m.gate = gate_from_string(c.to_string(mm["gate"], key("gate")));
    } catch (const ConfigError& e) {
      c.fail(key("gate"), mm["gate"], e.what());
    }
  }
  if (present(mm, "task_emb_dim")) m.task_emb_dim = c.to_int(mm["task_emb_dim"], key("task_emb_dim"));
  if (present(mm, "noise_std")) m.noise_std = c.to_double(mm["noise_std"], key("noise_std"));
  if (present(mm, "authors_noisy_load")) m.authors_noisy_load = c.to_bool(mm["authors_noisy_load"], key("authors_noisy_load"));
  if (present(mm, "aux_weight")) m.aux_weight = c.to_double(mm["aux_weight"], key("aux_weight"));
  if (present(mm, "head_channels")) m.head_channels = c.to_int(mm["head_channels"], key("head_channels"));

  // tasks: names (channels from data.dataset) or {name: ..., channels: ...} for another label set.
  const YAML::Node tl = req("tasks");
  if (!tl.IsSequence()) c.fail(key("tasks"), tl, "expected a list of task names, got " + describe(tl));
  for (size_t i = 0; i < tl.size(); ++i) {
    const std::string k = key("tasks") + "[" + std::to_string(i) + "]";
    const YAML::Node t = tl[i];
    TaskSpec ts;
    if (t.IsScalar()) {
      ts.name = t.Scalar();
      ts.out_channels = channels_for(c, k, ts.name, dataset);
    } else if (t.IsMap()) {
      c.check_known_keys(t, k, {"name", "channels"});
      if (!present(t, "name")) c.fail(k + ".name", "missing required key");
      ts.name = c.to_string(t["name"], k + ".name");
      ts.out_channels = present(t, "channels") ? c.to_int(t["channels"], k + ".channels")
                                               : channels_for(c, k, ts.name, dataset);
      if (!is_task_name(ts.name)) channels_for(c, k, ts.name, dataset);  // names the unknown task
    } else {
      c.fail(k, t, "expected a task name or {name, channels}, got " + describe(t));
    }
    m.tasks.push_back(ts);
  }
  if (present(mm, "tam")) m.tam = c.to_bool(mm["tam"], key("tam"));
  if (mm["tam_levels"].IsDefined()) {
    const YAML::Node tv = mm["tam_levels"];
    if (!tv.IsSequence() && !tv.IsNull()) c.fail(key("tam_levels"), tv, "expected a list of levels (0, 1, 2), got " + describe(tv));
    for (bool& b : m.tam_levels) b = false;
    if (tv.IsSequence())
      for (size_t i = 0; i < tv.size(); ++i) {
        const int lv = c.to_int(tv[i], key("tam_levels"));
        if (lv < 0 || lv > 2) c.fail(key("tam_levels"), tv[i], "TAM levels are 0, 1, 2 (head features at stride 8, 4, 2)");
        m.tam_levels[lv] = true;
      }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// The authors' format.

std::string dataset_from_db_name(const Ctx& c, const YAML::Node& n) {
  const std::string v = c.to_string(n, "train_db_name");
  if (v == "PASCALContext") return "pascal";
  if (v == "NYUD") return "nyud";
  if (v == "CityScapes") return "cityscapes";
  c.fail("train_db_name", n, "unknown data set '" + v + "' (PASCALContext, NYUD, CityScapes)");
}

void authors_model(const Ctx& c, const YAML::Node& root, ConfigFile& f) {
  ModelConfig& m = f.model;
  m.name = std::filesystem::path(f.path).stem().string();
  if (!present(root, "train_db_name")) c.fail("train_db_name", "missing required key");
  f.dataset = dataset_from_db_name(c, root["train_db_name"]);

  // Backbone: VisionTransformer_moe (MoE at odd blocks, vision_transformer_moe.py:425-437) or the dense
  // VisionTransformer of the M-ViT baseline configs.
  const std::string backbone = present(root, "backbone") ? c.to_string(root["backbone"], "backbone") : "";
  const bool moe = backbone == "VisionTransformer_moe";
  if (!moe && backbone != "VisionTransformer")
    c.fail("backbone", root["backbone"], "unsupported backbone '" + backbone + "' (VisionTransformer_moe, VisionTransformer)");
  const YAML::Node bk = root["backbone_kwargs"];
  if (!is_map(bk)) c.fail("backbone_kwargs", bk, "expected a mapping, got " + describe(bk));
  auto req = [&](const char* k) -> YAML::Node {
    if (!present(bk, k)) c.fail(std::string("backbone_kwargs.") + k, "missing required key");
    return bk[k];
  };
  auto key = [](const char* k) { return std::string("backbone_kwargs.") + k; };
  c.to_size(req("img_size"), key("img_size"), m.img_h, m.img_w);
  if (present(bk, "patch_size")) m.patch = c.to_int(bk["patch_size"], key("patch_size"));
  else m.patch = 16;
  if (present(bk, "in_chans")) m.in_chans = c.to_int(bk["in_chans"], key("in_chans"));
  m.embed_dim = c.to_int(req("embed_dim"), key("embed_dim"));
  m.depth = c.to_int(req("depth"), key("depth"));
  m.num_heads = c.to_int(req("num_heads"), key("num_heads"));
  if (present(bk, "mlp_ratio")) m.mlp_ratio = c.to_double(bk["mlp_ratio"], key("mlp_ratio"));
  // `qkv_bias: True,` is the string "True," in PyYAML; nn.Linear(bias="True,") treats it as true.
  m.qkv_bias = bk["qkv_bias"].IsDefined() ? python_truthy(bk["qkv_bias"]) : true;
  for (const char* k : {"drop_rate", "attn_drop_rate", "drop_path_rate"})
    if (present(bk, k) && c.to_double(bk[k], key(k)) != 0.0)
      c.fail(key(k), bk[k], "dropout is not supported (every authors' ViT config uses 0)");
  if (present(bk, "distilled") && python_truthy(bk["distilled"]))
    c.fail(key("distilled"), bk["distilled"], "a distillation token is not supported");
  m.ln_eps = 1e-6;
  if (moe) {
    m.moe_blocks = odd_blocks(m.depth);
    // Their constructor default -1 would build empty experts, so a MoE config must give the ratio.
    m.moe_mlp_ratio = c.to_double(req("moe_mlp_ratio"), key("moe_mlp_ratio"));
    m.moe_top_k = present(bk, "moe_top_k") ? c.to_int(bk["moe_top_k"], key("moe_top_k")) : 2;
    m.moe_experts = present(bk, "moe_experts") ? c.to_int(bk["moe_experts"], key("moe_experts")) : 16;
  }
  // Authors' argparse defaults (train_fastmoe.py:92-117): shared router, noise std 1, no task embedding.
  // `gate_task_specific_dim` in a yml is never read by their code (only the CLI flag is): train_fastmoe.py:118.
  m.gate = GateType::shared;
  m.noise_std = 1.0;
  m.task_emb_dim = -1;
  m.aux_weight = 0.01;
  m.head_channels = 256;  // hard-coded in VisionTransformerUpHead (vit_up_head.py:107-116)

  // Head: only the PUP head with 4 convs and 4 bilinear x2 steps is built (vit_up_head.py:149-224).
  if (present(root, "head")) {
    const std::string head = c.to_string(root["head"], "head");
    if (head != "VisionTransformerUpHead") c.fail("head", root["head"], "unsupported head '" + head + "' (VisionTransformerUpHead)");
  }
  const YAML::Node hk = root["head_kwargs"];
  if (hk.IsDefined() && !hk.IsNull()) {
    if (!hk.IsMap()) c.fail("head_kwargs", hk, "expected a mapping, got " + describe(hk));
    if (present(hk, "embed_dim") && c.to_int(hk["embed_dim"], "head_kwargs.embed_dim") != m.embed_dim)
      c.fail("head_kwargs.embed_dim", hk["embed_dim"], "differs from backbone_kwargs.embed_dim " + std::to_string(m.embed_dim));
    if (present(hk, "img_size")) {
      int h = 0, w = 0;
      c.to_size(hk["img_size"], "head_kwargs.img_size", h, w);
      if (h != m.img_h || w != m.img_w) c.fail("head_kwargs.img_size", hk["img_size"], "differs from backbone_kwargs.img_size");
    }
    if (present(hk, "patch_size") && c.to_int(hk["patch_size"], "head_kwargs.patch_size") != m.patch)
      c.fail("head_kwargs.patch_size", hk["patch_size"], "differs from backbone_kwargs.patch_size");
    if (present(hk, "num_conv") && c.to_int(hk["num_conv"], "head_kwargs.num_conv") != 4)
      c.fail("head_kwargs.num_conv", hk["num_conv"], "only the 4-conv PUP head is supported");
    if (present(hk, "num_upsampe_layer") && c.to_int(hk["num_upsampe_layer"], "head_kwargs.num_upsampe_layer") != 4)
      c.fail("head_kwargs.num_upsampe_layer", hk["num_upsampe_layer"], "only 4 upsampling steps are supported");
    if (present(hk, "upsampling_method") && c.to_string(hk["upsampling_method"], "head_kwargs.upsampling_method") != "bilinear")
      c.fail("head_kwargs.upsampling_method", hk["upsampling_method"], "only 'bilinear' is supported");
    if (hk["conv3x3_conv1x1"].IsDefined() && !python_truthy(hk["conv3x3_conv1x1"]))
      c.fail("head_kwargs.conv3x3_conv1x1", hk["conv3x3_conv1x1"], "only the 3x3 conv head is supported");
  }

  // Tasks in the authors' fixed order; include_<task> keys outside the six tasks are errors.
  const YAML::Node td = root["task_dictionary"];
  if (!is_map(td)) c.fail("task_dictionary", td, td.IsDefined() ? "expected a mapping, got " + describe(td) : "missing required key");
  for (const auto& kv : td) {
    const std::string k = kv.first.Scalar();
    if (k.rfind("include_", 0) == 0 && !is_task_name(k.substr(8)))
      c.fail("task_dictionary." + k, kv.first, "unknown task '" + k.substr(8) + "' (semseg, human_parts, sal, normals, edge, depth)");
  }
  for (const std::string& t : task_names()) {
    const std::string k = std::string("include_") + t;
    if (td[k].IsDefined() && python_truthy(td[k])) {
      const std::string& ds = f.dataset;
      // The asserts of parse_task_dictionary (utils/config.py:45-91).
      const bool ok = (t == "human_parts" || t == "sal") ? ds == "pascal"
                      : (t == "normals" || t == "edge") ? ds != "cityscapes"
                      : t == "depth" ? ds != "pascal" : true;
      if (!ok) c.fail("task_dictionary." + k, td[k], std::string("task '") + t + "' has no labels on " + ds);
      m.tasks.push_back({t, channels_for(c, "task_dictionary." + k, t, ds)});
    }
  }

  // gate_dim = embed_dim + number of tasks (quirk Q5, docs/AUTHORS_CODE.md); -1 in single-task files.
  if (present(bk, "gate_dim")) {
    const int gd = c.to_int(bk["gate_dim"], key("gate_dim"));
    if (gd >= 0 && gd - m.embed_dim != m.num_tasks())
      c.fail(key("gate_dim"), bk["gate_dim"],
             std::to_string(gd) + " - embed_dim " + std::to_string(m.embed_dim) + " = " + std::to_string(gd - m.embed_dim) +
                 " tasks, but task_dictionary includes " + std::to_string(m.num_tasks()));
  }

  // TAM: model_kwargs.tam is indexed unconditionally when model_kwargs exists (models.py:135-147);
  // a missing tam_level key means that level is on.
  const YAML::Node mk = root["model_kwargs"];
  if (mk.IsDefined() && !mk.IsNull()) {
    if (!mk.IsMap()) c.fail("model_kwargs", mk, "expected a mapping, got " + describe(mk));
    if (!mk["tam"].IsDefined()) c.fail("model_kwargs.tam", "missing required key");
    m.tam = python_truthy(mk["tam"]);
    for (int l = 0; l < 3; ++l) {
      const std::string k = "tam_level" + std::to_string(l);
      m.tam_levels[l] = mk[k].IsDefined() ? python_truthy(mk[k]) : true;
    }
  } else {
    m.tam = false;
  }
}

}  // namespace

bool ConfigOverrides::empty() const {
  return !moe_experts && !moe_top_k && !moe_mlp_ratio && !gate_type && !multi_gate && !task_one_hot &&
         !task_emb_dim && !noise_std;
}

void apply_overrides(ModelConfig& m, const ConfigOverrides& o) {
  if (o.moe_experts) m.moe_experts = *o.moe_experts;
  if (o.moe_top_k) m.moe_top_k = *o.moe_top_k;
  if (o.moe_mlp_ratio) {
    if (!(*o.moe_mlp_ratio > 0)) throw ConfigError("--moe-mlp-ratio must be > 0");
    m.moe_mlp_ratio = *o.moe_mlp_ratio;
  }
  if (o.task_emb_dim) m.task_emb_dim = *o.task_emb_dim;
  if (o.noise_std) {
    if (!(*o.noise_std >= 0)) throw ConfigError("--noise-std must be >= 0");
    m.noise_std = *o.noise_std;
  }
  // The authors' flags (train_fastmoe.py:110-112, vision_transformer_moe.py:418-423): multi_gate wins;
  // task_one_hot gives the task-conditioned router only with a task embedding (dim >= 0), else the
  // router sees the token alone; both false is the shared router.
  std::optional<GateType> from_flags;
  if (o.multi_gate && *o.multi_gate) from_flags = GateType::multi;
  else if (o.task_one_hot && *o.task_one_hot) from_flags = m.task_emb_dim >= 0 ? GateType::task_cond : GateType::shared;
  else if (o.multi_gate || o.task_one_hot) from_flags = GateType::shared;
  if (o.gate_type) {
    const GateType g = gate_from_string(*o.gate_type);
    if (from_flags && *from_flags != g)
      throw ConfigError(std::string("--gate-type ") + to_string(g) + " contradicts --multi-gate/--task-one-hot (which give " +
                        to_string(*from_flags) + ")");
    m.gate = g;
  } else if (from_flags) {
    m.gate = *from_flags;
  }
}

namespace {

// Both entry points: `path` names the file in messages (and gives an authors' file its model name).
ConfigFile parse_config(YAML::Node doc, const std::string& path, const ConfigOverrides& overrides) {
  ConfigFile f;
  f.path = path;
  f.doc = std::move(doc);
  const Ctx c{path};
  const YAML::Node& root = f.doc;
  if (!root.IsMap()) throw ConfigError(path + ": expected a mapping at the top level");
  const std::string stem = std::filesystem::path(path).stem().string();
  try {
    if (root["backbone_kwargs"].IsDefined()) {
      f.authors_format = true;
      authors_model(c, root, f);
    } else if (is_map(root["model"])) {
      f.dataset = parse_dataset(c, root["data"]);
      f.model = parse_model(c, root["model"], f.dataset, stem);
    } else {
      throw ConfigError(path + ": neither a 'model:' section (our format) nor 'backbone_kwargs:' (the authors' format)");
    }
    if (f.model.noise_std < 0) c.fail("noise_std", "must be >= 0");
    if (!(f.model.moe_mlp_ratio > 0)) c.fail("moe_mlp_ratio", "must be > 0");
    apply_overrides(f.model, overrides);
    f.model.validate();
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    throw ConfigError(path + ": " + msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ": " + e.what());
  }
  return f;
}

}  // namespace

ConfigFile load_config_file(const std::string& path, const ConfigOverrides& overrides) {
  return parse_config(load_yaml_file(path, "config"), path, overrides);
}

ConfigFile load_config_text(const std::string& yaml_text, const std::string& name, const ConfigOverrides& overrides) {
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(name + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
  }
  return parse_config(std::move(doc), name, overrides);
}

ModelConfig load_config(const std::string& path, const ConfigOverrides& overrides) {
  return load_config_file(path, overrides).model;
}

}  // namespace m3vit
