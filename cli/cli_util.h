// Pieces shared by the subcommands (torch-free, so `m3vit run` stays torch-free too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace m3vit::cli {

// Throws IoError "<flag> <path>: folder <dir> does not exist" unless path's folder exists (an empty
// path is not asked for and passes), so that no work is done for an output that cannot be written.
void check_output_dir(const std::string& path, const std::string& flag);

// FNV-1a over the float32 bytes of the logits, 12 hex digits: `m3vit infer` and `m3vit run` print it,
// so equal logits show an equal hash and two runs can be compared at a glance.
std::string logits_hash(const float* p, size_t n);

// "WxH" of an image or input size.
std::string size_str(int64_t h, int64_t w);

}  // namespace m3vit::cli
