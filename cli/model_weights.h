// Loading weights into a freshly built model for `m3vit infer` / `m3vit export` (model/checkpoint.h
// does the reading): our export, the authors' .pth / shard directory, or the same keys as safetensors.
#pragma once

#include <string>

namespace m3vit {
class MultiTaskModelImpl;
}

namespace m3vit::cli {

// Loads every tensor of `m` from `path` (strict: a checkpoint missing a model tensor is an error).
// For our export, the stored config must describe the same model as `m`'s config (ConfigError naming
// the fields that differ). Returns a one-line description for the terminal.
// need_training_weights: the training-only tensors (the TAM) must come from the file too; an
// inference export (written without them) is then a FormatError naming the file and the missing part.
// Without it, such an export loads and the TAM keeps its initialisation (inference never runs it).
std::string load_model_weights(MultiTaskModelImpl& m, const std::string& path, bool need_training_weights = false);

}  // namespace m3vit::cli
