// Images, model traces and encoder weights for the hardware commands (cli/model_trace.h).
#include "common/pch/torch_pch.h"

#include "cli/model_trace.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "cli/model_weights.h"
#include "common/errors.h"
#include "common/image_io.h"
#include "common/progress.h"
#include "data/image_ops.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "eval/depth_meter.h"
#include "eval/normals_meter.h"
#include "eval/prediction.h"
#include "eval/saliency_meter.h"
#include "eval/segmentation_meter.h"
#include "hw/fx/fx_encoder.h"
#include "hw/fx/ref_encoder.h"
#include "io/tensor_data.h"
#include "model/multitask_model.h"

namespace m3vit::cli {

namespace {

// [1, 3, H, W] float32 from 8-bit RGB [3, H, W] at the model's size, ImageNet-normalised.
torch::Tensor normalised_input(const std::vector<uint8_t>& bytes, const ModelConfig& cfg) {
  torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(bytes.data()), {1, 3, cfg.img_h, cfg.img_w}, torch::kUInt8)
                        .to(torch::kFloat32)
                        .div(255.0);
  return ((x - torch::tensor({kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]}).view({1, 3, 1, 1})) /
          torch::tensor({kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]}).view({1, 3, 1, 1}))
      .contiguous();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// [3, H, W] 0..255 floats -> bytes, rounded and clamped.
std::vector<uint8_t> to_bytes(const ImageF& im) {
  std::vector<uint8_t> out(im.data.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::clamp(std::lround(im.data[i]), 0L, 255L));
  return out;
}

}  // namespace

std::string ImageSource::describe() const {
  if (!dir.empty()) return "images from " + dir + (resize ? " (resized)" : "");
  return std::to_string(synthetic) + " synthetic scenes (seed " + std::to_string(seed) + ")";
}

std::vector<std::vector<uint8_t>> load_images8(const ImageSource& src, const ModelConfig& cfg) {
  if (cfg.in_chans != 3) throw ConfigError("the hardware commands take RGB models; this one has " + std::to_string(cfg.in_chans) + " channels");
  std::vector<std::vector<uint8_t>> out;
  if (!src.dir.empty()) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(src.dir)) throw IoError("--images " + src.dir + ": no such folder");
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(src.dir)) {
      std::string ext = lower(e.path().extension().string());
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw IoError("--images " + src.dir + ": no PNG or JPEG files");
    if (src.limit > 0 && static_cast<int>(files.size()) > src.limit) files.resize(src.limit);
    for (const auto& path : files) {
      Image8 img = read_image(path, 3);
      ImageF f(3, img.height, img.width);
      for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x)
          for (int c = 0; c < 3; ++c) f.at(c, y, x) = img.pixels[(static_cast<size_t>(y) * img.width + x) * 3 + c];
      if (img.height != cfg.img_h || img.width != cfg.img_w) {
        if (!src.resize)
          throw ShapeError("image " + path + " is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                           " but model " + cfg.name + " takes " + std::to_string(cfg.img_w) + "x" +
                           std::to_string(cfg.img_h) + " (pass --resize to scale it)");
        f = resize(f, cfg.img_h, cfg.img_w, Interp::linear);
      }
      out.push_back(to_bytes(f));
    }
    return out;
  }
  if (src.synthetic <= 0) throw ConfigError("no images: give --images DIR or --synthetic N");
  SyntheticOptions o;
  o.seed = src.seed;
  o.split = "val";
  o.size = src.synthetic;
  o.height = cfg.img_h;
  o.width = cfg.img_w;
  SyntheticDataset ds(o);
  for (int i = 0; i < src.synthetic; ++i) out.push_back(to_bytes(ds.get(i).image));
  return out;
}

namespace {

MultiTaskModel build_model(const ModelConfig& cfg, const std::string& weights, uint64_t seed, std::string* source) {
  torch::manual_seed(seed);
  MultiTaskModel model(cfg);
  *source = "random weights (seed " + std::to_string(seed) + ")";
  if (!weights.empty()) {
    if (!std::filesystem::exists(weights)) throw IoError("weights " + weights + ": no such file");
    *source = load_model_weights(*model, weights);
  }
  model->eval();
  return model;
}

}  // namespace

hw::ExpertTrace trace_model(const ModelConfig& cfg, const std::string& weights, uint64_t seed, int task,
                            const std::vector<std::vector<uint8_t>>& images, const std::string& images_note,
                            int threads) {
  if (cfg.moe_blocks.empty()) throw ConfigError("config '" + cfg.name + "' has no MoE layers: nothing to trace");
  if (images.empty()) throw ConfigError("no images to trace");
  if (threads > 0) at::set_num_threads(threads);
  std::string source;
  MultiTaskModel model = build_model(cfg, weights, seed, &source);
  hw::ExpertTrace t;
  t.cfg = cfg;
  t.task = cfg.tasks.at(task).name;
  t.source = "model " + cfg.name + " (" + source + "), " + images_note;
  t.images = static_cast<int>(images.size());
  t.layers = static_cast<int>(cfg.moe_blocks.size());
  t.tokens = cfg.num_tokens();
  t.k = cfg.moe_top_k;
  t.idx.resize(static_cast<size_t>(t.images) * t.layers * t.tokens * t.k);
  t.w.resize(t.idx.size());
  torch::NoGradGuard no_grad;
  ProgressBar bar("trace", t.images, "img");
  for (int i = 0; i < t.images; ++i) {
    const auto& im = images[i];
    ForwardTrace tr;
    model->forward_features(normalised_input(im, cfg), task, &tr);
    if (static_cast<int>(tr.topk_idx.size()) != t.layers)
      throw ShapeError("model returned routing for " + std::to_string(tr.topk_idx.size()) + " MoE layers, expected " +
                       std::to_string(t.layers));
    for (int l = 0; l < t.layers; ++l) {
      torch::Tensor idx = tr.topk_idx[l].to(torch::kInt32).contiguous();
      torch::Tensor w = tr.topk_w[l].to(torch::kFloat32).contiguous();
      if (idx.numel() != static_cast<int64_t>(t.tokens) * t.k)
        throw ShapeError("routing of MoE layer " + std::to_string(l) + " has " + std::to_string(idx.numel()) +
                         " entries, expected tokens x k = " + std::to_string(t.tokens * t.k));
      std::copy_n(idx.data_ptr<int32_t>(), idx.numel(), t.idx.begin() + t.offset(i, l, 0));
      std::copy_n(w.data_ptr<float>(), w.numel(), t.w.begin() + t.offset(i, l, 0));
    }
    bar.update(i + 1);
  }
  bar.finish();
  t.validate("model trace");
  return t;
}

hw::EncoderWeights model_encoder_weights(const ModelConfig& cfg, const std::string& weights, uint64_t seed) {
  std::string source;
  MultiTaskModel model = build_model(cfg, weights, seed, &source);
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model->named_parameters()) params[p.key()] = p.value();
  for (const auto& b : model->named_buffers()) params[b.key()] = b.value();
  return hw::encoder_weights_from(cfg, [&](const std::string& name, const std::vector<int64_t>& shape) {
    auto it = params.find(name);
    if (it == params.end()) throw FormatError("model has no tensor '" + name + "'");
    torch::Tensor t = it->second.detach().to(torch::kFloat32).contiguous();
    if (t.sizes().vec() != shape)
      throw ShapeError("model tensor '" + name + "' has shape " + shape_str(t.sizes().vec()) + ", expected " +
                       shape_str(shape));
    return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  });
}

std::pair<double, double> reference_vs_model(const ModelConfig& cfg, const std::string& weights, uint64_t seed,
                                             int task, const std::vector<std::vector<uint8_t>>& images) {
  std::string source;
  MultiTaskModel model = build_model(cfg, weights, seed, &source);
  hw::EncoderWeights ew = model_encoder_weights(cfg, weights, seed);
  torch::NoGradGuard no_grad;
  double worst = 0, scale = 0;
  for (const auto& img : images) {
    torch::Tensor y = model->forward_features(normalised_input(img, cfg), task).to(torch::kFloat32).contiguous();
    hw::EncoderOutput r = hw::ref_encoder(ew, img.data(), task);
    const float* p = y.data_ptr<float>();
    for (size_t i = 0; i < r.out.size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(p[i]) - r.out[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(p[i])));
    }
  }
  return {worst, scale};
}

namespace {

// [1, C, H, W] -> planar ImageF [C, H, W].
ImageF to_image(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat32).contiguous()[0];
  ImageF im(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), static_cast<int>(c.size(2)));
  std::copy_n(c.data_ptr<float>(), c.numel(), im.data.begin());
  return im;
}

// One metric over a set of images, for one task.
struct TaskScorer {
  std::string task;
  std::unique_ptr<SegmentationMeter> seg;
  std::unique_ptr<SaliencyMeter> sal;
  std::unique_ptr<NormalsMeter> nrm;
  std::unique_ptr<DepthMeter> dep;
  TaskScorer(const std::string& t, int channels) : task(t) {
    if (t == "semseg") seg = std::make_unique<SegmentationMeter>(channels);
    else if (t == "human_parts") seg = std::make_unique<SegmentationMeter>(channels, true);
    else if (t == "sal") sal = std::make_unique<SaliencyMeter>();
    else if (t == "normals") nrm = std::make_unique<NormalsMeter>();
    else if (t == "depth") dep = std::make_unique<DepthMeter>();
  }
  void update(const ImageF& stored, const ImageF& gt) {
    if (seg) seg->update(stored, gt, task);
    if (sal) sal->update(stored, gt, task);
    if (nrm) nrm->update(stored, gt, task);
    if (dep) dep->update(stored, gt, task);
  }
  double value() const {
    if (seg) return seg->result().miou;
    if (sal) return sal->result().miou;
    if (nrm) return nrm->result().mean;
    return dep->result().rmse;
  }
};

}  // namespace

std::vector<TaskMetricChange> fx_metric_change(const ModelConfig& cfg, const std::string& weights, uint64_t seed,
                                               int images, uint64_t image_seed, const hw::FxOptions& fx_options) {
  if (images < 1) throw ConfigError("metric change: need at least one image");
  std::string source;
  MultiTaskModel model = build_model(cfg, weights, seed, &source);
  hw::EncoderWeights ew = model_encoder_weights(cfg, weights, seed);
  std::vector<std::string> names;
  for (const auto& t : cfg.tasks) names.push_back(t.name);
  SyntheticOptions o;
  o.seed = image_seed;
  o.split = "val";
  o.size = images;
  o.height = cfg.img_h;
  o.width = cfg.img_w;
  o.tasks = names;
  SyntheticDataset ds(o);
  const AugmentConfig aug = augment_config("synthetic", false, cfg.img_h, cfg.img_w);
  std::vector<TaskMetricChange> out;
  torch::NoGradGuard no_grad;
  for (int t = 0; t < cfg.num_tasks(); ++t) {
    TaskMetricChange r;
    r.task = cfg.tasks[t].name;
    const int ch = cfg.tasks[t].out_channels;
    if (r.task == "edge") {
      r.note = "edge is not scored (the authors leave it out of Δm)";
      out.push_back(r);
      continue;
    }
    if ((r.task == "semseg" && ch != task_channels("semseg", "synthetic")) ||
        (r.task == "human_parts" && ch != task_channels("human_parts", "synthetic"))) {
      r.note = "the synthetic labels have " + std::to_string(task_channels(r.task, "synthetic")) +
               " classes, the model " + std::to_string(ch);
      out.push_back(r);
      continue;
    }
    r.metric = (r.task == "normals") ? "mean angle (deg)" : (r.task == "depth") ? "RMSE" : "mIoU";
    r.higher_is_better = !(r.task == "normals" || r.task == "depth");
    TaskScorer fp(r.task, ch), fx(r.task, ch);
    // Task t's routers: the fixed-point weights are converted once per task.
    hw::FxSelected encoder = hw::select_fx_encoder(ew, t, fx_options);
    auto run_fx = [&](const std::vector<uint8_t>& img) {
      std::vector<float> tok = encoder.run(img.data(), nullptr);
      return torch::from_blob(tok.data(), {1, cfg.num_tokens(), cfg.embed_dim}, torch::kFloat32).clone();
    };
    ProgressBar bar("metric " + r.task, images, "img");
    for (int i = 0; i < images; ++i) {
      Sample raw = ds.get(i);
      std::vector<uint8_t> bytes = to_bytes(raw.image);
      Sample s = transform_sample(raw, aug, static_cast<uint64_t>(i));
      const ImageF& gt = s.label(r.task);
      if (all_ignored(gt)) continue;
      torch::Tensor y32 = model->forward_task(normalised_input(bytes, cfg), t);
      torch::Tensor yfx = model->decoders[t]->forward(run_fx(bytes), cfg.grid_h(), cfg.grid_w());
      fp.update(stored_prediction(r.task, to_image(y32), gt.h, gt.w), gt);
      fx.update(stored_prediction(r.task, to_image(yfx), gt.h, gt.w), gt);
      ++r.images;
      bar.update(i + 1);
    }
    bar.finish();
    r.fp32 = fp.value();
    r.fixed = fx.value();
    out.push_back(r);
  }
  return out;
}

}  // namespace m3vit::cli
