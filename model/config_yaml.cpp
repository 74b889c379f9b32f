// Config files: our YAML (configs/*.yaml: `model:`, `data:`, `train:`) and the authors' experiment
// YAML (their configs/{pascal,nyud}/vit_moe/*.yml, read by utils/config.py:create_config and
// train_fastmoe.py:163-190), both turned into a ModelConfig + DataSection + TrainSection.
//
// The authors' files are read as their training script reads them, with their argparse defaults for
// what the file does not say (train_fastmoe.py:92-117): 16 experts, a shared router (--multi_gate
// False, --task_one_hot False), --vmoe_noisy_std 1, --gate_task_specific_dim -1. The README's canonical
// run is therefore `--moe-top-k 4 --moe-mlp-ratio 1 --multi-gate true --noise-std 0` on top of the file.
// Every error names the file, the key and (when known) its line.
#include "model/config_yaml.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/errors.h"
#include "common/fileutil.h"

namespace m3vit {

namespace {

// Task order of the authors' task dictionary (utils/config.py:16-93): this order is the task id order.
const char* const kTaskOrder[] = {"semseg", "human_parts", "sal", "normals", "edge", "depth"};

struct Ctx {
  std::string file;

  [[noreturn]] void fail(const std::string& key, const YAML::Node& n, const std::string& what) const {
    std::string where = file + ": " + key;
    if (n.IsDefined() && n.Mark().line >= 0) where += " (line " + std::to_string(n.Mark().line + 1) + ")";
    throw ConfigError(where + ": " + what);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw ConfigError(file + ": " + key + ": " + what);
  }
};

std::string describe(const YAML::Node& n) {
  if (!n.IsDefined()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing";
  return "'" + n.Scalar() + "'";
}

// yaml-cpp throws on type queries of a missing (zombie) node, so every query checks IsDefined first.
bool is_map(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }

bool present(const YAML::Node& map, const std::string& key) {
  if (!is_map(map)) return false;
  const YAML::Node n = map[key];
  return n.IsDefined() && !n.IsNull();
}

int to_int(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsDefined() || !n.IsScalar()) c.fail(key, n, "expected an integer, got " + describe(n));
  try {
    return n.as<int>();
  } catch (const YAML::Exception&) {
    c.fail(key, n, "expected an integer, got " + describe(n));
  }
}

int64_t to_int64(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsDefined() || !n.IsScalar()) c.fail(key, n, "expected an integer, got " + describe(n));
  try {
    return n.as<int64_t>();
  } catch (const YAML::Exception&) {
    c.fail(key, n, "expected an integer, got " + describe(n));
  }
}

double to_double(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsDefined() || !n.IsScalar()) c.fail(key, n, "expected a number, got " + describe(n));
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    c.fail(key, n, "expected a number, got " + describe(n));
  }
  if (!std::isfinite(v)) c.fail(key, n, "expected a finite number, got " + describe(n));
  return v;
}

bool to_bool(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsDefined() || !n.IsScalar()) c.fail(key, n, "expected true or false, got " + describe(n));
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    c.fail(key, n, "expected true or false, got " + describe(n));
  }
}

std::string to_string_value(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsDefined() || !n.IsScalar()) c.fail(key, n, "expected a string, got " + describe(n));
  return n.Scalar();
}

// [H, W] or a single size for a square image.
void to_size(const Ctx& c, const YAML::Node& n, const std::string& key, int& h, int& w) {
  if (n.IsScalar()) {
    h = w = to_int(c, n, key);
  } else if (n.IsSequence() && n.size() == 2) {
    h = to_int(c, n[0], key + "[0]");
    w = to_int(c, n[1], key + "[1]");
  } else {
    c.fail(key, n, "expected [height, width] or one size, got " + describe(n));
  }
  if (h <= 0 || w <= 0) c.fail(key, n, "sizes must be positive");
}

void check_known_keys(const Ctx& c, const YAML::Node& map, const std::string& section,
                      const std::vector<std::string>& known) {
  for (const auto& kv : map) {
    const std::string k = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
      c.fail(section + "." + k, kv.first, "unknown key (known: " + list + ")");
    }
  }
}

bool is_task_name(const std::string& t) {
  for (const char* n : kTaskOrder)
    if (t == n) return true;
  return false;
}

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

DataSection parse_data(const Ctx& c, const YAML::Node& d) {
  DataSection s;
  if (!d.IsDefined() || d.IsNull()) c.fail("data", "missing section (it names the data set, e.g. 'dataset: pascal')");
  if (!d.IsMap()) c.fail("data", d, "expected a mapping, got " + describe(d));
  if (!present(d, "dataset")) c.fail("data.dataset", "missing (synthetic, pascal, nyud, cityscapes)");
  s.dataset = to_string_value(c, d["dataset"], "data.dataset");
  if (s.dataset != "synthetic" && s.dataset != "pascal" && s.dataset != "nyud" && s.dataset != "cityscapes")
    c.fail("data.dataset", d["dataset"], "unknown data set '" + s.dataset + "' (synthetic, pascal, nyud, cityscapes)");
  if (present(d, "root")) s.root = to_string_value(c, d["root"], "data.root");
  if (present(d, "train_split")) s.train_split = to_string_value(c, d["train_split"], "data.train_split");
  if (present(d, "val_split")) s.val_split = to_string_value(c, d["val_split"], "data.val_split");
  if (present(d, "synthetic_train_images"))
    s.synthetic_train_images = to_int(c, d["synthetic_train_images"], "data.synthetic_train_images");
  if (present(d, "synthetic_val_images"))
    s.synthetic_val_images = to_int(c, d["synthetic_val_images"], "data.synthetic_val_images");
  if (present(d, "synthetic_seed"))
    s.synthetic_seed = static_cast<uint64_t>(to_int64(c, d["synthetic_seed"], "data.synthetic_seed"));
  if (present(d, "augment")) s.augment = to_bool(c, d["augment"], "data.augment");
  if (present(d, "num_workers")) s.num_workers = to_int(c, d["num_workers"], "data.num_workers");
  if (s.synthetic_train_images < 1 || s.synthetic_val_images < 1)
    c.fail("data.synthetic_train_images", "synthetic split sizes must be >= 1");
  if (s.num_workers < 0) c.fail("data.num_workers", d["num_workers"], "must be >= 0");
  return s;
}

void parse_loss_weights(const Ctx& c, const YAML::Node& lw, const std::string& key, const ModelConfig& m,
                        TrainSection& t) {
  if (!lw.IsMap()) c.fail(key, lw, "expected a mapping task: weight, got " + describe(lw));
  for (const auto& kv : lw) {
    const std::string task = kv.first.Scalar();
    const std::string k = key + "." + task;
    if (!is_task_name(task)) c.fail(k, kv.first, "unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
    bool in_model = false;
    for (const auto& ts : m.tasks) in_model |= ts.name == task;
    if (!in_model) c.fail(k, kv.first, "task '" + task + "' is not a task of this model");
    const double w = to_double(c, kv.second, k);
    if (w < 0) c.fail(k, kv.second, "a loss weight must be >= 0");
    t.loss_weights[task] = w;
  }
}

TrainSection parse_train(const Ctx& c, const YAML::Node& tr, const ModelConfig& m) {
  TrainSection t;
  if (!tr.IsDefined() || tr.IsNull()) return t;
  if (!tr.IsMap()) c.fail("train", tr, "expected a mapping, got " + describe(tr));
  auto i = [&](const char* k, int& v) { if (present(tr, k)) v = to_int(c, tr[k], std::string("train.") + k); };
  auto f = [&](const char* k, double& v) { if (present(tr, k)) v = to_double(c, tr[k], std::string("train.") + k); };
  auto s = [&](const char* k, std::string& v) { if (present(tr, k)) v = to_string_value(c, tr[k], std::string("train.") + k); };
  i("batch_size", t.batch_size);
  i("val_batch_size", t.val_batch_size);
  i("epochs", t.epochs);
  if (present(tr, "steps")) t.steps = to_int64(c, tr["steps"], "train.steps");
  s("optimizer", t.optimizer);
  f("lr", t.lr);
  f("momentum", t.momentum);
  f("weight_decay", t.weight_decay);
  s("scheduler", t.scheduler);
  f("poly_power", t.poly_power);
  f("edge_pos_weight", t.edge_pos_weight);
  f("expert_grad_scale", t.expert_grad_scale);
  if (present(tr, "seed")) t.seed = static_cast<uint64_t>(to_int64(c, tr["seed"], "train.seed"));
  i("eval_every", t.eval_every);
  s("out_dir", t.out_dir);
  if (present(tr, "loss_weights")) parse_loss_weights(c, tr["loss_weights"], "train.loss_weights", m, t);
  if (t.batch_size < 1) c.fail("train.batch_size", tr["batch_size"], "must be >= 1");
  if (t.val_batch_size < 1) c.fail("train.val_batch_size", tr["val_batch_size"], "must be >= 1");
  if (t.epochs < 1 && t.steps <= 0) c.fail("train.epochs", "epochs must be >= 1 unless steps > 0");
  if (t.lr <= 0) c.fail("train.lr", tr["lr"], "must be > 0");
  if (t.optimizer != "sgd" && t.optimizer != "adam" && t.optimizer != "adamw")
    c.fail("train.optimizer", tr["optimizer"], "unknown optimizer '" + t.optimizer + "' (sgd, adam, adamw)");
  if (t.scheduler != "poly" && t.scheduler != "constant" && t.scheduler != "cosine")
    c.fail("train.scheduler", tr["scheduler"], "unknown scheduler '" + t.scheduler + "' (poly, constant, cosine)");
  if (t.edge_pos_weight < 0 || t.edge_pos_weight > 1) c.fail("train.edge_pos_weight", "must be in [0, 1]");
  return t;
}

ModelConfig parse_model(const Ctx& c, const YAML::Node& mm, const DataSection& data, const std::string& stem) {
  ModelConfig m;
  check_known_keys(c, mm, "model", kModelKeys);
  auto req = [&](const char* k) -> YAML::Node {
    if (!present(mm, k)) c.fail(std::string("model.") + k, "missing required key");
    return mm[k];
  };
  auto key = [](const char* k) { return std::string("model.") + k; };
  m.name = present(mm, "name") ? to_string_value(c, mm["name"], key("name")) : stem;
  to_size(c, req("img_size"), key("img_size"), m.img_h, m.img_w);
  m.patch = to_int(c, req("patch_size"), key("patch_size"));
  if (present(mm, "in_chans")) m.in_chans = to_int(c, mm["in_chans"], key("in_chans"));
  m.embed_dim = to_int(c, req("embed_dim"), key("embed_dim"));
  m.depth = to_int(c, req("depth"), key("depth"));
  m.num_heads = to_int(c, req("num_heads"), key("num_heads"));
  if (present(mm, "mlp_ratio")) m.mlp_ratio = to_double(c, mm["mlp_ratio"], key("mlp_ratio"));
  if (present(mm, "qkv_bias")) m.qkv_bias = to_bool(c, mm["qkv_bias"], key("qkv_bias"));
  if (present(mm, "ln_eps")) m.ln_eps = to_double(c, mm["ln_eps"], key("ln_eps"));

  // moe_blocks: a list of block indices, [] for a dense ViT, or "odd" (the authors' placement).
  if (!mm["moe_blocks"].IsDefined()) c.fail(key("moe_blocks"), "missing required key (a list, [] or odd)");
  const YAML::Node mb = mm["moe_blocks"];
  if (mb.IsScalar()) {
    const std::string v = mb.Scalar();
    if (v == "odd") m.moe_blocks = odd_blocks(m.depth);
    else if (v == "none") m.moe_blocks.clear();
    else c.fail(key("moe_blocks"), mb, "expected a list of block indices, [], 'odd' or 'none', got " + describe(mb));
  } else if (mb.IsSequence()) {
    for (size_t i = 0; i < mb.size(); ++i) m.moe_blocks.push_back(to_int(c, mb[i], key("moe_blocks") + "[" + std::to_string(i) + "]"));
  } else if (!mb.IsNull()) {
    c.fail(key("moe_blocks"), mb, "expected a list of block indices, got " + describe(mb));
  }
  if (present(mm, "moe_experts")) m.moe_experts = to_int(c, mm["moe_experts"], key("moe_experts"));
  if (present(mm, "moe_top_k")) m.moe_top_k = to_int(c, mm["moe_top_k"], key("moe_top_k"));
  if (present(mm, "moe_mlp_ratio")) m.moe_mlp_ratio = to_double(c, mm["moe_mlp_ratio"], key("moe_mlp_ratio"));
  if (present(mm, "gate")) {
    try {
      m.gate = gate_from_string(to_string_value(c, mm["gate"], key("gate")));
    } catch (const ConfigError& e) {
      c.fail(key("gate"), mm["gate"], e.what());
    }
  }
  if (present(mm, "task_emb_dim")) m.task_emb_dim = to_int(c, mm["task_emb_dim"], key("task_emb_dim"));
  if (present(mm, "noise_std")) m.noise_std = to_double(c, mm["noise_std"], key("noise_std"));
  if (present(mm, "authors_noisy_load")) m.authors_noisy_load = to_bool(c, mm["authors_noisy_load"], key("authors_noisy_load"));
  if (present(mm, "aux_weight")) m.aux_weight = to_double(c, mm["aux_weight"], key("aux_weight"));
  if (present(mm, "head_channels")) m.head_channels = to_int(c, mm["head_channels"], key("head_channels"));

  // tasks: names (channels from data.dataset) or {name: ..., channels: ...} for another label set.
  const YAML::Node tl = req("tasks");
  if (!tl.IsSequence()) c.fail(key("tasks"), tl, "expected a list of task names, got " + describe(tl));
  for (size_t i = 0; i < tl.size(); ++i) {
    const std::string k = key("tasks") + "[" + std::to_string(i) + "]";
    const YAML::Node t = tl[i];
    TaskSpec ts;
    if (t.IsScalar()) {
      ts.name = t.Scalar();
      ts.out_channels = channels_for(c, k, ts.name, data.dataset);
    } else if (t.IsMap()) {
      check_known_keys(c, t, k, {"name", "channels"});
      if (!present(t, "name")) c.fail(k + ".name", "missing required key");
      ts.name = to_string_value(c, t["name"], k + ".name");
      ts.out_channels = present(t, "channels") ? to_int(c, t["channels"], k + ".channels")
                                               : channels_for(c, k, ts.name, data.dataset);
      if (!is_task_name(ts.name)) channels_for(c, k, ts.name, data.dataset);  // names the unknown task
    } else {
      c.fail(k, t, "expected a task name or {name, channels}, got " + describe(t));
    }
    m.tasks.push_back(ts);
  }
  if (present(mm, "tam")) m.tam = to_bool(c, mm["tam"], key("tam"));
  if (mm["tam_levels"].IsDefined()) {
    const YAML::Node tv = mm["tam_levels"];
    if (!tv.IsSequence() && !tv.IsNull()) c.fail(key("tam_levels"), tv, "expected a list of levels (0, 1, 2), got " + describe(tv));
    for (bool& b : m.tam_levels) b = false;
    if (tv.IsSequence())
      for (size_t i = 0; i < tv.size(); ++i) {
        const int lv = to_int(c, tv[i], key("tam_levels"));
        if (lv < 0 || lv > 2) c.fail(key("tam_levels"), tv[i], "TAM levels are 0, 1, 2 (head features at stride 8, 4, 2)");
        m.tam_levels[lv] = true;
      }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// The authors' format.

std::string dataset_from_db_name(const Ctx& c, const YAML::Node& n) {
  const std::string v = to_string_value(c, n, "train_db_name");
  if (v == "PASCALContext") return "pascal";
  if (v == "NYUD") return "nyud";
  if (v == "CityScapes") return "cityscapes";
  c.fail("train_db_name", n, "unknown data set '" + v + "' (PASCALContext, NYUD, CityScapes)");
}

void authors_model(const Ctx& c, const YAML::Node& root, ConfigFile& f) {
  ModelConfig& m = f.model;
  m.name = std::filesystem::path(f.path).stem().string();
  if (!present(root, "train_db_name")) c.fail("train_db_name", "missing required key");
  f.data.dataset = dataset_from_db_name(c, root["train_db_name"]);

  // Backbone: VisionTransformer_moe (MoE at odd blocks, vision_transformer_moe.py:425-437) or the dense
  // VisionTransformer of the M-ViT baseline configs.
  const std::string backbone = present(root, "backbone") ? to_string_value(c, root["backbone"], "backbone") : "";
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
  to_size(c, req("img_size"), key("img_size"), m.img_h, m.img_w);
  if (present(bk, "patch_size")) m.patch = to_int(c, bk["patch_size"], key("patch_size"));
  else m.patch = 16;
  if (present(bk, "in_chans")) m.in_chans = to_int(c, bk["in_chans"], key("in_chans"));
  m.embed_dim = to_int(c, req("embed_dim"), key("embed_dim"));
  m.depth = to_int(c, req("depth"), key("depth"));
  m.num_heads = to_int(c, req("num_heads"), key("num_heads"));
  if (present(bk, "mlp_ratio")) m.mlp_ratio = to_double(c, bk["mlp_ratio"], key("mlp_ratio"));
  // `qkv_bias: True,` is the string "True," in PyYAML; nn.Linear(bias="True,") treats it as true.
  m.qkv_bias = bk["qkv_bias"].IsDefined() ? python_truthy(bk["qkv_bias"]) : true;
  for (const char* k : {"drop_rate", "attn_drop_rate", "drop_path_rate"})
    if (present(bk, k) && to_double(c, bk[k], key(k)) != 0.0)
      c.fail(key(k), bk[k], "dropout is not supported (every authors' ViT config uses 0)");
  if (present(bk, "distilled") && python_truthy(bk["distilled"]))
    c.fail(key("distilled"), bk["distilled"], "a distillation token is not supported");
  m.ln_eps = 1e-6;
  if (moe) {
    m.moe_blocks = odd_blocks(m.depth);
    // Their constructor default -1 would build empty experts, so a MoE config must give the ratio.
    m.moe_mlp_ratio = to_double(c, req("moe_mlp_ratio"), key("moe_mlp_ratio"));
    m.moe_top_k = present(bk, "moe_top_k") ? to_int(c, bk["moe_top_k"], key("moe_top_k")) : 2;
    m.moe_experts = present(bk, "moe_experts") ? to_int(c, bk["moe_experts"], key("moe_experts")) : 16;
  }
  // Authors' argparse defaults (train_fastmoe.py:92-117): shared router, noise std 1, no task embedding.
  // `gate_task_specific_dim` in a yml is never read by their code (only the CLI flag is): spec §2.4.
  m.gate = GateType::shared;
  m.noise_std = 1.0;
  m.task_emb_dim = -1;
  m.aux_weight = 0.01;
  m.head_channels = 256;  // hard-coded in VisionTransformerUpHead (vit_up_head.py:107-116)

  // Head: only the PUP head with 4 convs and 4 bilinear x2 steps is built (spec §3.1).
  if (present(root, "head")) {
    const std::string head = to_string_value(c, root["head"], "head");
    if (head != "VisionTransformerUpHead") c.fail("head", root["head"], "unsupported head '" + head + "' (VisionTransformerUpHead)");
  }
  const YAML::Node hk = root["head_kwargs"];
  if (hk.IsDefined() && !hk.IsNull()) {
    if (!hk.IsMap()) c.fail("head_kwargs", hk, "expected a mapping, got " + describe(hk));
    if (present(hk, "embed_dim") && to_int(c, hk["embed_dim"], "head_kwargs.embed_dim") != m.embed_dim)
      c.fail("head_kwargs.embed_dim", hk["embed_dim"], "differs from backbone_kwargs.embed_dim " + std::to_string(m.embed_dim));
    if (present(hk, "img_size")) {
      int h = 0, w = 0;
      to_size(c, hk["img_size"], "head_kwargs.img_size", h, w);
      if (h != m.img_h || w != m.img_w) c.fail("head_kwargs.img_size", hk["img_size"], "differs from backbone_kwargs.img_size");
    }
    if (present(hk, "patch_size") && to_int(c, hk["patch_size"], "head_kwargs.patch_size") != m.patch)
      c.fail("head_kwargs.patch_size", hk["patch_size"], "differs from backbone_kwargs.patch_size");
    if (present(hk, "num_conv") && to_int(c, hk["num_conv"], "head_kwargs.num_conv") != 4)
      c.fail("head_kwargs.num_conv", hk["num_conv"], "only the 4-conv PUP head is supported");
    if (present(hk, "num_upsampe_layer") && to_int(c, hk["num_upsampe_layer"], "head_kwargs.num_upsampe_layer") != 4)
      c.fail("head_kwargs.num_upsampe_layer", hk["num_upsampe_layer"], "only 4 upsampling steps are supported");
    if (present(hk, "upsampling_method") && to_string_value(c, hk["upsampling_method"], "head_kwargs.upsampling_method") != "bilinear")
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
  for (const char* t : kTaskOrder) {
    const std::string k = std::string("include_") + t;
    if (td[k].IsDefined() && python_truthy(td[k])) {
      const std::string& ds = f.data.dataset;
      // The asserts of parse_task_dictionary (utils/config.py:45-91).
      const bool ok = (std::string(t) == "human_parts" || std::string(t) == "sal") ? ds == "pascal"
                      : (std::string(t) == "normals" || std::string(t) == "edge") ? ds != "cityscapes"
                      : std::string(t) == "depth" ? ds != "pascal" : true;
      if (!ok) c.fail("task_dictionary." + k, td[k], std::string("task '") + t + "' has no labels on " + ds);
      m.tasks.push_back({t, channels_for(c, "task_dictionary." + k, t, ds)});
    }
  }
  if (present(td, "edge_w")) f.train.edge_pos_weight = to_double(c, td["edge_w"], "task_dictionary.edge_w");

  // gate_dim = embed_dim + number of tasks (spec §2.5, quirk Q5); -1 in single-task files.
  if (present(bk, "gate_dim")) {
    const int gd = to_int(c, bk["gate_dim"], key("gate_dim"));
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

void authors_train(const Ctx& c, const YAML::Node& root, ConfigFile& f) {
  TrainSection& t = f.train;
  if (present(root, "trBatch")) t.batch_size = to_int(c, root["trBatch"], "trBatch");
  if (present(root, "valBatch")) t.val_batch_size = to_int(c, root["valBatch"], "valBatch");
  if (present(root, "epochs")) t.epochs = to_int(c, root["epochs"], "epochs");
  if (present(root, "optimizer")) t.optimizer = to_string_value(c, root["optimizer"], "optimizer");
  if (present(root, "scheduler")) t.scheduler = to_string_value(c, root["scheduler"], "scheduler");
  const YAML::Node ok = root["optimizer_kwargs"];
  if (is_map(ok)) {
    if (present(ok, "lr")) t.lr = to_double(c, ok["lr"], "optimizer_kwargs.lr");
    if (present(ok, "momentum")) t.momentum = to_double(c, ok["momentum"], "optimizer_kwargs.momentum");
    if (present(ok, "weight_decay")) t.weight_decay = to_double(c, ok["weight_decay"], "optimizer_kwargs.weight_decay");
  }
  if (present(root, "nworkers")) f.data.num_workers = to_int(c, root["nworkers"], "nworkers");
  const YAML::Node lk = root["loss_kwargs"];
  if (is_map(lk) && present(lk, "loss_weights"))
    parse_loss_weights(c, lk["loss_weights"], "loss_kwargs.loss_weights", f.model, t);
  // Their MultiTaskLoss indexes a weight for every task (loss_schemes.py:43-115).
  if (f.model.num_tasks() > 1 && is_map(lk) && present(lk, "loss_weights"))
    for (const auto& ts : f.model.tasks)
      if (!t.loss_weights.count(ts.name)) c.fail("loss_kwargs.loss_weights." + ts.name, "missing weight for task '" + ts.name + "'");
  t.seed = 0;  // train_fastmoe.py:86
  t.expert_grad_scale = 1.0;
}

}  // namespace

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

double TrainSection::loss_weight(const std::string& task) const {
  auto it = loss_weights.find(task);
  return it == loss_weights.end() ? 1.0 : it->second;
}

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

ConfigFile load_config_file(const std::string& path, const ConfigOverrides& overrides) {
  if (!file_exists(path)) throw IoError("config " + path + ": no such file");
  ConfigFile f;
  f.path = path;
  Ctx c{path};
  try {
    f.doc = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw IoError("config " + path + ": cannot read");
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
  }
  const YAML::Node& root = f.doc;
  if (!root.IsMap()) throw ConfigError(path + ": expected a mapping at the top level");
  const std::string stem = std::filesystem::path(path).stem().string();
  try {
    if (root["backbone_kwargs"].IsDefined()) {
      f.authors_format = true;
      authors_model(c, root, f);
      authors_train(c, root, f);
    } else if (is_map(root["model"])) {
      f.data = parse_data(c, root["data"]);
      f.model = parse_model(c, root["model"], f.data, stem);
      f.train = parse_train(c, root["train"], f.model);
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

ModelConfig load_config(const std::string& path, const ConfigOverrides& overrides) {
  return load_config_file(path, overrides).model;
}

}  // namespace m3vit
