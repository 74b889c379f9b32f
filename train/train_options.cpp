// Training options from a config file (see train_options.h for the keys).
#include "train/train_options.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <set>

#include "common/errors.h"
#include "common/fileutil.h"
#include "core/yaml_read.h"
#include "train/losses.h"

namespace m3vit {

namespace {

// NaN fails `> 0`; beyond the largest float the optimizer cannot even apply it (docs/TRAINING.md, "Bad numbers").
void check_lr(const YamlReader& c, const char* key, const YAML::Node& node, double lr) {
  if (!(lr > 0) || lr > std::numeric_limits<float>::max())
    c.fail(key, node, "must be a number > 0 and at most 3.4e38 (a float)");
}

bool is_model_task(const ModelConfig& m, const std::string& task) {
  for (const auto& ts : m.tasks)
    if (ts.name == task) return true;
  return false;
}

void parse_loss_weights(const YamlReader& c, const YAML::Node& lw, const std::string& key, const ModelConfig& m,
                        TrainSection& t) {
  if (!lw.IsMap()) c.fail(key, lw, "expected a mapping task: weight, got " + describe(lw));
  for (const auto& kv : lw) {
    const std::string task = kv.first.Scalar();
    const std::string k = key + "." + task;
    if (!is_task_name(task))
      c.fail(k, kv.first, "unknown task '" + task + "' (semseg, human_parts, sal, normals, edge, depth)");
    if (!is_model_task(m, task)) c.fail(k, kv.first, "task '" + task + "' is not a task of this model");
    const double w = c.to_double(kv.second, k);
    if (w < 0) c.fail(k, kv.second, "a loss weight must be >= 0");
    t.loss_weights[task] = w;
  }
}

TrainSection ours(const YamlReader& c, const YAML::Node& tr, const ModelConfig& m) {
  TrainSection t;
  if (!tr.IsDefined() || tr.IsNull()) return t;
  if (!tr.IsMap()) c.fail("train", tr, "expected a mapping, got " + describe(tr));
  const std::string p = "train.";
  t.batch_size = c.get(tr, p, "batch_size", t.batch_size);
  t.val_batch_size = c.get(tr, p, "val_batch_size", t.val_batch_size);
  t.epochs = c.get(tr, p, "epochs", t.epochs);
  t.steps = c.get(tr, p, "steps", t.steps);
  t.optimizer = c.get(tr, p, "optimizer", t.optimizer);
  t.lr = c.get(tr, p, "lr", t.lr);
  t.momentum = c.get(tr, p, "momentum", t.momentum);
  t.weight_decay = c.get(tr, p, "weight_decay", t.weight_decay);
  t.scheduler = c.get(tr, p, "scheduler", t.scheduler);
  t.poly_power = c.get(tr, p, "poly_power", t.poly_power);
  t.edge_pos_weight = c.get(tr, p, "edge_pos_weight", t.edge_pos_weight);
  t.expert_grad_scale = c.get(tr, p, "expert_grad_scale", t.expert_grad_scale);
  if (present(tr, "seed")) t.seed = static_cast<uint64_t>(c.to_int64(tr["seed"], "train.seed"));
  t.eval_every = c.get(tr, p, "eval_every", t.eval_every);
  t.eval_last_epochs = c.get(tr, p, "eval_last_epochs", t.eval_last_epochs);
  t.out_dir = c.get(tr, p, "out_dir", t.out_dir);
  if (present(tr, "loss_weights")) parse_loss_weights(c, tr["loss_weights"], "train.loss_weights", m, t);
  if (t.batch_size < 1) c.fail("train.batch_size", tr["batch_size"], "must be >= 1");
  if (t.val_batch_size < 1) c.fail("train.val_batch_size", tr["val_batch_size"], "must be >= 1");
  if (t.epochs < 1 && t.steps <= 0) c.fail("train.epochs", "epochs must be >= 1 unless steps > 0");
  check_lr(c, "train.lr", tr["lr"], t.lr);
  if (t.optimizer != "sgd" && t.optimizer != "adam" && t.optimizer != "adamw")
    c.fail("train.optimizer", tr["optimizer"], "unknown optimizer '" + t.optimizer + "' (sgd, adam, adamw)");
  if (t.scheduler != "poly" && t.scheduler != "constant" && t.scheduler != "cosine")
    c.fail("train.scheduler", tr["scheduler"], "unknown scheduler '" + t.scheduler + "' (poly, constant, cosine)");
  if (t.edge_pos_weight < 0 || t.edge_pos_weight > 1) c.fail("train.edge_pos_weight", "must be in [0, 1]");
  if (t.eval_every < 0) c.fail("train.eval_every", tr["eval_every"], "must be >= 0");
  if (t.eval_last_epochs < 0) c.fail("train.eval_last_epochs", tr["eval_last_epochs"], "must be >= 0");
  return t;
}

// The authors' experiment YAML, as train_fastmoe.py:163-190 and utils/config.py read it.
TrainSection authors(const YamlReader& c, const YAML::Node& root, const ModelConfig& m) {
  TrainSection t;
  if (present(root, "trBatch")) t.batch_size = c.to_int(root["trBatch"], "trBatch");
  if (present(root, "valBatch")) t.val_batch_size = c.to_int(root["valBatch"], "valBatch");
  if (present(root, "epochs")) t.epochs = c.to_int(root["epochs"], "epochs");
  if (present(root, "optimizer")) t.optimizer = c.to_string(root["optimizer"], "optimizer");
  if (present(root, "scheduler")) t.scheduler = c.to_string(root["scheduler"], "scheduler");
  const YAML::Node ok = root["optimizer_kwargs"];
  if (is_map(ok)) {
    if (present(ok, "lr")) t.lr = c.to_double(ok["lr"], "optimizer_kwargs.lr");
    check_lr(c, "optimizer_kwargs.lr", ok["lr"], t.lr);
    if (present(ok, "momentum")) t.momentum = c.to_double(ok["momentum"], "optimizer_kwargs.momentum");
    if (present(ok, "weight_decay")) t.weight_decay = c.to_double(ok["weight_decay"], "optimizer_kwargs.weight_decay");
  }
  const YAML::Node td = root["task_dictionary"];
  if (present(td, "edge_w")) t.edge_pos_weight = c.to_double(td["edge_w"], "task_dictionary.edge_w");
  const YAML::Node lk = root["loss_kwargs"];
  if (is_map(lk) && present(lk, "loss_weights"))
    parse_loss_weights(c, lk["loss_weights"], "loss_kwargs.loss_weights", m, t);
  // Their MultiTaskLoss indexes a weight for every task (loss_schemes.py:43-115).
  if (m.num_tasks() > 1 && is_map(lk) && present(lk, "loss_weights"))
    for (const auto& ts : m.tasks)
      if (!t.loss_weights.count(ts.name)) c.fail("loss_kwargs.loss_weights." + ts.name, "missing weight for task '" + ts.name + "'");
  // Validation in the last 10 epochs only when the file says so, else after every epoch
  // (train_fastmoe.py:419-425; the MoE files set it).
  if (present(root, "eval_final_10_epochs_only") &&
      c.to_bool(root["eval_final_10_epochs_only"], "eval_final_10_epochs_only"))
    t.eval_every = 0, t.eval_last_epochs = 10;
  t.seed = 0;  // train_fastmoe.py:86
  t.expert_grad_scale = 1.0;
  return t;
}

}  // namespace

double TrainSection::loss_weight(const std::string& task) const {
  auto it = loss_weights.find(task);
  return it == loss_weights.end() ? 1.0 : it->second;
}

TrainSection read_train_section(const ConfigFile& f) {
  const YamlReader c(f.path);
  TrainSection t;
  try {
    t = f.authors_format ? authors(c, f.doc, f.model) : ours(c, f.doc["train"], f.model);
  } catch (const YAML::Exception& e) {
    throw ConfigError(f.path + ": " + e.what());
  }
  // A task the file gives no weight takes the authors' weight for the data set (their configs'
  // loss_kwargs.loss_weights, e.g. configs/pascal/vit_moe/pup_moe_vit_small_multi_task_baseline.yml),
  // not 1: edge at 1 instead of 50 would train another model than the paper's.
  for (const auto& [task, w] : default_loss_weights(f.dataset))
    if (is_model_task(f.model, task) && !t.loss_weights.count(task)) t.loss_weights[task] = w;
  return t;
}

TrainConfig train_config_from(ConfigFile f) {
  TrainConfig t;
  static_cast<ConfigFile&>(t) = std::move(f);
  t.data = read_data_section(t);
  t.train = read_train_section(t);
  return t;
}

TrainConfig load_train_config(const std::string& path, const ConfigOverrides& overrides) {
  return train_config_from(load_config_file(path, overrides));
}

TrainOptions train_options_from(const TrainConfig& f) {
  TrainOptions o;
  const TrainSection& t = f.train;
  o.batch_size = t.batch_size;
  o.val_batch_size = t.val_batch_size;
  o.epochs = t.epochs;
  o.max_steps = t.steps;
  o.lr = t.lr;
  o.optimizer.type = t.optimizer;
  o.optimizer.momentum = t.momentum;
  o.optimizer.weight_decay = t.weight_decay;
  o.optimizer.expert_grad_scale = t.expert_grad_scale;
  o.schedule.kind = t.scheduler;
  o.schedule.power = t.poly_power;
  o.loss_weights = t.loss_weights;
  o.edge_pos_weight = t.edge_pos_weight;
  o.seed = t.seed;
  o.eval_every = t.eval_every;
  o.eval_last_epochs = t.eval_last_epochs;
  o.out_dir = t.out_dir;
  o.workers = f.data.num_workers;
  o.augment = f.data.augment;

  // The training-only keys of `train:` (our format only; absent keys keep their defaults).
  const YAML::Node extra = f.doc.IsMap() ? f.doc["train"] : YAML::Node();
  const YamlReader r(f.path);
  const std::string p = "train.";
  auto fail = [&](const char* k, const std::string& what) { r.fail(p + k, extra[k], what); };
  const std::string per = r.get(extra, p, "schedule_per", std::string("epoch"));
  if (per != "epoch" && per != "step") fail("schedule_per", "expected epoch or step, got '" + per + "'");
  o.schedule.per_step = per == "step";
  o.schedule.warmup_steps = r.get(extra, p, "warmup_steps", int64_t{0});
  o.optimizer.nesterov = r.get(extra, p, "nesterov", false);
  if (present(extra, "betas")) {
    const std::vector<double> b = r.to_doubles(extra["betas"], "train.betas");
    if (b.size() != 2 || b[0] < 0 || b[0] >= 1 || b[1] < 0 || b[1] >= 1) fail("betas", "expected [beta1, beta2] in [0, 1)");
    o.optimizer.beta1 = b[0], o.optimizer.beta2 = b[1];
  }
  o.optimizer.eps = r.get(extra, p, "eps", 1e-8);
  o.grad_accum = r.get(extra, p, "grad_accum", 1);
  const std::string loop = r.get(extra, p, "task_loop", std::string("auto"));
  if (loop == "auto") o.task_loop = f.model.gate == GateType::task_cond ? "one_by_one" : "all";
  else if (loop == "all" || loop == "one_by_one") o.task_loop = loop;
  else fail("task_loop", "expected auto, all or one_by_one, got '" + loop + "'");
  o.optimizer.expert_lr_scale = r.get(extra, p, "expert_lr_scale", 1.0);
  o.checkpoint_every = r.get(extra, p, "checkpoint_every", int64_t{0});
  o.log_every = r.get(extra, p, "log_every", 1);
  o.threads = r.get(extra, p, "threads", 0);
  o.init = r.get(extra, p, "init", std::string("random"));
  o.pretrained = r.get(extra, p, "pretrained", std::string());
  o.split_experts = r.get(extra, p, "split_experts", false);
  o.same_order_every_epoch = r.get(extra, p, "same_order_every_epoch", false);
  o.batch_stats = r.get(extra, p, "batch_stats", std::string("process"));
  if (o.batch_stats != "process" && o.batch_stats != "global")
    fail("batch_stats", "expected process or global, got '" + o.batch_stats + "'");
  o.expert_parallel = r.get(extra, p, "expert_parallel", false);
  if (present(extra, "delta_m_references")) {
    const YAML::Node refs = extra["delta_m_references"];
    if (!refs.IsMap()) fail("delta_m_references", "expected a mapping task: value");
    for (const auto& kv : refs) {
      const std::string task = kv.first.Scalar();
      const double v = r.to_double(kv.second, "train.delta_m_references." + task);
      if (!is_model_task(f.model, task)) fail("delta_m_references", "task '" + task + "' is not a task of this model");
      if (!(v > 0)) fail("delta_m_references", "reference of '" + task + "' must be > 0");
      o.delta_m_references[task] = v;
    }
  }

  if (o.grad_accum < 1) fail("grad_accum", "must be >= 1");
  if (o.schedule.warmup_steps < 0) fail("warmup_steps", "must be >= 0");
  if (o.optimizer.expert_lr_scale <= 0) fail("expert_lr_scale", "must be > 0");
  if (o.optimizer.expert_grad_scale <= 0) throw ConfigError(f.path + ": train.expert_grad_scale: must be > 0");
  if (o.checkpoint_every < 0) fail("checkpoint_every", "must be >= 0");
  if (o.log_every < 1) fail("log_every", "must be >= 1");
  if (o.threads < 0) fail("threads", "must be >= 0");
  if (o.init != "random" && o.init != "deit") fail("init", "expected random or deit, got '" + o.init + "'");
  if (o.init == "deit" && o.pretrained.empty()) fail("init", "init: deit needs 'pretrained: <DeiT weights file>'");
  if (o.task_loop == "one_by_one" && f.model.tam)
    throw ConfigError(f.path + ": train.task_loop one_by_one cannot train a model with tam: true (the authors' "
                      "MultiTaskLoss needs every task's output at once, quirk Q3); set model.tam: false");
  return o;
}

void check_expert_parallel(const TrainOptions& o, const ModelConfig& m, int processes) {
  if (!o.expert_parallel || processes < 2) return;  // one process holds every expert anyway
  if (m.moe_blocks.empty()) throw ConfigError("train.expert_parallel: the model has no MoE layer to shard");
  if (m.moe_experts % processes != 0)
    throw ConfigError("train.expert_parallel: " + std::to_string(processes) + " processes do not divide the " +
                      std::to_string(m.moe_experts) + " experts of each MoE layer (each process holds E/N of them)");
}

bool validation_due(int64_t epochs_done, int64_t epochs, int eval_every, int eval_last_epochs) {
  if (eval_every > 0 && epochs_done % eval_every == 0) return true;
  // The authors validate when epoch + 1 > epochs - 10, epoch 0-based (train_fastmoe.py:419-425).
  return eval_last_epochs > 0 && epochs_done > epochs - eval_last_epochs;
}

DeitWeights deit_weights_for(int embed_dim) {
  // The DeiT release's files, which timm's deit_*_patch16_224 load; the authors' ViT-S entry points
  // to the small one (models/vision_transformer_moe.py:36-39). timm's hub cache keeps the URL's name.
  const std::string base = "https://dl.fbaipublicfiles.com/deit/";
  auto make = [&](const std::string& model, const std::string& hash) {
    return DeitWeights{model, model + "-" + hash + ".pth", base + model + "-" + hash + ".pth"};
  };
  if (embed_dim == 192) return make("deit_tiny_patch16_224", "a1311bcf");
  if (embed_dim == 384) return make("deit_small_patch16_224", "cd65a155");
  if (embed_dim == 768) return make("deit_base_patch16_224", "b5f2ef4d");
  return {};
}

void check_init_weights(const TrainOptions& o, const ModelConfig& m, const std::string& config_path) {
  if (o.init != "deit" || file_exists(o.pretrained)) return;
  const DeitWeights d = deit_weights_for(m.embed_dim);
  const std::string what = d.model.empty()
                               ? "DeiT ImageNet weights of width " + std::to_string(m.embed_dim)
                               : "timm's " + d.model + " (" + d.file + ", " + d.url + ")";
  const bool relative = o.pretrained.rfind('/', 0) != 0;
  throw IoError("init: deit needs the DeiT weights file " + o.pretrained + ", which does not exist: fetch " + what +
                " and put it at " + o.pretrained + " (train.pretrained of " + config_path +
                (relative ? ", relative to the working directory" : "") +
                "), or pass --from-scratch to train from random initialisation instead");
}

std::string TrainOptions::trajectory_json() const {
  nlohmann::json j;
  j["batch_size"] = batch_size;
  j["grad_accum"] = grad_accum;
  j["epochs"] = epochs;
  j["max_steps"] = max_steps;
  j["lr"] = lr;
  j["optimizer"] = {{"type", optimizer.type},
                    {"momentum", optimizer.momentum},
                    {"nesterov", optimizer.nesterov},
                    {"weight_decay", optimizer.weight_decay},
                    {"betas", {optimizer.beta1, optimizer.beta2}},
                    {"eps", optimizer.eps},
                    {"expert_grad_scale", optimizer.expert_grad_scale},
                    {"expert_lr_scale", optimizer.expert_lr_scale}};
  j["schedule"] = {{"kind", schedule.kind},
                   {"per_step", schedule.per_step},
                   {"power", schedule.power},
                   {"warmup_steps", schedule.warmup_steps}};
  j["loss_weights"] = loss_weights;
  j["edge_pos_weight"] = edge_pos_weight;
  j["task_loop"] = task_loop;
  j["seed"] = seed;
  j["same_order_every_epoch"] = same_order_every_epoch;
  j["augment"] = augment;
  j["init"] = init;
  j["pretrained"] = pretrained;
  j["split_experts"] = split_experts;
  return j.dump();
}

std::string trajectory_differences(const std::string& saved, const std::string& now, bool changeable) {
  nlohmann::json a, b;
  try {
    a = nlohmann::json::parse(saved);
    b = nlohmann::json::parse(now);
  } catch (const nlohmann::json::exception&) {
    return "training options: not comparable (stored options are not valid JSON)";
  }
  // What --allow-changes accepts: settings of the update and of the run length, not of the data
  // order, the batch or the task loop (the checkpoint's position and state are counted in those).
  auto accepted = [&](const std::string& k) {
    static const std::set<std::string> keys = {"lr", "schedule", "epochs", "max_steps", "loss_weights", "edge_pos_weight"};
    if (keys.count(k)) return true;
    return k == "optimizer" && a.contains(k) && a[k].contains("type") && b[k].contains("type") &&
           a[k]["type"] == b[k]["type"];
  };
  std::string out;
  for (auto& [k, v] : b.items())
    if ((!a.contains(k) || a[k] != v) && (changeable || !accepted(k)))
      out += k + ": " + (a.contains(k) ? a[k].dump() : std::string("(absent)")) + " -> " + v.dump() + "\n";
  for (auto& [k, v] : a.items())
    if (!b.contains(k)) out += k + ": " + v.dump() + " -> (absent)\n";
  return out;
}

}  // namespace m3vit
