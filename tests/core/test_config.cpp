// Config loading (core/config_yaml.cpp): every shipped config, the authors' key format (hand-written
// fixtures in tests/fixtures/configs/), command-line overrides with the authors' flag semantics, and
// one clear ConfigError naming file and key for each kind of bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/errors.h"
#include "core/config.h"
#include "core/config_yaml.h"
#include "core/shipped_configs.h"
#include "tests/core/io_test_util.h"

namespace fs = std::filesystem;
using namespace m3vit;

namespace {

const std::string kSrc = M3VIT_SOURCE_DIR;

std::string scratch_file(const std::string& name, const std::string& text) {
  return test_io::write_scratch_file("test_config", name, text);
}

// Expects load_config_file to throw E whose one-line message contains every one of `parts`.
template <class E>
void expect_error(const std::string& path, const std::vector<std::string>& parts, const ConfigOverrides& ov = {}) {
  test_io::expect_error_naming<E>([&] { load_config_file(path, ov); }, parts, path);
}

// A small valid config; each bad-input case edits its text.
const std::string kGoodModel = test_io::read_text_file(kSrc + "/tests/fixtures/configs/small_nyud.yaml");

std::vector<std::string> names(const ModelConfig& m) {
  std::vector<std::string> v;
  for (const auto& t : m.tasks) v.push_back(t.name);
  return v;
}
std::vector<int> channels(const ModelConfig& m) {
  std::vector<int> v;
  for (const auto& t : m.tasks) v.push_back(t.out_channels);
  return v;
}

}  // namespace

TEST(Config, EveryShippedConfigLoadsAndRoundTripsThroughJson) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(kSrc + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    const ConfigFile f = load_config_file(e.path().string());
    EXPECT_FALSE(f.authors_format);
    EXPECT_EQ(f.model.name, e.path().stem().string());  // each file names itself
    const ModelConfig back = config_from_json(config_to_json(f.model));
    EXPECT_EQ(config_to_json(back), config_to_json(f.model));
    ++n;
  }
  EXPECT_GE(n, 7);
}

// The shipped files compiled into the library (core/shipped_configs.h) are the files on disk, and
// load_config_text reads them as load_config_file reads the files.
TEST(Config, ShippedConfigsAreTheFilesOnDisk) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(kSrc + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    const std::string rel = fs::relative(e.path(), kSrc).string();
    SCOPED_TRACE(rel);
    const std::string* text = shipped_file(rel);
    ASSERT_NE(text, nullptr);
    std::ifstream in(e.path());
    EXPECT_EQ(*text, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
    ++n;
  }
  EXPECT_EQ(static_cast<int>(shipped_files("configs/").size()), n);
  EXPECT_EQ(shipped_file("configs/none.yaml"), nullptr);
  const std::string rel = "configs/pascal_vits_moe16.yaml";
  EXPECT_EQ(config_to_json(load_config_text(*shipped_file(rel), rel).model),
            config_to_json(load_config_file(kSrc + "/" + rel).model));
  try {
    load_config_text("model: [unclosed\n", "inline.yaml");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("inline.yaml: not valid YAML"), std::string::npos) << e.what();
  }
}

TEST(Config, PascalPaperConfig) {
  const ConfigFile f = load_config_file(kSrc + "/configs/pascal_vits_moe16.yaml");
  const ModelConfig& m = f.model;
  EXPECT_EQ(m.img_h, 512);
  EXPECT_EQ(m.img_w, 512);
  EXPECT_EQ(m.embed_dim, 384);
  EXPECT_EQ(m.depth, 12);
  EXPECT_EQ(m.num_heads, 12);
  EXPECT_EQ(m.moe_blocks, (std::vector<int>{1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(m.moe_experts, 16);
  EXPECT_EQ(m.moe_top_k, 4);
  EXPECT_EQ(m.moe_hidden(), 384);
  EXPECT_EQ(m.gate, GateType::multi);
  EXPECT_EQ(m.noise_std, 0.0);
  EXPECT_EQ(names(m), (std::vector<std::string>{"semseg", "human_parts", "sal", "normals", "edge"}));
  EXPECT_EQ(channels(m), (std::vector<int>{21, 7, 1, 3, 1}));
  EXPECT_TRUE(m.tam);
  EXPECT_TRUE(m.tam_levels[0]);
  EXPECT_TRUE(m.tam_levels[1]);
  EXPECT_FALSE(m.tam_levels[2]);
  EXPECT_EQ(f.dataset, "pascal");
  // The `data:` and `train:` sections stay readable in the document (tests/train/test_config_sections.cpp).
  EXPECT_EQ(f.doc["train"]["out_dir"].as<std::string>(), "out/pascal_vits_moe16");
}

TEST(Config, NyudAndTinyConfigs) {
  const ModelConfig n = load_config(kSrc + "/configs/nyud_vits_moe16.yaml");
  EXPECT_EQ(n.img_h, 480);
  EXPECT_EQ(n.img_w, 640);
  EXPECT_EQ(n.num_tokens(), 1201);
  EXPECT_EQ(channels(n), (std::vector<int>{40, 1}));
  EXPECT_TRUE(n.tam_levels[0] && n.tam_levels[1] && n.tam_levels[2]);

  const ModelConfig d = load_config(kSrc + "/configs/pascal_vits_dense.yaml");
  EXPECT_TRUE(d.moe_blocks.empty());

  const ModelConfig s = load_config(kSrc + "/configs/tiny_synthetic.yaml");
  EXPECT_EQ(s.img_h, 96);
  EXPECT_EQ(s.embed_dim, 192);
  EXPECT_EQ(s.depth, 6);
  EXPECT_EQ(s.head_dim(), 64);
  EXPECT_EQ(s.moe_blocks, (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(s.moe_experts, 8);
  EXPECT_EQ(s.moe_top_k, 2);
  EXPECT_EQ(s.head_channels, 64);
  EXPECT_EQ(names(s), (std::vector<std::string>{"semseg", "human_parts", "sal", "normals", "edge", "depth"}));
  EXPECT_EQ(channels(s), (std::vector<int>{8, 7, 1, 3, 1, 1}));

  const ModelConfig c = load_config(kSrc + "/configs/cityscapes_vitt_moe16.yaml");
  EXPECT_EQ(c.num_tokens(), 129);  // Edge-MoE's 129 tokens
  EXPECT_EQ(channels(c), (std::vector<int>{7, 1}));
}

TEST(Config, AuthorsPascalFileWithTheirDefaults) {
  const ConfigFile f = load_config_file(kSrc + "/tests/fixtures/configs/authors_pascal_moe.yml");
  const ModelConfig& m = f.model;
  EXPECT_TRUE(f.authors_format);
  EXPECT_EQ(m.name, "authors_pascal_moe");
  EXPECT_EQ(m.img_h, 512);
  EXPECT_EQ(m.embed_dim, 384);
  EXPECT_TRUE(m.qkv_bias);  // "True," is a truthy string
  EXPECT_EQ(m.moe_blocks, (std::vector<int>{1, 3, 5, 7, 9, 11}));
  // From the file: top-2, ratio 2. From their argparse defaults: 16 experts, shared router, noise 1.
  EXPECT_EQ(m.moe_top_k, 2);
  EXPECT_EQ(m.moe_hidden(), 768);
  EXPECT_EQ(m.moe_experts, 16);
  EXPECT_EQ(m.gate, GateType::shared);
  EXPECT_EQ(m.noise_std, 1.0);
  // The task order is the authors' fixed order, not the file's order (edge is listed before normals).
  EXPECT_EQ(names(m), (std::vector<std::string>{"semseg", "human_parts", "sal", "normals", "edge"}));
  EXPECT_EQ(channels(m), (std::vector<int>{21, 7, 1, 3, 1}));
  EXPECT_TRUE(m.tam);
  EXPECT_TRUE(m.tam_levels[0] && m.tam_levels[1]);
  EXPECT_FALSE(m.tam_levels[2]);
  EXPECT_EQ(m.head_channels, 256);
  EXPECT_EQ(f.dataset, "pascal");
}

TEST(Config, AuthorsFileWithTheReadmeSwitchesEqualsOurPaperConfig) {
  ConfigOverrides ov;
  ov.moe_experts = 16;
  ov.moe_top_k = 4;
  ov.moe_mlp_ratio = 1;
  ov.multi_gate = true;
  ov.noise_std = 0;
  ModelConfig a = load_config(kSrc + "/tests/fixtures/configs/authors_pascal_moe.yml", ov);
  ModelConfig ours = load_config(kSrc + "/configs/pascal_vits_moe16.yaml");
  a.name = ours.name;
  a.task_emb_dim = ours.task_emb_dim;  // unused by multi-gate
  EXPECT_EQ(config_to_json(a), config_to_json(ours));

  ModelConfig n = load_config(kSrc + "/tests/fixtures/configs/authors_nyud_moe.yml", ov);
  ModelConfig nours = load_config(kSrc + "/configs/nyud_vits_moe16.yaml");
  n.name = nours.name;
  n.task_emb_dim = nours.task_emb_dim;
  EXPECT_EQ(config_to_json(n), config_to_json(nours));  // incl. all three TAM levels on
}

TEST(Config, GateFlagsFollowTheAuthorsSemantics) {
  const std::string p = kSrc + "/tests/fixtures/configs/authors_nyud_moe.yml";
  ConfigOverrides ov;
  ov.task_one_hot = true;  // without a task embedding width: the router sees the token only
  EXPECT_EQ(load_config(p, ov).gate, GateType::shared);
  ov.task_emb_dim = 64;  // --gate_task_specific_dim 64
  EXPECT_EQ(load_config(p, ov).gate, GateType::task_cond);
  EXPECT_EQ(load_config(p, ov).task_emb_dim, 64);
  ov.multi_gate = true;  // multi_gate wins over task_one_hot
  EXPECT_EQ(load_config(p, ov).gate, GateType::multi);

  ConfigOverrides off;
  off.multi_gate = false;
  EXPECT_EQ(load_config(kSrc + "/configs/nyud_vits_moe16.yaml", off).gate, GateType::shared);

  ConfigOverrides g;
  g.gate_type = "task_cond";
  EXPECT_EQ(load_config(kSrc + "/configs/nyud_vits_moe16.yaml", g).gate, GateType::task_cond);
  g.multi_gate = true;
  expect_error<ConfigError>(kSrc + "/configs/nyud_vits_moe16.yaml", {"--gate-type", "task_cond", "multi"}, g);
  ConfigOverrides bad;
  bad.gate_type = "noisy";
  expect_error<ConfigError>(kSrc + "/configs/nyud_vits_moe16.yaml", {"noisy"}, bad);
  ConfigOverrides k;
  k.moe_top_k = 17;  // more than the 16 experts
  expect_error<ConfigError>(kSrc + "/configs/nyud_vits_moe16.yaml", {"nyud_vits_moe16.yaml", "moe_top_k 17"}, k);
}

TEST(Config, OurFormatErrorsNameFileAndKey) {
  const std::string good = scratch_file("good.yaml", kGoodModel);
  EXPECT_NO_THROW(load_config(good));

  std::string t = kGoodModel;
  expect_error<ConfigError>(scratch_file("unknown_task.yaml", std::string(t).replace(t.find("depth]"), 5, "sky")),
                            {"unknown_task.yaml", "model.tasks[1]", "unknown task 'sky'"});
  expect_error<ConfigError>(scratch_file("bad_int.yaml", std::string(t).replace(t.find("[32, 32]"), 8, "[big, 32]")),
                            {"bad_int.yaml", "model.img_size[0]", "line 2", "expected an integer", "'big'"});
  expect_error<ConfigError>(scratch_file("bad_float.yaml", t.substr(0, t.find("  tasks")) + "  mlp_ratio: four\n" +
                                                               t.substr(t.find("  tasks"))),
                            {"model.mlp_ratio", "expected a number"});
  expect_error<ConfigError>(scratch_file("missing.yaml", std::string(t).erase(t.find("  depth: 2\n"), 11)),
                            {"missing.yaml", "model.depth", "missing required key"});
  expect_error<ConfigError>(scratch_file("typo.yaml", std::string(t).replace(t.find("num_heads"), 9, "num_head")),
                            {"typo.yaml", "model.num_head", "unknown key"});
  expect_error<ConfigError>(scratch_file("no_data.yaml", t.substr(0, t.find("data:"))), {"no_data.yaml", "data"});
  expect_error<ConfigError>(scratch_file("bad_set.yaml", std::string(t).replace(t.find("nyud"), 4, "coco")),
                            {"data.dataset", "coco"});
  expect_error<ConfigError>(scratch_file("bad_gate.yaml", std::string(t).replace(t.find("  tasks"), 0, "  gate: noisy\n")),
                            {"model.gate", "noisy"});
  expect_error<ConfigError>(scratch_file("heads.yaml", std::string(t).replace(t.find("num_heads: 2"), 12, "num_heads: 5")),
                            {"heads.yaml", "not divisible by num_heads 5"});
  expect_error<ConfigError>(scratch_file("not_yaml.yaml", "model: [unclosed\n"), {"not_yaml.yaml", "not valid YAML"});
  expect_error<ConfigError>(scratch_file("neither.yaml", "foo: 1\n"), {"neither.yaml", "model:"});
  expect_error<IoError>(kSrc + "/configs/does_not_exist.yaml", {"does_not_exist.yaml", "no such file"});
}

TEST(Config, AuthorsFormatErrorsNameFileAndKey) {
  const std::string base = kSrc + "/tests/fixtures/configs/authors_nyud_moe.yml";
  std::ifstream in(base);
  const std::string t((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = t;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  expect_error<ConfigError>(scratch_file("a_task.yml", with("include_depth", "include_sky")),
                            {"a_task.yml", "task_dictionary.include_sky", "unknown task 'sky'"});
  expect_error<ConfigError>(scratch_file("a_parts.yml", with("include_depth", "include_human_parts")),
                            {"include_human_parts", "no labels on nyud"});
  expect_error<ConfigError>(scratch_file("a_gatedim.yml", with("gate_dim: 386", "gate_dim: 389")),
                            {"backbone_kwargs.gate_dim", "5 tasks", "includes 2"});
  expect_error<ConfigError>(scratch_file("a_type.yml", with("depth: 12", "depth: twelve")),
                            {"a_type.yml", "backbone_kwargs.depth", "expected an integer", "'twelve'"});
  expect_error<ConfigError>(scratch_file("a_missing.yml", with("   embed_dim: 384\n   depth", "   depth")),
                            {"backbone_kwargs.embed_dim", "missing required key"});
  expect_error<ConfigError>(scratch_file("a_db.yml", with("train_db_name: NYUD", "train_db_name: COCO")),
                            {"train_db_name", "COCO"});
  expect_error<ConfigError>(scratch_file("a_head.yml", with("num_conv: 4", "num_conv: 2")), {"head_kwargs.num_conv"});
  expect_error<ConfigError>(scratch_file("a_backbone.yml", with("VisionTransformer_moe", "resnet18")), {"backbone", "resnet18"});
  expect_error<ConfigError>(scratch_file("a_tam.yml", with("   tam: True\n", "   tam_level0: True\n")), {"model_kwargs.tam"});
  // Dense authors' backbone: no MoE blocks, no moe_mlp_ratio needed.
  const ModelConfig dense = load_config(scratch_file("a_dense.yml", with("VisionTransformer_moe", "VisionTransformer")));
  EXPECT_TRUE(dense.moe_blocks.empty());
}

TEST(Config, PythonTruthiness) {
  auto truthy = [](const std::string& s) { return python_truthy(YAML::Load("v: " + s)["v"]); };
  EXPECT_TRUE(truthy("True,"));  // the authors' qkv_bias value
  EXPECT_TRUE(truthy("True"));
  EXPECT_TRUE(truthy("yes"));
  EXPECT_TRUE(truthy("1"));
  EXPECT_TRUE(truthy("'False'"));  // any non-empty string, as in Python
  EXPECT_TRUE(truthy("0.5"));
  EXPECT_FALSE(truthy("False"));
  EXPECT_FALSE(truthy("off"));
  EXPECT_FALSE(truthy("0"));
  EXPECT_FALSE(truthy("0."));
  EXPECT_FALSE(truthy("''"));
  EXPECT_FALSE(truthy(""));
  EXPECT_FALSE(truthy("null"));
}

// TAM level 0 runs on a (2h x 2w) map that must have sides divisible by 4: an odd patch grid is a
// config error named at load, not a shape error deep inside training.
TEST(ConfigValidate, TamLevelNeedsMapSidesDivisibleByFour) {
  m3vit::ModelConfig c;
  c.img_h = 32;  // 2x3 grid
  c.img_w = 48;
  c.embed_dim = 32;
  c.num_heads = 4;
  c.depth = 2;
  c.moe_blocks = {1};
  c.tasks = {{"semseg", 5}, {"depth", 1}};
  c.tam = true;
  c.tam_levels[0] = true;
  c.tam_levels[1] = c.tam_levels[2] = false;
  try {
    c.validate();
    FAIL() << "a 2x3 grid with TAM level 0 was accepted";
  } catch (const m3vit::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("TAM level 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("4x6"), std::string::npos) << e.what();
  }
  c.tam_levels[0] = false;  // levels 1, 2 use 8x12 and 16x24 maps
  c.tam_levels[1] = c.tam_levels[2] = true;
  EXPECT_NO_THROW(c.validate());
}
