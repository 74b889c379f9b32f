// m3vit: the C++ API of the M³ViT inference runtime (libm3vit, no libtorch).
//
//   m3vit::api::Model model("model.safetensors");                // open once: check, pack, plan
//   int task = model.task("semseg");
//   std::vector<float> x = model.load_image("street.png");        // [3, H, W], normalised
//   std::vector<float> logits = model.run(task, x);               // [C, H, W], many times
//   model.write_picture(task, logits, "street_semseg.png");
//
// Header-only over the C API (m3vit/m3vit.h): the shared library's ABI is the C functions, and this
// layer compiles into the caller with the caller's compiler and standard library (docs/LIBRARY.md,
// "ABI"). A failing call throws m3vit::api::Error with the C API's status and one-line message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "m3vit/m3vit.h"

namespace m3vit::api {

class Error : public std::runtime_error {
 public:
  Error(m3vit_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  m3vit_status status() const { return status_; }

 private:
  m3vit_status status_;
};

inline void check(m3vit_status s) {
  if (s != M3VIT_OK) throw Error(s, m3vit_last_error());
}

enum class Residency { resident = M3VIT_RESIDENT, stream = M3VIT_STREAM };
enum class Precision { fp32 = M3VIT_FP32, bf16 = M3VIT_BF16 };

struct Options {
  Residency experts = Residency::resident;  // the MoE layers' experts
  Residency layers = Residency::resident;   // attention, dense MLP and head conv weights
  Precision precision = Precision::fp32;
  int threads = 0;                          // 0 = all hardware threads
  size_t memory_budget = 0;                 // stream modes: bytes for the weight buffers (0 = two loads)
  bool direct_head_convs = false;           // fp32 head convs direct (less memory) instead of Winograd
};

using Timings = m3vit_timings;

// The last run's top-k expert ids: ids[(layer * tokens + token) * k + j], descending gate probability.
struct Routing {
  int moe_layers = 0, tokens = 0, k = 0;
  std::vector<int32_t> ids;
  int32_t expert(int layer, int token, int j) const { return ids[(static_cast<size_t>(layer) * tokens + token) * k + j]; }
};

inline std::string version() { return m3vit_version(); }
inline std::string features() { return m3vit_features(); }

class Model {
 public:
  explicit Model(const std::string& path, const Options& o = Options()) {
    m3vit_options c;
    m3vit_options_init(&c);
    c.experts = static_cast<m3vit_residency>(o.experts);
    c.layers = static_cast<m3vit_residency>(o.layers);
    c.precision = static_cast<m3vit_precision>(o.precision);
    c.threads = o.threads;
    c.memory_budget = o.memory_budget;
    c.direct_head_convs = o.direct_head_convs ? 1 : 0;
    check(m3vit_open(path.c_str(), &c, &m_));
  }
  ~Model() { m3vit_close(m_); }
  Model(Model&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
  Model& operator=(Model&& other) noexcept {
    if (this != &other) {
      m3vit_close(m_);
      m_ = std::exchange(other.m_, nullptr);
    }
    return *this;
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  int channels() const { return size()[0]; }
  int height() const { return size()[1]; }
  int width() const { return size()[2]; }
  size_t image_floats() const { return static_cast<size_t>(channels()) * height() * width(); }

  std::vector<std::string> tasks() const {
    std::vector<std::string> names;
    for (int t = 0; t < m3vit_task_count(m_); ++t) names.emplace_back(m3vit_task_name(m_, t));
    return names;
  }
  int task(const std::string& name) const {
    int t = -1;
    check(m3vit_task_index(m_, name.c_str(), &t));
    return t;
  }
  int output_channels(int task) const {
    int c = 0;
    check(m3vit_output_channels(m_, task, &c));
    return c;
  }
  size_t logits_floats(int task) const { return static_cast<size_t>(output_channels(task)) * height() * width(); }
  std::string config_json() const { return m3vit_config_json(m_); }

  // image [3, H, W] normalised -> logits [C, H, W]; the caller's buffers, sizes in floats.
  void run(int task, const float* image, size_t image_floats, float* logits, size_t logits_floats) {
    check(m3vit_run(m_, task, image, image_floats, logits, logits_floats));
  }
  std::vector<float> run(int task, const std::vector<float>& image) {
    std::vector<float> logits(logits_floats(task));
    run(task, image.data(), image.size(), logits.data(), logits.size());
    return logits;
  }

  Timings last_timings() const {
    Timings t;
    m3vit_timings_init(&t);
    check(m3vit_last_timings(m_, &t));
    return t;
  }
  Routing last_routing() const {
    Routing r;
    check(m3vit_routing_shape(m_, &r.moe_layers, &r.tokens, &r.k));
    r.ids.resize(static_cast<size_t>(r.moe_layers) * r.tokens * r.k);
    check(m3vit_last_routing(m_, r.ids.data(), r.ids.size()));
    return r;
  }

  // The task's prediction map (m3vit_predict): class ids, unit normals, probabilities or depth.
  std::vector<float> predict(int task, const std::vector<float>& logits) const {
    int c = 0;
    check(m3vit_prediction_channels(m_, task, &c));
    std::vector<float> map(static_cast<size_t>(c) * height() * width());
    check(m3vit_predict(m_, task, logits.data(), logits.size(), map.data(), map.size()));
    return map;
  }
  // An RGB picture in memory, rgb [height, width, 3], as the model's normalised input.
  std::vector<float> image_to_input(const uint8_t* rgb, int h, int w, bool resize = false) const {
    std::vector<float> x(image_floats());
    check(m3vit_image_to_input(m_, rgb, h, w, resize ? 1 : 0, x.data(), x.size()));
    return x;
  }
  // A JPEG/PNG as the model's normalised input (resize: scale another size bilinearly).
  std::vector<float> load_image(const std::string& path, bool resize = false) const {
    std::vector<float> x(image_floats());
    check(m3vit_load_image(m_, path.c_str(), resize ? 1 : 0, x.data(), x.size()));
    return x;
  }
  // The task's picture of `logits` as PNG, as `m3vit run --out` writes it.
  void write_picture(int task, const std::vector<float>& logits, const std::string& png_path) const {
    check(m3vit_write_picture(m_, task, logits.data(), logits.size(), png_path.c_str()));
  }

  m3vit_model* handle() const { return m_; }

 private:
  std::vector<int> size() const {
    std::vector<int> s(3);
    check(m3vit_input_size(m_, &s[0], &s[1], &s[2]));
    return s;
  }
  m3vit_model* m_ = nullptr;
};

}  // namespace m3vit::api
