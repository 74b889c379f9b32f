// `m3vit run` on many images: one loaded model, every image of a folder (or a list file), one or
// more tasks, a picture (and logits) per image and task in an output folder (cli/cmd_run.cpp parses
// the options; docs/CLI.md "m3vit run on a folder").
#pragma once

#include <string>
#include <vector>

#include "runtime/options.h"

namespace m3vit::cli {

struct RunFolderArgs {
  std::string model;
  std::string tasks;       // "semseg", "semseg,depth" or "all"
  std::string images_dir;  // PNG/JPEG files of this folder, sorted by name
  std::string list_file;   // or one path per line (relative to the list's folder; # comments)
  std::string image;       // or one image
  std::string out_dir;     // created if missing; <stem>_<task>.png (and .npy)
  bool save_logits = false;
  bool resize = false;
  rt::EngineOptions engine;
};

// Returns the number of images that failed (unreadable, wrong size, non-finite output): each is
// reported by name and skipped. Errors that concern the whole run (the model, the tasks, the folder,
// an unwritable output folder) throw.
int run_folder(const RunFolderArgs& a);

}  // namespace m3vit::cli
