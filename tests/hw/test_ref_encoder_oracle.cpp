// The fp32 reference encoder of the hardware path (hw/fx/ref_encoder.h) against the independent
// PyTorch oracle (tests/oracle/m3vit_ref.py, float64), on the same weights and image; also checks
// that the weights survive the trip through the export file format (load_encoder_weights).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "hw/fx/encoder_weights.h"
#include "hw/fx/fx_check.h"
#include "hw/fx/ref_encoder.h"
#include "io/safetensors.h"
#include "tests/hw/fx_test_model.h"

namespace m3vit::hw {
namespace {


// Writes the encoder's tensors under the authors' keys, as a model export holds them.
void write_encoder(const EncoderWeights& w, const std::string& path) {
  const ModelConfig& c = w.cfg;
  const int64_t d = c.embed_dim, N = c.num_tokens(), hid = c.mlp_hidden(), mh = c.moe_hidden(), E = c.moe_experts;
  SafeTensorsWriter s;
  auto add = [&](const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    s.add(name, DType::F32, shape, v.data(), v.size() * sizeof(float));
  };
  add("backbone.patch_embed.proj.weight", w.patch_w, {d, 3, c.patch, c.patch});
  add("backbone.patch_embed.proj.bias", w.patch_b, {d});
  add("backbone.cls_token", w.cls, {1, 1, d});
  add("backbone.pos_embed", w.pos, {1, N, d});
  for (int b = 0; b < c.depth; ++b) {
    const auto& B = w.blocks[b];
    std::string p = "backbone.blocks." + std::to_string(b) + ".";
    add(p + "norm1.weight", B.ln1_g, {d});
    add(p + "norm1.bias", B.ln1_b, {d});
    add(p + "attn.qkv.weight", B.qkv_w, {3 * d, d});
    add(p + "attn.qkv.bias", B.qkv_b, {3 * d});
    add(p + "attn.proj.weight", B.proj_w, {d, d});
    add(p + "attn.proj.bias", B.proj_b, {d});
    add(p + "norm2.weight", B.ln2_g, {d});
    add(p + "norm2.bias", B.ln2_b, {d});
    if (!c.is_moe_block(b)) {
      add(p + "mlp.fc1.weight", B.fc1_w, {hid, d});
      add(p + "mlp.fc1.bias", B.fc1_b, {hid});
      add(p + "mlp.fc2.weight", B.fc2_w, {d, hid});
      add(p + "mlp.fc2.bias", B.fc2_b, {d});
    } else {
      add(p + "mlp.experts.htoh4.weight", B.w1, {E, mh, d});
      add(p + "mlp.experts.htoh4.bias", B.b1, {E, mh});
      add(p + "mlp.experts.h4toh.weight", B.w2, {E, d, mh});
      add(p + "mlp.experts.h4toh.bias", B.b2, {E, d});
      if (c.gate == GateType::multi)
        for (size_t t = 0; t < B.gate.size(); ++t) add(p + "mlp.gate." + std::to_string(t) + ".w_gate", B.gate[t], {d, E});
      else
        add(p + "mlp.gate.w_gate", B.gate[0], {static_cast<int64_t>(B.gate[0].size()) / E, E});
    }
  }
  if (c.gate == GateType::task_cond) {
    int64_t T = c.num_tasks(), D = c.task_emb_dim;
    std::string p = "backbone.gate_task_represent.";
    add(p + "fc1.weight", w.te_fc1_w, {D, T});
    add(p + "fc1.bias", w.te_fc1_b, {D});
    add(p + "fc2.weight", w.te_fc2_w, {D, D});
    add(p + "fc2.bias", w.te_fc2_b, {D});
    add(p + "norm.weight", w.te_norm_g, {D});
    add(p + "norm.bias", w.te_norm_b, {D});
  }
  s.set_metadata("m3vit_config", config_to_json(c));
  s.write(path);
}

TEST(RefEncoderOracle, MatchesPyTorchReference) {
  const std::string dir = std::string(M3VIT_BINARY_DIR) + "/tmp-test-hw-oracle";
  std::filesystem::create_directories(dir);
  for (GateType g : {GateType::multi, GateType::task_cond}) {
    EncoderWeights w0 = random_encoder_weights(fx_test::tiny_fx_model(g), 21);
    // Larger weights than the initialisation so that attention and experts matter in the output.
    for (auto& B : w0.blocks) {
      for (auto& v : B.qkv_w) v *= 10;
      for (auto& v : B.w1) v *= 30;
      for (auto& v : B.w2) v *= 30;
      for (auto& v : B.fc1_w) v *= 10;
      for (auto& v : B.fc2_w) v *= 10;
    }
    const std::string wpath = dir + "/w.safetensors", ipath = dir + "/in.safetensors", opath = dir + "/out.safetensors";
    write_encoder(w0, wpath);
    EncoderWeights w = load_encoder_weights(wpath);
    ASSERT_EQ(w.blocks[1].w1, w0.blocks[1].w1);
    auto img = random_images(1, 32, 48, 4)[0];
    // The oracle gets the normalised image the reference computes internally.
    std::vector<float> x(img.size());
    for (int ch = 0; ch < 3; ++ch)
      for (int i = 0; i < 32 * 48; ++i)
        x[ch * 32 * 48 + i] = (img[ch * 32 * 48 + i] / 255.0f - kImageNetMean[ch]) / kImageNetStd[ch];
    SafeTensorsWriter in;
    in.add("images", DType::F32, {1, 3, 32, 48}, x.data(), x.size() * 4);
    in.write(ipath);
    const int task = 1;
    std::string cmd = "/usr/bin/python3 " + std::string(M3VIT_SOURCE_DIR) + "/tests/hw/encoder_oracle.py " + wpath + " " +
                      ipath + " " + opath + " " + std::to_string(task);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    SafeTensorsFile o(opath);
    EncoderOutput got = ref_encoder(w, img.data(), task);
    const TensorView& want = o.get("out", DType::F32, {7, 32});
    double worst = 0, scale = 0;
    for (size_t i = 0; i < got.out.size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(got.out[i]) - want.f32()[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(want.f32()[i])));
    }
    // fp32 storage with double accumulation against float64: a few float ulps of values ~scale.
    EXPECT_LT(worst, 2e-5 * scale + 1e-6) << to_string(g) << " scale " << scale;
    const TensorView& idx = o.get("topk_idx0", DType::I32, {7, 2});
    const int32_t* ip = static_cast<const int32_t*>(idx.data);
    for (int i = 0; i < 14; ++i) EXPECT_EQ(got.topk_idx[0][i], ip[i]) << to_string(g) << " choice " << i;
  }
}

}  // namespace
}  // namespace m3vit::hw
