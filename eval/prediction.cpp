// Network output -> stored prediction at the original resolution (eval/prediction.h).
#include "eval/prediction.h"

#include <algorithm>
#include <cmath>

#include "common/errors.h"
#include "data/dataset.h"
#include "data/image_ops.h"
#include "data/label_png.h"
#include "data/mat_file.h"
#include "data/synthetic.h"

namespace m3vit {

ImageF stored_prediction(const std::string& task, const ImageF& out, int orig_h, int orig_w) {
  check_task_name(task);
  const size_t np = out.plane_size();
  auto need = [&](bool ok, const char* what) {
    if (!ok) throw ShapeError(task + " output is " + shape_of(out) + ", expected " + what);
  };
  for (float v : out.data)
    if (!std::isfinite(v)) throw NumericError(task + " output has a NaN/Inf value");
  if (task == "semseg" || task == "human_parts") {
    need(out.c >= 2, "[C >= 2, h, w] class scores");
    ImageF ids(1, out.h, out.w);
    for (size_t k = 0; k < np; ++k) {  // first maximum on ties
      int best = 0;
      for (int c = 1; c < out.c; ++c)
        if (out.data[c * np + k] > out.data[best * np + k]) best = c;
      ids.data[k] = static_cast<float>(best);
    }
    return resize(ids, orig_h, orig_w, Interp::nearest);
  }
  if (task == "depth") {
    need(out.c == 1, "[1, h, w]");
    return resize(out, orig_h, orig_w, Interp::linear);
  }
  ImageF m(out.c, out.h, out.w);
  if (task == "normals") {
    need(out.c == 3, "[3, h, w]");
    for (size_t k = 0; k < np; ++k) {  // F.normalize(p=2, eps=1e-12), then (n + 1) * 255 / 2
      const float a = out.data[k], b = out.data[np + k], c = out.data[2 * np + k];
      const float n = std::max(std::sqrt(a * a + b * b + c * c), 1e-12f);
      m.data[k] = (a / n + 1.f) * 255.f / 2.f;
      m.data[np + k] = (b / n + 1.f) * 255.f / 2.f;
      m.data[2 * np + k] = (c / n + 1.f) * 255.f / 2.f;
    }
  } else {  // sal, edge
    need(out.c == 1, "[1, h, w]");
    for (size_t k = 0; k < np; ++k) m.data[k] = 255.f * (1.f / (1.f + std::exp(-out.data[k])));
  }
  ImageF r = resize(m, orig_h, orig_w, Interp::linear);
  for (float& v : r.data) v = std::trunc(std::clamp(v, 0.f, 255.f));  // .astype(np.uint8) of values in range
  return r;
}

bool all_ignored(const ImageF& label) {
  return std::all_of(label.data.begin(), label.data.end(), [](float v) { return v == kIgnoreLabel; });
}

void save_stored_prediction(const std::string& path, const std::string& task, const ImageF& m) {
  check_task_name(task);
  if (task == "depth") {
    if (m.c != 1) throw ShapeError("depth prediction " + path + " is " + shape_of(m));
    write_mat_matrix_f64(path, "depth", m.h, m.w, std::vector<double>(m.data.begin(), m.data.end()));
  } else if (task == "normals") {
    write_rgb_png(path, m);
  } else {
    write_label_png(path, m);
  }
}

ImageF load_stored_prediction(const std::string& path, const std::string& task) {
  check_task_name(task);
  if (task == "depth") {
    const MatMatrix d = read_mat_matrix(path, "depth");
    ImageF m(1, d.h, d.w);
    for (size_t k = 0; k < d.v.size(); ++k) m.data[k] = static_cast<float>(d.v[k]);
    return m;
  }
  if (task == "normals") return load_rgb(path);
  return read_label_png(path);
}

}  // namespace m3vit
