// Load-time checks of the runtime (runtime/model_file.h, runtime/engine.h): every defect of an export
// or an option gives one typed error that names the thing at fault, before any image runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "io/safetensors.h"
#include "m3vit/version.h"
#include "runtime/engine.h"
#include "tests/runtime/runtime_test_util.h"

namespace m3vit {
namespace {

using rt::Engine;
using rt::EngineOptions;

class ModelFileChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = rt_test::scratch_dir("model-file");
    cfg_ = rt_test::tiny_config(GateType::multi, 32, 32, 2);
    good_ = dir_ + "/good.safetensors";
    rt_test::write_random_export(cfg_, good_, 5);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Copies the good export through `edit`, which sees every tensor and may drop (return false) or
  // change it; `meta` may change the metadata.
  std::string rewrite(const std::string& name,
                      const std::function<bool(const std::string&, std::vector<int64_t>&, std::vector<uint8_t>&)>& edit,
                      const std::function<void(std::map<std::string, std::string>&)>& meta = nullptr) {
    SafeTensorsFile in(good_);
    SafeTensorsWriter w;
    for (const auto& n : in.names()) {
      const TensorView& v = in.get(n);
      std::vector<int64_t> shape = v.shape;
      std::vector<uint8_t> bytes(static_cast<const uint8_t*>(v.data), static_cast<const uint8_t*>(v.data) + v.nbytes);
      if (edit(n, shape, bytes)) w.add(n, v.dtype, shape, bytes.data(), bytes.size());
    }
    std::map<std::string, std::string> md = in.metadata();
    if (meta) meta(md);
    for (const auto& [k, v] : md) w.set_metadata(k, v);
    const std::string path = dir_ + "/" + name + ".safetensors";
    w.write(path);
    return path;
  }

  // Expects construction to throw E with every fragment in the message.
  template <class E>
  void expect_error(const std::string& path, std::vector<std::string> fragments, EngineOptions opt = {}) {
    try {
      Engine eng(path, opt);
      ADD_FAILURE() << "no error loading " << path;
    } catch (const E& e) {
      for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << "\n  lacks: " << f;
    }
  }

  std::string dir_, good_;
  ModelConfig cfg_;
};

TEST_F(ModelFileChecks, GoodFileLoadsAndRuns) {
  Engine eng(good_);
  EXPECT_EQ(eng.config().num_tasks(), 2);
  EXPECT_EQ(eng.task_index("depth"), 1);
  const auto y = eng.run(0, rt_test::random_image(cfg_, 1));
  EXPECT_EQ(y.size(), static_cast<size_t>(5) * 32 * 32);
}

TEST_F(ModelFileChecks, MissingFile) { expect_error<IoError>(dir_ + "/nope.safetensors", {"nope.safetensors"}); }

TEST_F(ModelFileChecks, NotAnExport) {
  const std::string p = rewrite("nofmt", [](auto&, auto&, auto&) { return true; },
                                [](auto& m) { m.erase("format"); });
  expect_error<FormatError>(p, {"nofmt.safetensors", "format", "m3vit-export-v1"});
}

// A file from a newer export format names both versions (docs/LIBRARY.md "Versions"); an unknown
// tag is still "not an export".
TEST_F(ModelFileChecks, NewerFormatNamesBothVersions) {
  const std::string p = rewrite("v2", [](auto&, auto&, auto&) { return true; }, [](auto& m) {
    m["format"] = "m3vit-export-v2";
    m["m3vit_version"] = "7.3.0";
  });
  expect_error<FormatError>(p, {"v2.safetensors", "export format v2", "m3vit 7.3.0", "this m3vit " M3VIT_VERSION_STRING,
                                "v1 at most", "upgrade m3vit"});
  const std::string q = rewrite("vx", [](auto&, auto&, auto&) { return true; },
                                [](auto& m) { m["format"] = "m3vit-export-vX"; });
  expect_error<FormatError>(q, {"vx.safetensors", "not an m3vit model export", "'m3vit-export-vX'"});
}

TEST_F(ModelFileChecks, ExportRecordsTheWritersVersion) {
  EXPECT_EQ(SafeTensorsFile(good_).metadata().at("m3vit_version"), M3VIT_VERSION_STRING);
}

TEST_F(ModelFileChecks, MissingTensorIsNamed) {
  const std::string key = "backbone.blocks.3.mlp.experts.h4toh.bias";
  const std::string p = rewrite("missing", [&](const std::string& n, auto&, auto&) { return n != key; });
  expect_error<FormatError>(p, {"missing tensor", key, "[8, 32]"});
}

TEST_F(ModelFileChecks, MisShapedTensorNamesBothShapes) {
  const std::string key = "decoders.depth.conv_2.weight";  // [16, 16, 3, 3]
  const std::string p = rewrite("shape", [&](const std::string& n, std::vector<int64_t>& s, std::vector<uint8_t>&) {
    if (n == key) s = {16, 16, 9};
    return true;
  });
  expect_error<ShapeError>(p, {key, "[16, 16, 3, 3]", "[16, 16, 9]"});
}

TEST_F(ModelFileChecks, UnexpectedTensorIsRefused) {
  // A third task's router in a 2-task model: a config/weights mismatch.
  const std::string p = rewrite("extra", [&](const std::string& n, std::vector<int64_t>& s, std::vector<uint8_t>&) {
    return true;
  });
  SafeTensorsFile in(p);
  SafeTensorsWriter w;
  for (const auto& n : in.names()) w.add(n, in.get(n).dtype, in.get(n).shape, in.get(n).data, in.get(n).nbytes);
  std::vector<float> extra(32 * 8, 0.f);
  w.add("backbone.blocks.1.mlp.gate.2.w_gate", DType::F32, {32, 8}, extra.data(), extra.size() * 4);
  for (const auto& [k, v] : in.metadata()) w.set_metadata(k, v);
  w.write(dir_ + "/extra2.safetensors");
  expect_error<FormatError>(dir_ + "/extra2.safetensors", {"unexpected tensor", "mlp.gate.2.w_gate"});
}

TEST_F(ModelFileChecks, ConfigItCannotRunIsAConfigError) {
  const std::string p = rewrite("badcfg", [](auto&, auto&, auto&) { return true; }, [](auto& m) {
    ModelConfig c = config_from_json(m["m3vit_config"]);
    c.num_heads = 3;  // 32 is not divisible by 3
    m["m3vit_config"] = config_to_json(c);
  });
  expect_error<ConfigError>(p, {"badcfg.safetensors", "num_heads"});
}

// Resource bounds (docs/TESTING.md): a config whose sizes the runtime would allocate from is held to
// stated limits before any tensor or workspace is looked at. 16384 x 16384 at patch 16 is 2^20 tokens
// (an attention score matrix of 4 TiB); a width of 10^6 is past ModelConfig's limit.
TEST_F(ModelFileChecks, ConfigSizesBeyondTheLimitsAreRefusedBeforeAllocating) {
  const std::string tokens = rewrite("tokens", [](auto&, auto&, auto&) { return true; }, [](auto& m) {
    ModelConfig c = config_from_json(m["m3vit_config"]);
    c.img_h = c.img_w = 16384;
    c.patch = 16;
    m["m3vit_config"] = config_to_json(c);
  });
  expect_error<ConfigError>(tokens, {"tokens.safetensors", "1048576 tokens", "at most 16384"});
  const std::string wide = rewrite("wide", [](auto&, auto&, auto&) { return true; }, [](auto& m) {
    nlohmann::json j = nlohmann::json::parse(m["m3vit_config"]);
    j["embed_dim"] = 1000000;
    m["m3vit_config"] = j.dump();
  });
  expect_error<ConfigError>(wide, {"wide.safetensors", "embed_dim = 1000000"});
}

TEST_F(ModelFileChecks, NanWeightIsNamedInBothExpertModes) {
  const std::string dense = dir_ + "/nan_dense.safetensors", expert = dir_ + "/nan_expert.safetensors";
  rt_test::write_random_export(cfg_, dense, 5, "backbone.blocks.2.attn.proj.weight", NAN);
  rt_test::write_random_export(cfg_, expert, 5, "backbone.blocks.1.mlp.experts.htoh4.weight", INFINITY);
  for (rt::Residency mode : {rt::Residency::resident, rt::Residency::stream}) {
    EngineOptions opt;
    opt.experts = mode;
    expect_error<NumericError>(dense, {"backbone.blocks.2.attn.proj.weight", "NaN"}, opt);
    expect_error<NumericError>(expert, {"backbone.blocks.1.mlp.experts.htoh4.weight", "Inf"}, opt);
  }
}

// A streamed weight that can no longer be read (the file was truncated after loading): the image
// fails with one IoError naming the file and the weight, no thread waits forever (the ring is
// aborted, runtime/weight_stream.h), and the next image fails the same way instead of hanging.
TEST_F(ModelFileChecks, StreamReadFailureIsAnErrorNotAHang) {
  struct Case {
    rt::Residency experts, layers;
    std::string what;  // the first load that fails
  };
  for (const Case& cs : {Case{rt::Residency::stream, rt::Residency::resident, "of MoE layer 0"},
                         Case{rt::Residency::stream, rt::Residency::stream, "qkv weights of block 0"},
                         Case{rt::Residency::resident, rt::Residency::stream, "qkv weights of block 0"}}) {
    const std::string path = dir_ + "/truncated.safetensors";
    std::filesystem::copy_file(good_, path, std::filesystem::copy_options::overwrite_existing);
    EngineOptions opt;
    opt.experts = cs.experts;
    opt.layers = cs.layers;
    Engine eng(path, opt);
    std::filesystem::resize_file(path, 4096);  // the header survives, every tensor is gone
    const std::vector<float> img = rt_test::random_image(cfg_, 1);
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        eng.run(0, img);
        ADD_FAILURE() << "no error reading a truncated file";
      } catch (const IoError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(path), std::string::npos) << m;
        EXPECT_NE(m.find(cs.what), std::string::npos) << m;
        EXPECT_NE(m.find("unexpected end of file"), std::string::npos) << m;
      }
    }
  }
}

TEST_F(ModelFileChecks, BadOptionsAndInputs) {
  EngineOptions opt;
  opt.experts = rt::Residency::stream;
  opt.memory_budget = 1000;  // below two experts (2 × ~8.7 KB here)
  expect_error<ConfigError>(good_, {"memory budget 1000", "two weight buffers", "an expert"}, opt);
  opt.layers = rt::Residency::stream;
  expect_error<ConfigError>(good_, {"memory budget 1000", "two weight buffers", "dense layer or head conv"}, opt);
  opt.layers = rt::Residency::resident;
  opt.experts = rt::Residency::resident;
  expect_error<ConfigError>(good_, {"--memory-budget"}, opt);
  EXPECT_THROW(rt::parse_bytes("12X"), ConfigError);
  EXPECT_EQ(rt::parse_bytes("1.5K"), 1536u);
  EXPECT_EQ(rt::parse_bytes("64M"), 64u << 20);
  EXPECT_THROW(rt::residency_from_string("cache"), ConfigError);
  EXPECT_THROW(rt::precision_from_string("fp16"), ConfigError);

  Engine eng(good_);
  EXPECT_THROW(eng.task_index("edge"), ConfigError);
  std::vector<float> img = rt_test::random_image(cfg_, 2);
  EXPECT_THROW(eng.run(2, img), ConfigError);
  EXPECT_THROW(eng.run(0, std::vector<float>(10)), ShapeError);
  img[100] = NAN;
  try {
    eng.run(0, img);
    ADD_FAILURE() << "NaN input accepted";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("input image: element 100 is NaN"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace m3vit
