// Training checkpoints: everything needed to continue a run exactly where it stopped (the authors'
// checkpoint.pth.tar holds epoch, model, optimizer and best result, train_fastmoe.py:447-452; we add
// the RNG state and the position inside the epoch so that a resumed run is bit-identical).
//
// File: one safetensors file, written atomically (temp file, fsync, rename; io/safetensors.h).
//   model/<key>               every parameter and buffer under the authors' state-dict key
//   optimizer/<kind>/<key>    Optimizer::state_dict() (momentum_buffer, exp_avg, exp_avg_sq, step)
//   rng/torch_cpu             U8: torch's default CPU generator state (router noise, dropout)
//   __metadata__: format = "m3vit-train-v1", m3vit_config = config_to_json(model config),
//                 train_options = the training options (JSON), position = TrainPosition (JSON)
// The data order needs no saved state: every batch is a pure function of (seed, epoch, index).
//
// Expert-parallel runs (train/expert_shards.h) write the experts as shards instead: this file then
// leaves out every expert tensor and the experts' optimizer state (Adam's step counts stay), and its
// metadata expert_shards = {"world": N, "dir": "shards"} says where they are: for r < N,
//   <dir>/r.safetensors            rank r's experts in the authors' per-rank layout (rank 0: every tensor)
//   <dir>/r.optimizer.safetensors  optimizer/<kind>/<key> for those experts
// both with metadata step = position.step. Loading concatenates them in rank order, so any process
// count (and one process) resumes from them. A pair written for this step but not yet moved out of
// <dir>/next/ (the run stopped between the commit and the move) is read from there.
#pragma once

#include "common/pch/torch_pch.h"

#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace m3vit {

class Optimizer;

inline constexpr const char* kTrainCheckpointFormat = "m3vit-train-v1";

// Where a run stands. Saved at optimizer-step boundaries only.
struct TrainPosition {
  int64_t epoch = 0;           // epoch in progress, 0-based
  int64_t batch_in_epoch = 0;  // batches of that epoch already consumed (the data position)
  int64_t step = 0;            // optimizer steps done in the whole run
  int64_t images = 0;          // training images consumed
  double best_delta_m = -std::numeric_limits<double>::infinity();  // best validation Δm so far (%)
  int64_t best_step = -1;      // step of the best checkpoint, -1 before the first validation
};

std::string position_to_json(const TrainPosition& p);
TrainPosition position_from_json(const std::string& json);  // throws FormatError naming the key

// The experts an expert-parallel checkpoint leaves to its shards (see the file comment).
struct ExpertShardSet {
  int world = 0;                   // N: shards 0..N-1
  std::string dir = "shards";      // relative to the checkpoint's folder
  std::set<std::string> params;    // the expert parameters' keys
};

// Writes a checkpoint atomically. `train_options_json` is stored as is (checked again on resume).
// `shards`: an expert-parallel checkpoint, whose experts the caller writes as shards.
void save_train_checkpoint(const std::string& path, const torch::nn::Module& model, const std::string& config_json,
                           const Optimizer& opt, const TrainPosition& pos, const std::string& train_options_json,
                           const ExpertShardSet* shards = nullptr);

struct LoadedCheckpoint {
  TrainPosition position;
  std::string config_json;
  std::string train_options_json;
};

// Restores model tensors, and when `opt` is given the optimizer state and torch's CPU RNG.
// Throws FormatError when the file is not a training checkpoint or a tensor is missing, ShapeError when
// a tensor's shape differs from the model's, naming the tensor and both shapes, NumericError naming the
// file and the tensor when a tensor it would use holds NaN or Inf (nothing is copied then).
// An expert-parallel checkpoint's experts come from its shards; a shard that is missing, of another
// step, or short of a tensor is a FormatError naming the shard file.
LoadedCheckpoint load_train_checkpoint(const std::string& path, torch::nn::Module& model, Optimizer* opt);

// Reads only the metadata (format check included).
LoadedCheckpoint read_train_checkpoint_metadata(const std::string& path);

// True when `path` is a safetensors file whose metadata says m3vit-train-v1.
bool is_train_checkpoint(const std::string& path);

// Copies the named tensors of `model` (parameters and buffers) from `tensors` (name -> tensor),
// checking that every model tensor is present with the right shape. `what` names the source.
void assign_model_tensors(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& tensors,
                          const std::string& what);

// The parameter an optimizer state entry belongs to: "exp_avg/<key>" -> "<key>" (Optimizer::state_dict).
std::string optimizer_state_param(const std::string& key);

// All parameters and buffers of a module by state-dict key (deterministic order).
std::vector<std::pair<std::string, torch::Tensor>> model_state(const torch::nn::Module& model);

}  // namespace m3vit
