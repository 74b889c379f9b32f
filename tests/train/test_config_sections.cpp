// The `data:` and `train:` sections of config files (data/data_config.cpp, train/train_options.cpp):
// ours and the authors' format, and one clear ConfigError naming file and key for bad input.
// The model part of the same files is tested in tests/core/test_config.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/errors.h"
#include "tests/core/io_test_util.h"
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
