// Pictures of samples and predictions: the image and each task's map side by side in one PNG row,
// used by the demo report and for eyeballing a data set. Colours: class maps with the PASCAL VOC
// palette (255 = ignore in white), saliency and edges gray, normals as (n + 1) / 2 RGB, depth with a
// blue-to-yellow ramp scaled to the map's own valid range; invalid pixels black.
#pragma once

#include <string>
#include <vector>

#include "common/image_io.h"
#include "data/sample.h"

namespace m3vit {

// One task map (label or prediction, sample.h conventions) as an RGB picture of its size.
Image8 colorize_task(const std::string& task, const ImageF& map);
// The image of a sample as RGB (undoing the ImageNet normalisation of a transformed sample).
Image8 sample_image_rgb(const Sample& s);
// Tiles side by side (equal heights required), with a `gap`-pixel white separator.
Image8 hconcat(const std::vector<Image8>& tiles, int gap = 2);
// Rows stacked top to bottom (narrower rows padded white).
Image8 vconcat(const std::vector<Image8>& rows, int gap = 2);
// Image + every label of the sample in the authors' task order.
Image8 sample_preview(const Sample& s);
// Writes sample_preview(s) as PNG (atomic).
void write_sample_preview(const std::string& path, const Sample& s);

}  // namespace m3vit
