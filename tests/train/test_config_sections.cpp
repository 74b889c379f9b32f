// The `data:` and `train:` sections of config files (data/data_config.cpp, train/train_options.cpp):
// ours and the authors' format, and one clear ConfigError naming file and key for bad input.
// The model part of the same files is tested in tests/core/test_config.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/errors.h"
#include "tests/core/io_test_util.h"
#include "train/losses.h"
#include "train/train_options.h"

namespace fs = std::filesystem;
using namespace m3vit;

namespace {

const std::string kSrc = M3VIT_SOURCE_DIR;

std::string scratch_file(const std::string& name, const std::string& text) {
  return test_io::write_scratch_file("test_config_sections", name, text);
}

// Expects load_train_config and train_options_from to throw a ConfigError whose one-line message
// contains every part.
void expect_config_error(const std::string& path, const std::vector<std::string>& parts) {
  test_io::expect_error_naming<ConfigError>([&] { train_options_from(load_train_config(path)); }, parts, path);
}

// A small valid config; each bad-input case edits its text.
const std::string kGoodModel = test_io::read_text_file(kSrc + "/tests/fixtures/configs/small_nyud.yaml");

}  // namespace

TEST(ConfigSections, EveryShippedConfigHasValidSections) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(kSrc + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    const TrainConfig f = load_train_config(e.path().string());
    EXPECT_EQ(f.data.dataset, f.dataset);
    for (const auto& [task, w] : f.train.loss_weights) EXPECT_GE(f.model.task_index(task), 0);
    ++n;
  }
  EXPECT_GE(n, 7);
}

TEST(ConfigSections, PascalPaperConfig) {
  const TrainConfig f = load_train_config(kSrc + "/configs/pascal_vits_moe16.yaml");
  EXPECT_EQ(f.data.dataset, "pascal");
  EXPECT_EQ(f.train.loss_weight("semseg"), 1.0);
  EXPECT_EQ(f.train.loss_weight("human_parts"), 2.0);
  EXPECT_EQ(f.train.loss_weight("sal"), 5.0);
  EXPECT_EQ(f.train.loss_weight("edge"), 50.0);
  EXPECT_EQ(f.train.loss_weight("normals"), 10.0);
  EXPECT_EQ(f.train.lr, 0.002);
  EXPECT_EQ(f.train.batch_size, 16);
  EXPECT_EQ(f.train.out_dir, "out/pascal_vits_moe16");
}

TEST(ConfigSections, AuthorsPascalFile) {
  const TrainConfig f = load_train_config(kSrc + "/tests/fixtures/configs/authors_pascal_moe.yml");
  EXPECT_TRUE(f.authors_format);
  EXPECT_EQ(f.data.dataset, "pascal");
  EXPECT_EQ(f.data.num_workers, 4);
  EXPECT_EQ(f.train.batch_size, 8);
  EXPECT_EQ(f.train.epochs, 100);
  EXPECT_EQ(f.train.lr, 0.002);
  EXPECT_EQ(f.train.edge_pos_weight, 0.95);
  EXPECT_EQ(f.train.loss_weight("edge"), 50.0);
  EXPECT_EQ(f.train.loss_weight("normals"), 10.0);
}

TEST(ConfigSections, ErrorsNameFileAndKey) {
  const std::string t = kGoodModel;
  EXPECT_NO_THROW(load_train_config(scratch_file("good.yaml", t)));
  expect_config_error(scratch_file("bad_weight.yaml", t + "train:\n  loss_weights: {semseg: 1, sal: 5}\n"),
                      {"train.loss_weights.sal", "not a task of this model"});
  expect_config_error(scratch_file("bad_lr.yaml", t + "train:\n  lr: fast\n"),
                      {"bad_lr.yaml", "train.lr", "line 14", "expected a number", "'fast'"});
  // A learning rate that is NaN or beyond a float is refused before any step (docs/TRAINING.md, "Bad numbers").
  expect_config_error(scratch_file("nan_lr.yaml", t + "train:\n  lr: .nan\n"), {"train.lr", "expected a finite number"});
  expect_config_error(scratch_file("huge_lr.yaml", t + "train:\n  lr: 1.0e39\n"), {"train.lr", "at most 3.4e38"});
  expect_config_error(scratch_file("bad_workers.yaml", t + "  num_workers: -1\n"), {"data.num_workers", "must be >= 0"});
  expect_config_error(scratch_file("bad_per.yaml", t + "train:\n  schedule_per: week\n"),
                      {"train.schedule_per", "expected epoch or step", "'week'"});

  const std::string a = test_io::read_text_file(kSrc + "/tests/fixtures/configs/authors_nyud_moe.yml");
  const std::string cut = "       depth: 1.0\n";
  ASSERT_NE(a.find(cut), std::string::npos);
  expect_config_error(scratch_file("a_weights.yml", std::string(a).erase(a.find(cut), cut.size())),
                      {"loss_kwargs.loss_weights.depth", "missing weight"});
}

// Without train.loss_weights a config trains with the authors' weights of its data set (their
// configs' loss_kwargs), never with silent 1s; a partial mapping is completed from the same table.
TEST(ConfigSections, LossWeightsDefaultToTheAuthorsPerDataSet) {
  const std::string nyud = kGoodModel;  // data set nyud, tasks semseg and depth, no train: section
  const TrainConfig n = load_train_config(scratch_file("lw_nyud.yaml", nyud));
  EXPECT_EQ(n.train.loss_weights, (std::map<std::string, double>{{"semseg", 1.0}, {"depth", 1.0}}));
  EXPECT_EQ(train_options_from(n).loss_weights, n.train.loss_weights);

  std::string pascal = kGoodModel;
  pascal.replace(pascal.find("[semseg, depth]"), 15, "[semseg, human_parts, sal, normals, edge]");
  pascal.replace(pascal.find("dataset: nyud"), 13, "dataset: pascal");
  const TrainConfig p = load_train_config(scratch_file("lw_pascal.yaml", pascal));
  const std::map<std::string, double> authors = {
      {"semseg", 1.0}, {"human_parts", 2.0}, {"sal", 5.0}, {"edge", 50.0}, {"normals", 10.0}};
  EXPECT_EQ(p.train.loss_weights, authors);
  EXPECT_EQ(train_options_from(p).loss_weights, authors);
  // Listed tasks keep the file's value; the others take the authors'.
  const TrainConfig part = load_train_config(scratch_file("lw_part.yaml", pascal + "train:\n  loss_weights: {edge: 7}\n"));
  std::map<std::string, double> want = authors;
  want["edge"] = 7.0;
  EXPECT_EQ(part.train.loss_weights, want);
  // Only the model's tasks get a weight.
  std::string two = pascal;
  two.replace(two.find("[semseg, human_parts, sal, normals, edge]"), 41, "[sal, edge]");
  EXPECT_EQ(load_train_config(scratch_file("lw_two.yaml", two)).train.loss_weights,
            (std::map<std::string, double>{{"sal", 5.0}, {"edge", 50.0}}));

  // The synthetic scenes have no authors' weights: every task 1 (docs/TRAINING.md).
  std::string synth = kGoodModel;
  synth.replace(synth.find("dataset: nyud"), 13, "dataset: synthetic");
  const TrainConfig s = load_train_config(scratch_file("lw_synth.yaml", synth));
  EXPECT_TRUE(s.train.loss_weights.empty());
  EXPECT_EQ(s.train.loss_weight("semseg"), 1.0);
  EXPECT_EQ(s.train.loss_weight("depth"), 1.0);

  // The authors' format without loss_kwargs: their weights too.
  const std::string a = test_io::read_text_file(kSrc + "/tests/fixtures/configs/authors_nyud_moe.yml");
  const auto lk = a.find("loss_kwargs:");
  ASSERT_NE(lk, std::string::npos);
  std::string no_lk = a.substr(0, lk);
  const auto rest = a.find("\n", a.find("depth: 1.0", lk));
  if (rest != std::string::npos) no_lk += a.substr(rest + 1);
  ASSERT_EQ(no_lk.find("loss_weights"), std::string::npos);
  const TrainConfig an = load_train_config(scratch_file("lw_authors.yml", no_lk));
  EXPECT_EQ(an.train.loss_weights, (std::map<std::string, double>{{"semseg", 1.0}, {"depth", 1.0}}));
}

// The paper configs start as the authors do: DeiT-S weights, validation in the last 10 epochs.
TEST(ConfigSections, PaperConfigsFollowTheAuthorsRecipe) {
  for (const std::string name : {"pascal_vits_moe16", "nyud_vits_moe16"}) {
    SCOPED_TRACE(name);
    const TrainConfig f = load_train_config(kSrc + "/configs/" + name + ".yaml");
    const TrainOptions o = train_options_from(f);
    EXPECT_EQ(o.init, "deit");
    EXPECT_EQ(o.pretrained, "pretrained/deit_small_patch16_224-cd65a155.pth");
    EXPECT_EQ(deit_weights_for(f.model.embed_dim).file, "deit_small_patch16_224-cd65a155.pth");
    EXPECT_EQ(o.eval_every, 0);
    EXPECT_EQ(o.eval_last_epochs, 10);
    EXPECT_EQ(o.loss_weights, default_loss_weights(f.dataset));
  }
}

// validation_due: the authors' `epoch + 1 > epochs - 10` (train_fastmoe.py:419-425), with eval_every.
TEST(ConfigSections, ValidationScheduleOfTheLastEpochs) {
  std::vector<int64_t> got;
  for (int64_t e = 1; e <= 100; ++e)
    if (validation_due(e, 100, 0, 10)) got.push_back(e);
  EXPECT_EQ(got, (std::vector<int64_t>{91, 92, 93, 94, 95, 96, 97, 98, 99, 100}));
  got.clear();
  for (int64_t e = 1; e <= 30; ++e)
    if (validation_due(e, 30, 10, 3)) got.push_back(e);
  EXPECT_EQ(got, (std::vector<int64_t>{10, 20, 28, 29, 30}));
  EXPECT_FALSE(validation_due(5, 10, 0, 0));          // at the end only (run_training's last step)
  EXPECT_TRUE(validation_due(1, 5, 0, 10));           // more last epochs than the run: every epoch
  for (int64_t e = 1; e <= 7; ++e) EXPECT_TRUE(validation_due(e, 7, 1, 0));

  // The authors' flag maps onto the same schedule; without it they validate every epoch.
  const std::string a = test_io::read_text_file(kSrc + "/tests/fixtures/configs/authors_pascal_moe.yml");
  const TrainConfig plain = load_train_config(scratch_file("a_plain.yml", a));
  EXPECT_EQ(plain.train.eval_every, 1);
  EXPECT_EQ(plain.train.eval_last_epochs, 0);
  const TrainConfig last = load_train_config(scratch_file("a_last10.yml", a + "\neval_final_10_epochs_only: True\n"));
  EXPECT_EQ(last.train.eval_every, 0);
  EXPECT_EQ(last.train.eval_last_epochs, 10);

  const std::string t = kGoodModel;
  expect_config_error(scratch_file("bad_last.yaml", t + "train:\n  eval_last_epochs: -1\n"),
                      {"train.eval_last_epochs", "must be >= 0"});
  expect_config_error(scratch_file("bad_every.yaml", t + "train:\n  eval_every: -2\n"),
                      {"train.eval_every", "must be >= 0"});
}

// init: deit without its file: one IoError naming the file, where it goes, its URL and --from-scratch.
TEST(ConfigSections, MissingDeitFileIsOneClearError) {
  const TrainConfig f = load_train_config(kSrc + "/configs/pascal_vits_moe16.yaml");
  TrainOptions o = train_options_from(f);
  o.pretrained = "/nonexistent/deit_small_patch16_224-cd65a155.pth";
  test_io::expect_error_naming<IoError>(
      [&] { check_init_weights(o, f.model, f.path); },
      {"/nonexistent/deit_small_patch16_224-cd65a155.pth", "deit_small_patch16_224",
       "https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth", "pascal_vits_moe16.yaml",
       "--from-scratch"},
      o.pretrained);
  // A width DeiT has no release for still names the file and the way out.
  ModelConfig narrow = f.model;
  narrow.embed_dim = 32;
  test_io::expect_error_naming<IoError>([&] { check_init_weights(o, narrow, f.path); },
                                        {"DeiT ImageNet weights of width 32", "--from-scratch"}, o.pretrained);
  o.pretrained = kSrc + "/configs/pascal_vits_moe16.yaml";  // any existing file passes this check
  EXPECT_NO_THROW(check_init_weights(o, f.model, f.path));
  o.init = "random";
  o.pretrained = "/nonexistent/x.pth";
  EXPECT_NO_THROW(check_init_weights(o, f.model, f.path));
}
