// Reader for PyTorch `torch.save` files holding a (possibly nested) state dict, torch-free.
// Why not torch::pickle_load: libtorch 1.13's unpickler fails on OrderedDict (returns None) and on
// one-entry dicts (measured with Debian's libtorch 1.13, docs/WEIGHTS.md), and the authors'
// checkpoints are plain state_dict pickles.
// Handles the zip format (torch >= 1.6, stored entries `archive/data.pkl` + `archive/data/<key>`),
// pickle protocol 2, OrderedDict / dict, `torch._utils._rebuild_tensor_v2` with storage offset and
// strides (copied out C-contiguous), and nested dicts such as {'model': state_dict, 'epoch': 3}.
#pragma once

#include <map>
#include <string>

#include "io/tensor_data.h"

namespace m3vit {

// Returns every tensor reachable through nested dicts, keys joined with '.'
// (a top-level {'model': {...}} gives "model.backbone..."). Non-tensor values are skipped.
// Throws IoError / FormatError naming the path and what was not understood.
std::map<std::string, OwnedTensor> read_pth_tensors(const std::string& path);

}  // namespace m3vit
