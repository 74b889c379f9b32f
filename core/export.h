// The model-export format: one safetensors file that `m3vit export` writes and the runtime, the
// hardware model and load_exported() read. This file is its only owner: the format name, the tensor
// key builders, the table of every tensor a config implies, and the metadata.
//
//   tensors     the authors' state-dict keys (model/multitask_model.h), F32, C-contiguous; experts
//               stacked [E, out, in] (FastMoE's FMoELinear, fmoe/layers.py); routers input-major
//               [d_gate, E] (the authors' models/gate_funs/noisy_gate_vmoe.py w_gate); BatchNorm
//               running statistics included, not folded.
//   __metadata__  "format": kExportFormat, "m3vit_config": config_to_json(cfg) (core/config_json.cpp),
//                 "m3vit_version": the writer's version (include/m3vit/version.h),
//                 "training_weights": "included" | "omitted" (kTrainingWeightsKey): whether the
//                 training-only tensors (training_only_key: the TAM) are in the file. `m3vit export`
//                 omits them unless asked (inference never reads them: 189 MB of the paper model's
//                 416 MB); the exports written by training keep them. A file without the key is from
//                 before the key existed and holds every tensor.
//
// The libtorch model must own exactly these tensors (tests/model/test_export_specs.cpp checks its
// named_parameters() + buffers against export_tensor_specs for every gate kind).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace m3vit {

class SafeTensorsFile;

// "m3vit-export-v<N>" with N = M3VIT_EXPORT_FORMAT_VERSION (include/m3vit/version.h). A reader takes
// every N up to its own and refuses a newer one, naming both (docs/LIBRARY.md "Versions").
constexpr const char* kExportFormat = "m3vit-export-v1";
constexpr const char* kExportFormatPrefix = "m3vit-export-v";
// Metadata key of the ModelConfig JSON, in exports and in routing traces.
constexpr const char* kConfigMetadataKey = "m3vit_config";
// Metadata key saying whether an export holds the training-only tensors: kTrainingWeightsIncluded
// or kTrainingWeightsOmitted. The config in the file still describes the whole model (its `tam`
// included), so a loader can tell "left out on purpose" from "never existed".
constexpr const char* kTrainingWeightsKey = "training_weights";
constexpr const char* kTrainingWeightsIncluded = "included";
constexpr const char* kTrainingWeightsOmitted = "omitted";

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

std::string block_key(int block, const std::string& rest);              // backbone.blocks.{i}.{rest}
std::string head_key(const std::string& task, const std::string& rest);  // decoders.{task}.{rest}
// Router of a MoE block: "mlp.gate.{task}.w_gate" (multi gate) or "mlp.gate.w_gate" (one router).
std::string router_key(const ModelConfig& cfg, int block, int task);
// Rows of a router matrix: d, plus the task embedding's width for a task_cond gate with one.
int router_rows(const ModelConfig& cfg);
// Routers per MoE block: one per task for the multi gate, else one.
int router_count(const ModelConfig& cfg);
// True when the config has the task-embedding MLP (backbone.gate_task_represent.*).
bool has_task_embedding(const ModelConfig& cfg);

// Every tensor an export of cfg holds (F32), in a fixed order: the backbone, then each task head.
// The training-only TAM and BatchNorm's num_batches_tracked may also be present (export_only_key).
std::vector<TensorSpec> export_tensor_specs(const ModelConfig& cfg);
// Keys an export may carry that inference never reads: the TAM (training-only deep supervision, the
// authors' models/transformers/vit_up_head.py TAM branch) and BatchNorm's step counter.
bool export_only_key(const std::string& name);
// Keys of the tensors only training uses, which an inference export leaves out: the TAM
// ("tam_model{L}.*"). BatchNorm's num_batches_tracked stays (a few bytes, and libtorch's BatchNorm
// owns it).
bool training_only_key(const std::string& name);

// The metadata an export carries (format tag, config JSON, writer's version, whether the
// training-only tensors are in it).
std::map<std::string, std::string> export_metadata(const ModelConfig& cfg, bool training_weights = true);
// False when the metadata says the training-only tensors were left out ("training_weights":
// "omitted"); true otherwise (also for exports written before the key existed, which hold every
// tensor). FormatError naming `origin` for a value that is neither.
bool export_has_training_weights(const std::map<std::string, std::string>& metadata, const std::string& origin);
// The ModelConfig stored under kConfigMetadataKey (exports and traces). FormatError when absent,
// ConfigError naming `origin` when the JSON does not describe a config.
ModelConfig config_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& origin);
// Checks the format tag (a newer format than this build reads is a FormatError naming both versions),
// then returns the stored config (not validated beyond its JSON). FormatError / ConfigError naming
// the path.
ModelConfig read_export_config(const SafeTensorsFile& file);
ModelConfig read_export_config(const std::string& path);

}  // namespace m3vit
