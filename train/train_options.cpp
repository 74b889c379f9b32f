// Training options from a config file (see train_options.h for the keys).
#include "train/train_options.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/errors.h"

namespace m3vit {

namespace {

struct Reader {
  const std::string& file;
  const YAML::Node& node;

  bool has(const char* k) const { return node.IsDefined() && node.IsMap() && node[k].IsDefined() && !node[k].IsNull(); }
  [[noreturn]] void fail(const char* k, const std::string& what) const {
    std::string where = file + ": train." + k;
    if (has(k) && node[k].Mark().line >= 0) where += " (line " + std::to_string(node[k].Mark().line + 1) + ")";
    throw ConfigError(where + ": " + what);
  }
  template <class T>
  T get(const char* k, T fallback, const char* expected) const {
    if (!has(k)) return fallback;
    try {
      return node[k].as<T>();
    } catch (const YAML::Exception&) {
      fail(k, std::string("expected ") + expected);
    }
  }
};

}  // namespace

TrainOptions train_options_from(const ConfigFile& f) {
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
  o.out_dir = t.out_dir;
  o.workers = f.data.num_workers;
  o.augment = f.data.augment;

  const YAML::Node extra = f.doc.IsMap() ? f.doc["train"] : YAML::Node();
  Reader r{f.path, extra};
  const std::string per = r.get<std::string>("schedule_per", "epoch", "epoch or step");
  if (per != "epoch" && per != "step") r.fail("schedule_per", "expected epoch or step, got '" + per + "'");
  o.schedule.per_step = per == "step";
  o.schedule.warmup_steps = r.get<int64_t>("warmup_steps", 0, "an integer");
  o.optimizer.nesterov = r.get<bool>("nesterov", false, "true or false");
  if (r.has("betas")) {
    auto b = r.get<std::vector<double>>("betas", {}, "[beta1, beta2]");
    if (b.size() != 2 || b[0] < 0 || b[0] >= 1 || b[1] < 0 || b[1] >= 1) r.fail("betas", "expected [beta1, beta2] in [0, 1)");
    o.optimizer.beta1 = b[0], o.optimizer.beta2 = b[1];
  }
  o.optimizer.eps = r.get<double>("eps", 1e-8, "a number");
  o.grad_accum = r.get<int>("grad_accum", 1, "an integer");
  const std::string loop = r.get<std::string>("task_loop", "auto", "auto, all or one_by_one");
  if (loop == "auto") o.task_loop = f.model.gate == GateType::task_cond ? "one_by_one" : "all";
  else if (loop == "all" || loop == "one_by_one") o.task_loop = loop;
  else r.fail("task_loop", "expected auto, all or one_by_one, got '" + loop + "'");
  o.optimizer.expert_lr_scale = r.get<double>("expert_lr_scale", 1.0, "a number");
  o.checkpoint_every = r.get<int64_t>("checkpoint_every", 0, "an integer");
  o.log_every = r.get<int>("log_every", 1, "an integer");
  o.threads = r.get<int>("threads", 0, "an integer");
  o.init = r.get<std::string>("init", "random", "random or deit");
  o.pretrained = r.get<std::string>("pretrained", "", "a file path");
  o.split_experts = r.get<bool>("split_experts", false, "true or false");
  o.same_order_every_epoch = r.get<bool>("same_order_every_epoch", false, "true or false");
  if (r.has("delta_m_references")) {
    o.delta_m_references = r.get<std::map<std::string, double>>("delta_m_references", {}, "a mapping task: value");
    for (const auto& [task, v] : o.delta_m_references) {
      bool known = false;
      for (const auto& ts : f.model.tasks) known |= ts.name == task;
      if (!known) r.fail("delta_m_references", "task '" + task + "' is not a task of this model");
      if (!(v > 0)) r.fail("delta_m_references", "reference of '" + task + "' must be > 0");
    }
  }

  if (o.grad_accum < 1) r.fail("grad_accum", "must be >= 1");
  if (o.schedule.warmup_steps < 0) r.fail("warmup_steps", "must be >= 0");
  if (o.optimizer.expert_lr_scale <= 0) r.fail("expert_lr_scale", "must be > 0");
  if (o.optimizer.expert_grad_scale <= 0) throw ConfigError(f.path + ": train.expert_grad_scale: must be > 0");
  if (o.checkpoint_every < 0) r.fail("checkpoint_every", "must be >= 0");
  if (o.log_every < 1) r.fail("log_every", "must be >= 1");
  if (o.threads < 0) r.fail("threads", "must be >= 0");
  if (o.init != "random" && o.init != "deit") r.fail("init", "expected random or deit, got '" + o.init + "'");
  if (o.init == "deit" && o.pretrained.empty()) r.fail("init", "init: deit needs 'pretrained: <DeiT weights file>'");
  if (o.task_loop == "one_by_one" && f.model.tam)
    throw ConfigError(f.path + ": train.task_loop one_by_one cannot train a model with tam: true (the authors' "
                      "MultiTaskLoss needs every task's output at once, quirk Q3); set model.tam: false");
  return o;
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

std::string trajectory_differences(const std::string& saved, const std::string& now) {
  nlohmann::json a, b;
  try {
    a = nlohmann::json::parse(saved);
    b = nlohmann::json::parse(now);
  } catch (const nlohmann::json::exception&) {
    return "training options: not comparable (stored options are not valid JSON)";
  }
  std::string out;
  for (auto& [k, v] : b.items())
    if (!a.contains(k) || a[k] != v)
      out += k + ": " + (a.contains(k) ? a[k].dump() : std::string("(absent)")) + " -> " + v.dump() + "\n";
  for (auto& [k, v] : a.items())
    if (!b.contains(k)) out += k + ": " + v.dump() + " -> (absent)\n";
  return out;
}

}  // namespace m3vit
