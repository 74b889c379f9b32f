// Label PNGs read the way PIL hands them to the authors' code (np.array(Image.open(path)),
// data/pascal_context.py:334-337, data/nyud.py:200-205): a palette PNG gives its palette indices (not
// the colours), a gray PNG gives its stored values (8 or 16 bit). stb_image would expand a palette to
// RGB, so palette and 16-bit gray files are decoded here (zlib through stb, PNG filters ourselves).
#pragma once

#include <string>

#include "data/sample.h"

namespace m3vit {

// [1,H,W] floats of the stored index/gray value. Throws IoError (missing) or FormatError (not a PNG,
// interlaced, or a colour type other than gray / palette), naming the file.
ImageF read_label_png(const std::string& path);

// Writes an 8-bit gray PNG from [1,H,W] values in 0..255 (rounded, clamped), atomically.
void write_label_png(const std::string& path, const ImageF& labels);

}  // namespace m3vit
