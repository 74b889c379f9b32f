// Expert traces: file round trip, rejection of corrupt traces, and the statistics of the
// synthetic generators.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "hw/cost/expert_trace.h"
#include "hw/cost/repro.h"
#include "io/safetensors.h"

namespace m3vit::hw {
namespace {

std::string scratch(const std::string& name) {
  std::string dir = std::string(M3VIT_BINARY_DIR) + "/tmp-test-hw";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

TEST(ExpertTrace, RoundTrip) {
  ModelConfig c = edge_moe_vitt_cityscapes();
  SyntheticTraceSpec s;
  s.images = 3;
  s.kind = "skewed";
  ExpertTrace t = synthetic_trace(c, s);
  std::string path = scratch("trace.safetensors");
  write_trace(t, path);
  ExpertTrace r = read_trace(path);
  EXPECT_EQ(r.images, 3);
  EXPECT_EQ(r.layers, 6);
  EXPECT_EQ(r.tokens, 129);
  EXPECT_EQ(r.k, 2);
  EXPECT_EQ(r.idx, t.idx);
  EXPECT_EQ(r.w, t.w);
  EXPECT_EQ(r.cfg.moe_experts, 16);
  EXPECT_EQ(r.source, t.source);
  check_trace_matches(r, c);
  ModelConfig other = c;
  other.moe_top_k = 4;
  EXPECT_THROW(check_trace_matches(r, other), ConfigError);
}

TEST(ExpertTrace, RejectsCorruptTraces) {
  ModelConfig c = edge_moe_vitt_cityscapes();
  SyntheticTraceSpec s;
  ExpertTrace t = synthetic_trace(c, s);
  ExpertTrace bad = t;
  bad.idx[7] = 16;
  EXPECT_THROW(bad.validate("x"), FormatError);
  bad = t;
  bad.idx[1] = bad.idx[0];  // the same expert twice for one token
  EXPECT_THROW(bad.validate("x"), FormatError);
  bad = t;
  bad.w[3] = std::nanf("");
  EXPECT_THROW(bad.validate("x"), FormatError);
  // A file with the wrong dtype or a missing tensor.
  SafeTensorsWriter w;
  std::vector<float> f(t.idx.begin(), t.idx.end());
  w.add("topk_idx", DType::F32, {1, 6, 129, 2}, f.data(), f.size() * 4);
  w.set_metadata("m3vit_config", config_to_json(c));
  std::string path = scratch("bad_trace.safetensors");
  w.write(path);
  try {
    read_trace(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("topk_idx"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_trace(scratch("missing.safetensors")), IoError);
}

// Resource bounds (docs/TESTING.md): the counts a trace states are its tensors' shapes, held to the
// bytes in the file and to int range. [2^31, 0, 129, 2] has no bytes at all, but its image count would
// wrap to a negative int; [10^6, 6, 129, 2] claims 6 GB over a few bytes.
TEST(ExpertTrace, CountsAreBoundedBeforeAllocating) {
  const ModelConfig c = edge_moe_vitt_cityscapes();
  auto message = [&](const std::vector<int64_t>& shape, size_t bytes, const std::string& name) {
    SafeTensorsWriter w;
    std::vector<uint8_t> zeros(bytes);
    // Writes the header by hand: the writer itself refuses shapes its bytes do not fill.
    std::string header = "{\"topk_idx\":{\"dtype\":\"I32\",\"shape\":[";
    for (size_t i = 0; i < shape.size(); ++i) header += (i ? "," : "") + std::to_string(shape[i]);
    header += "],\"data_offsets\":[0," + std::to_string(bytes) + "]},\"topk_w\":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < shape.size(); ++i) header += (i ? "," : "") + std::to_string(shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(bytes) + "," + std::to_string(2 * bytes) +
              "]},\"__metadata__\":{\"m3vit_config\":" + nlohmann::json(config_to_json(c)).dump() + "}}";
    std::string file(8, '\0');
    for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    file += header + std::string(2 * bytes, '\0');
    const std::string path = scratch(name);
    std::ofstream(path, std::ios::binary) << file;
    try {
      read_trace(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string m = message({int64_t{1} << 31, 0, 129, 2}, 0, "wrap_trace.safetensors");
  EXPECT_NE(m.find("wrap_trace.safetensors: tensor 'topk_idx' has a dimension past 2^31"), std::string::npos) << m;
  m = message({1000000, 6, 129, 2}, 16, "big_trace.safetensors");
  EXPECT_NE(m.find("big_trace.safetensors"), std::string::npos) << m;
  EXPECT_NE(m.find("needs 6192000000"), std::string::npos) << m;
}

TEST(ExpertTrace, SyntheticStatistics) {
  ModelConfig c = m3vit_vits_pascal();
  SyntheticTraceSpec s;
  s.images = 2;
  ExpertTrace u = synthetic_trace(c, s);
  // Uniform: each of 16 experts gets about 1025·4/16 = 256 tokens per layer.
  for (int l = 0; l < u.layers; ++l) {
    auto q = u.queue_lengths(0, l);
    int total = 0;
    for (int n : q) {
      EXPECT_GT(n, 180);
      EXPECT_LT(n, 330);
      total += n;
    }
    EXPECT_EQ(total, 1025 * 4);
  }
  // Skewed (s = 2): the most popular expert gets far more than its share.
  s.kind = "skewed";
  s.skew = 2;
  ExpertTrace k = synthetic_trace(c, s);
  auto q = k.queue_lengths(0, 0);
  EXPECT_GT(*std::max_element(q.begin(), q.end()), 700);
  // Weights are the kept softmax probabilities: descending and summing to < 1.
  for (int t = 0; t < 50; ++t) {
    const float* w = u.weights(0, 0, t);
    EXPECT_GE(w[0], w[1]);
    EXPECT_LT(w[0] + w[1] + w[2] + w[3], 1.0f);
  }
  SyntheticTraceSpec bad;
  bad.kind = "zipf";
  EXPECT_THROW(synthetic_trace(c, bad), ConfigError);
}

}  // namespace
}  // namespace m3vit::hw
