// Evaluation (train/evaluate.cpp) on synthetic scenes cached in the real PASCAL_MT layout, at an original
// resolution (40x72) different from the model input (32x64), against tests/train/eval_oracle.py, which
// redoes the authors' pipeline from the raw network outputs with numpy: post-processing, OpenCV-style
// resizing, uint8 truncation, skipping all-ignore images, the metrics and Δm.
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "tests/train/train_test_util.h"
#include "train/data_setup.h"
#include "train/evaluate.h"
#include "model/tensor_io.h"

namespace m3vit {
namespace {

// The PASCAL tasks of the training-test config, reading the cache in `root`.
TrainConfig pascal_config(const std::string& root) {
  TrainConfig f = load_train_config(std::string(M3VIT_SOURCE_DIR) + "/tests/train/configs/tiny_train.yaml");
  f.data.dataset = "pascal";
  f.data.root = root;
  f.model.tasks = {{"semseg", 21}, {"human_parts", 7}, {"sal", 1}, {"normals", 3}};
  f.model.tam = false;
  f.model.validate();
  return f;
}

torch::Tensor to_tensor(const ImageF& m) {
  return torch::from_blob(const_cast<float*>(m.data.data()), {m.c, m.h, m.w}, torch::kFloat32).clone();
}

TEST(Evaluate, MatchesOracleOnPascalLayoutAtOriginalResolution) {
  const std::string dir = test::scratch_dir("evaluate");
  SyntheticCacheOptions co;
  co.dir = dir + "/PASCAL_MT";
  co.layout = "pascal";
  co.seed = 5;
  co.train = 1;
  co.val = 7;
  co.height = 40, co.width = 72;
  cache_synthetic(co);
  const TrainConfig f = pascal_config(co.dir);
  at::set_num_threads(1);
  torch::manual_seed(2);
  MultiTaskModel model(f.model);
  {
    // Spread the untrained outputs so that predictions vary (class maps, saliency across thresholds).
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("decoders.") == 0 && p.key().find("conv_4") != std::string::npos) p.value().mul_(25);
    // Favour the classes of the scenes' large surfaces (background, floor, wall) so that some IoU is > 0.
    auto bias = model->named_parameters()["decoders.semseg.conv_4.bias"];
    bias.slice(0, 0, 3).add_(30);
  }
  auto val = open_dataset(f, "val");
  ASSERT_EQ(val->size(), 7u);

  EvalOptions eo;
  eo.batch_size = 3;
  eo.workers = 0;
  eo.progress = false;
  eo.png_dir = dir + "/pred";
  eo.references = {{"semseg", 0.5}, {"human_parts", 0.4}, {"sal", 0.6}, {"normals", 30.0}};
  EvalResult r = evaluate_model(*model, *val, eo);
  EXPECT_EQ(r.images, 7);

  // The same forward passes, raw, for the oracle.
  std::map<std::string, torch::Tensor> in;
  LoaderOptions lo;
  lo.batch_size = 3;
  lo.shuffle = false;
  lo.workers = 0;
  lo.augment = augment_config("pascal", false, f.model.img_h, f.model.img_w);
  Loader loader(*val, lo);
  int n = 0;
  torch::NoGradGuard ng;
  int written_parts = 0;
  for (int64_t bi = 0; bi < loader.batches_per_epoch(); ++bi) {
    Batch b = loader.next();
    TensorBatch tb = tensor_view(b);
    for (const auto& ts : f.model.tasks) {
      auto out = model->forward_task(tb.images, f.model.task_index(ts.name));
      for (int i = 0; i < b.size; ++i) {
        const int k = n + i;
        const Sample gt = val->get(b.indices[i]);
        in["out/" + ts.name + "/" + std::to_string(k)] = out[i].contiguous();
        in["gt/" + ts.name + "/" + std::to_string(k)] = to_tensor(gt.label(ts.name));
        auto lab = tb.labels.at(ts.name)[i];
        const bool ign = (lab == 255).all().item<bool>();
        in["ign/" + ts.name + "/" + std::to_string(k)] = torch::tensor(ign ? 1 : 0);
        const std::string png = eo.png_dir + "/" + ts.name + "/" + b.ids[i] + ".png";
        // A prediction file exists exactly for the scored images, at the original resolution.
        EXPECT_EQ(file_exists(png), !ign) << png;
        if (!ign) {
          Image8 im = read_image(png, ts.name == "normals" ? 3 : 1);
          EXPECT_EQ(im.width, 72);
          EXPECT_EQ(im.height, 40);
          written_parts += ts.name == "human_parts";
        }
      }
    }
    n += b.size;
  }
  // Some scenes have no person: their human_parts label is all ignore and they are not scored.
  EXPECT_GT(written_parts, 0);
  in["n_images"] = torch::tensor(n);
  for (const auto& ts : f.model.tasks) in["classes/" + ts.name] = torch::tensor(ts.out_channels);
  for (const auto& [t, v] : eo.references) in["refs/" + t] = torch::tensor(v, torch::kFloat64);
  save_tensors(dir + "/in.safetensors", in);
  ASSERT_EQ(test::run_oracle("tests/train/eval_oracle.py", dir + "/in.safetensors " + dir + "/out.safetensors"), 0);
  auto want = load_tensors(dir + "/out.safetensors");

  auto w = [&](const std::string& k) { return want.at(k).item<double>(); };
  // Class maps are exact; the uint8 maps can differ by one level where float and double rounding
  // straddle an integer, which moves the threshold metrics by at most a few pixels' worth.
  EXPECT_NEAR(r.metrics["semseg"]["mIoU"], w("semseg.mIoU"), 1e-9);
  EXPECT_NEAR(r.metrics["human_parts"]["mIoU"], w("human_parts.mIoU"), 1e-9);
  EXPECT_NEAR(r.metrics["sal"]["mIoU"], w("sal.mIoU"), 2e-3);
  EXPECT_NEAR(r.metrics["sal"]["maxF"], w("sal.maxF"), 2e-3);
  EXPECT_NEAR(r.metrics["normals"]["mean"], w("normals.mean"), 0.05);
  EXPECT_NEAR(r.metrics["normals"]["rmse"], w("normals.rmse"), 0.05);
  EXPECT_NEAR(r.metrics["normals"]["median"], w("normals.median"), 0.05);
  EXPECT_NEAR(r.delta_m, w("delta_m"), 0.05);
  // The metrics are not degenerate (the check above could otherwise pass on all-zero inputs).
  EXPECT_GT(r.metrics["semseg"]["mIoU"], 0.0);
  EXPECT_GT(r.metrics["sal"]["mIoU"], 0.0);
}

TEST(Evaluate, RejectsUnknownAndMissingTasks) {
  TrainConfig f = load_train_config(std::string(M3VIT_SOURCE_DIR) + "/tests/train/configs/tiny_train.yaml");
  torch::manual_seed(0);
  MultiTaskModel model(f.model);
  auto val = open_dataset(f, "val");
  EvalOptions eo;
  eo.progress = false;
  eo.workers = 0;
  eo.tasks = {"edges"};
  EXPECT_THROW(evaluate_model(*model, *val, eo), ConfigError);
  eo.tasks = {"depth"};
  eo.max_images = 2;
  EvalResult r = evaluate_model(*model, *val, eo);
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.metrics.size(), 1u);
  EXPECT_TRUE(std::isnan(r.delta_m));  // synthetic data: no default references
  // Weights that do not exist or do not fit are named.
  EXPECT_THROW(load_model_for_eval(f.model, "/nonexistent/w.safetensors"), IoError);
}

}  // namespace
}  // namespace m3vit
