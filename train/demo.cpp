// `m3vit demo` (see demo.h): train, score, trace and report on the synthetic scenes.
#include "common/pch/torch_pch.h"

#include "train/demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/errors.h"
#include "common/image_io.h"
#include "common/visualize.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "train/data_setup.h"
#include "train/report.h"
#include "train/trainer.h"

namespace m3vit {

namespace {

using Clock = std::chrono::steady_clock;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

Image8 blank(int h, int w) {
  Image8 im;
  im.width = w, im.height = h, im.channels = 3;
  im.pixels.assign(static_cast<size_t>(w) * h * 3, 0);
  return im;
}

void put(Image8& im, size_t p, const std::array<uint8_t, 3>& c) {
  im.pixels[p * 3] = c[0], im.pixels[p * 3 + 1] = c[1], im.pixels[p * 3 + 2] = c[2];
}

const std::array<uint8_t, 3> kIgnoreGray = {128, 128, 128};

// The network input back to RGB: undo the ImageNet normalisation of the transform.
Image8 input_picture(const float* chw, int h, int w) {
  Image8 im = blank(h, w);
  const size_t np = static_cast<size_t>(h) * w;
  for (size_t p = 0; p < np; ++p)
    for (int c = 0; c < 3; ++c) {
      const float v = (chw[c * np + p] * kImageNetStd[c] + kImageNetMean[c]) * 255.f;
      im.pixels[p * 3 + c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  return im;
}

// Depth pictures share one range (the valid ground truth's) so truth and prediction compare.
Image8 depth_picture(const float* d, int h, int w, const float* valid_ref, double lo, double hi) {
  Image8 im = blank(h, w);
  for (size_t p = 0; p < static_cast<size_t>(h) * w; ++p) {
    if (valid_ref && valid_ref[p] == kIgnoreLabel) {
      put(im, p, kIgnoreGray);
      continue;
    }
    put(im, p, heat_color(static_cast<float>((d[p] - lo) / std::max(hi - lo, 1e-6))));
  }
  return im;
}

// A transformed label map as a picture in the same colours visualize_task uses for predictions;
// ignored pixels (255) gray.
Image8 truth_picture(const std::string& task, const float* lab, int h, int w, double depth_lo, double depth_hi) {
  const size_t np = static_cast<size_t>(h) * w;
  if (task == "depth") return depth_picture(lab, h, w, lab, depth_lo, depth_hi);
  Image8 im = blank(h, w);
  for (size_t p = 0; p < np; ++p) {
    if (task == "normals") {
      if (lab[p] == kIgnoreLabel) {
        put(im, p, kIgnoreGray);
        continue;
      }
      for (int c = 0; c < 3; ++c)
        im.pixels[p * 3 + c] = static_cast<uint8_t>(std::clamp(std::lround((lab[c * np + p] + 1) * 127.5), 0L, 255L));
    } else if (lab[p] == kIgnoreLabel) {
      put(im, p, kIgnoreGray);
    } else if (task == "semseg" || task == "human_parts") {
      put(im, p, palette_color(static_cast<int>(lab[p])));
    } else {  // sal, edge: {0, 1}
      put(im, p, heat_color(lab[p]));
    }
  }
  return im;
}

std::string describe_model(const ModelConfig& m, int64_t params) {
  std::string s = "d " + std::to_string(m.embed_dim) + ", " + std::to_string(m.depth) + " blocks, " +
                  std::to_string(m.num_heads) + " heads of " + std::to_string(m.head_dim()) + ", input " +
                  std::to_string(m.img_h) + "x" + std::to_string(m.img_w) + ", ";
  if (m.moe_blocks.empty()) {
    s += "dense MLPs (M-ViT baseline)";
  } else {
    s += std::to_string(m.moe_experts) + " experts top-" + std::to_string(m.moe_top_k) + " in blocks";
    for (int b : m.moe_blocks) s += " " + std::to_string(b);
    s += std::string(", ") + to_string(m.gate) + " gate";
  }
  return s + ", " + fmt("%.2f", params / 1e6) + " M parameters";
}

}  // namespace

DemoOutcome run_demo(const DemoOptions& opt) {
  namespace fs = std::filesystem;
  const auto t0 = Clock::now();
  DemoOutcome res;
  TrainConfig f = load_train_config(opt.config);
  if (opt.dense) f.model = dense_baseline(f.model);
  TrainOptions o = train_options_from(f);
  o.out_dir = opt.out_dir + "/train";
  o.threads = opt.threads;
  o.eval_every = 0;  // one validation, at the end
  o.progress = opt.progress;
  if (opt.steps > 0) {
    o.max_steps = opt.steps;
  } else {
    o.time_budget_s = opt.train_seconds;
  }
  at::set_num_threads(opt.threads);
  if (opt.threads > 1 && !std::getenv("OMP_WAIT_POLICY"))
    std::fprintf(stderr,
                 "note: OMP_WAIT_POLICY is not set. If other programs keep the cores busy, OpenMP's spinning "
                 "threads can slow training many times over; scripts/demo.sh sets OMP_WAIT_POLICY=passive "
                 "(or use --threads 1).\n");
  std::error_code ec;
  fs::create_directories(opt.out_dir + "/images", ec);
  if (ec) throw IoError("cannot create " + opt.out_dir + "/images: " + ec.message());

  auto val = open_dataset(f, "val");
  std::fprintf(stderr, "data: %s scenes, %d train / %d val, rendered on the fly at %dx%d\n", f.data.dataset.c_str(),
               f.data.synthetic_train_images, f.data.synthetic_val_images, f.model.img_h, f.model.img_w);
  EvalOptions eo;
  eo.batch_size = o.val_batch_size;
  eo.workers = o.workers;
  eo.references = o.delta_m_references;
  eo.progress = opt.progress;
  if (opt.evaluate_init) {
    std::fprintf(stderr, "scoring the model at initialisation\n");
    MultiTaskModel init = build_model(f, o);
    res.before = evaluate_model(*init, *val, eo);
    res.has_before = true;
  }

  std::fprintf(stderr, "training %s\n", opt.steps > 0 ? (std::to_string(opt.steps) + " steps").c_str()
                                                      : ("for " + fmt("%.0f", opt.train_seconds) + " s").c_str());
  TrainRunOptions run;
  run.overwrite = true;
  TrainOutcome tr = run_training(f, o, run);
  if (tr.signal) throw Error("demo interrupted by signal " + std::to_string(tr.signal));
  res.after = tr.last_eval;
  res.steps = tr.position.step;
  res.train_seconds = tr.train_seconds;
  res.images_per_second = tr.images_per_second;

  // Single-task inference and router traces with the trained weights.
  MultiTaskModel model = load_model_for_eval(f.model, final_model_path(o.out_dir));
  const ModelConfig& cfg = f.model;
  std::vector<std::string> tasks;
  for (const auto& ts : cfg.tasks) tasks.push_back(ts.name);
  DemoReport rep;
  rep.tasks = tasks;
  LoaderOptions lo = val_loader_options(f, std::max(1, opt.pictures), 0);
  torch::NoGradGuard no_grad;
  {
    Loader loader(*val, lo);
    Batch b = loader.next();
    TensorBatch tb = tensor_view(b);
    const int H = b.height, W = b.width;
    const size_t np = static_cast<size_t>(H) * W;
    std::map<std::string, torch::Tensor> outs;
    for (const auto& t : tasks) outs[t] = model->forward_task(tb.images, cfg.task_index(t)).contiguous();
    for (int i = 0; i < std::min(b.size, opt.pictures); ++i) {
      PictureRow row;
      row.id = b.ids[i];
      row.input = "images/" + b.ids[i] + "_input.png";
      write_png(opt.out_dir + "/" + row.input, input_picture(b.image.data() + i * 3 * np, H, W));
      for (const auto& t : tasks) {
        const int C = b.channels.at(t);
        const float* lab = b.labels.at(t).data() + static_cast<size_t>(i) * C * np;
        torch::Tensor out = outs.at(t)[i].contiguous();
        double lo_d = 0, hi_d = 1;
        if (t == "depth") {  // the range of the valid ground truth
          lo_d = 1e30, hi_d = -1e30;
          for (size_t p = 0; p < np; ++p)
            if (lab[p] != kIgnoreLabel) lo_d = std::min<double>(lo_d, lab[p]), hi_d = std::max<double>(hi_d, lab[p]);
          if (lo_d > hi_d) lo_d = 0, hi_d = 1;
        }
        const std::string gt_file = "images/" + b.ids[i] + "_" + t + "_truth.png";
        const std::string pred_file = "images/" + b.ids[i] + "_" + t + "_pred.png";
        write_png(opt.out_dir + "/" + gt_file, truth_picture(t, lab, H, W, lo_d, hi_d));
        Image8 pred = t == "depth" ? depth_picture(out.data_ptr<float>(), H, W, nullptr, lo_d, hi_d)
                                   : visualize_task(t, out.data_ptr<float>(), static_cast<int>(out.size(0)), H, W);
        write_png(opt.out_dir + "/" + pred_file, pred);
        row.gt_pred[t] = {gt_file, pred_file};
      }
      rep.pictures.push_back(row);
    }
  }

  // Expert usage: every token of every validation image, per task and MoE layer.
  if (!cfg.moe_blocks.empty()) {
    ExpertUsage& u = rep.usage;
    u.tasks = tasks;
    u.moe_blocks = cfg.moe_blocks;
    u.experts = cfg.moe_experts;
    std::vector<std::vector<torch::Tensor>> counts(tasks.size());
    LoaderOptions ul = val_loader_options(f, o.val_batch_size, o.workers);
    Loader loader(*val, ul);
    for (int64_t bi = 0; bi < loader.batches_per_epoch(); ++bi) {
      Batch b = loader.next();
      TensorBatch tb = tensor_view(b);
      for (size_t t = 0; t < tasks.size(); ++t) {
        ForwardTrace trace;
        model->forward_task(tb.images, cfg.task_index(tasks[t]), &trace);
        if (counts[t].empty()) counts[t].assign(trace.topk_idx.size(), torch::zeros({cfg.moe_experts}, torch::kFloat64));
        for (size_t l = 0; l < trace.topk_idx.size(); ++l)
          counts[t][l] += torch::bincount(trace.topk_idx[l].reshape({-1}), {}, cfg.moe_experts).to(torch::kFloat64);
      }
    }
    for (size_t t = 0; t < tasks.size(); ++t) {
      std::vector<std::vector<double>> layers;
      for (auto& c : counts[t]) {
        auto share = c / std::max(c.sum().item<double>(), 1.0);
        layers.emplace_back(share.data_ptr<double>(), share.data_ptr<double>() + cfg.moe_experts);
      }
      u.share.push_back(layers);
    }
  }

  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  res.total_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  rep.title = "M³ViT demo: " + cfg.name;
  rep.facts = {
      {"model", describe_model(cfg, params)},
      {"tasks", [&] {
         std::string s;
         for (const auto& ts : cfg.tasks) s += (s.empty() ? "" : ", ") + ts.name + " (" + std::to_string(ts.out_channels) + ")";
         return s;
       }()},
      {"data", "synthetic scenes rendered on the fly: " + std::to_string(f.data.synthetic_train_images) + " train, " +
                   std::to_string(f.data.synthetic_val_images) + " validation (seed " +
                   std::to_string(f.data.synthetic_seed) + ")"},
      {"training", std::to_string(res.steps) + " steps of " + std::to_string(o.batch_size) + " images, " +
                       o.optimizer.type + " lr " + fmt("%g", o.lr) + " (" + o.schedule.kind +
                       (o.schedule.per_step ? " per step" : " per epoch") + "), seed " + std::to_string(o.seed)},
      {"time", fmt("%.0f", res.train_seconds) + " s training (" + fmt("%.1f", res.images_per_second) + " img/s on " +
                   std::to_string(opt.threads) + " threads), " + fmt("%.0f", res.total_seconds) + " s in all"},
      {"files", "train/train_log.jsonl, train/model.safetensors, train/eval.json, images/"}};
  rep.has_before = res.has_before;
  rep.before = res.before;
  rep.after = res.after;
  rep.curve = read_loss_curve(train_log_path(o.out_dir));
  write_report(opt.out_dir, rep);
  res.report_path = opt.out_dir + "/report.html";
  return res;
}

}  // namespace m3vit
