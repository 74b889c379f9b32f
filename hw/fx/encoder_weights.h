// fp32 weights of the M³ViT encoder (patch embedding, blocks, routers) as the hardware path sees
// them, torch-free: read from a model export (safetensors with the authors' state-dict keys,
// model/multitask_model.h) or drawn with the authors' initialisation (AUTHORS_CODE.md Q27) from a seed.
// The decoder heads are not part of the accelerator (Edge-MoE stops at block 11's output).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/imagenet.h"
#include "core/config.h"

namespace m3vit::hw {

struct EncoderBlockWeights {
  std::vector<float> ln1_g, ln1_b;       // [d]
  std::vector<float> qkv_w, qkv_b;       // [3d, d], [3d]; row s·d + h·hd + j for s in {q, k, v}
  std::vector<float> proj_w, proj_b;     // [d, d], [d]
  std::vector<float> ln2_g, ln2_b;       // [d]
  // dense block
  std::vector<float> fc1_w, fc1_b;       // [hid, d], [hid]
  std::vector<float> fc2_w, fc2_b;       // [d, hid], [d]
  // MoE block
  std::vector<float> w1, b1;             // [E, mh, d], [E, mh]   (htoh4)
  std::vector<float> w2, b2;             // [E, d, mh], [E, d]    (h4toh)
  std::vector<std::vector<float>> gate;  // per router: [d_gate, E] (input-major, as the authors store it)
};

struct EncoderWeights {
  ModelConfig cfg;
  std::vector<float> patch_w, patch_b;   // [d, C, p, p], [d]
  std::vector<float> cls, pos;           // [d], [N, d]
  std::vector<EncoderBlockWeights> blocks;
  // task_cond only: the task-embedding MLP (one-hot T -> D_t -> D_t, LayerNorm)
  std::vector<float> te_fc1_w, te_fc1_b, te_fc2_w, te_fc2_b, te_norm_g, te_norm_b;
};

// The authors' initialisation (AUTHORS_CODE.md Q27) from a seed (our own generator, so not torch's draws):
// cls/pos and backbone linears trunc-normal std 0.02 with zero bias, LayerNorm 1/0, patch conv
// U(±1/sqrt(fan_in)), experts U(±1/sqrt(out·in)) with zero bias, routers U(±1/sqrt(E)).
EncoderWeights random_encoder_weights(const ModelConfig& cfg, uint64_t seed);

// Reads the encoder tensors of a model export; the config comes from its metadata. Errors name the
// file and the tensor (missing, wrong dtype or shape, non-finite values).
EncoderWeights load_encoder_weights(const std::string& path);

// The same from any source of named tensors (the libtorch model's parameters in the CLI): `get`
// returns the fp32 values of the authors' key `name` with the expected `shape`, or throws.
using TensorSource = std::function<std::vector<float>(const std::string& name, const std::vector<int64_t>& shape)>;
EncoderWeights encoder_weights_from(const ModelConfig& cfg, const TensorSource& get);

// Router input bias per expert for a task: zero for multi/shared gates; for task_cond the task
// embedding's contribution e_t · W_gate[d:, :] (constant over tokens), [E], for a MoE block.
std::vector<float> router_task_bias(const EncoderWeights& w, int block, int task);
// The router matrix a task uses in a MoE layer: [d, E] (the first d rows for task_cond).
const std::vector<float>& router_matrix(const EncoderWeights& w, int block, int task);

}  // namespace m3vit::hw
