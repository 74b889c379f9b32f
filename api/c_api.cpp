// The C API (include/m3vit/m3vit.h) over the runtime's Engine (runtime/engine.h). Its only jobs:
// check the caller's pointers and sizes, turn the library's typed errors (common/errors.h) into a
// status and the per-thread last-error line, and serialise runs on one handle. The C++ API
// (include/m3vit/m3vit.hpp) is an inline layer over these functions, so the shared library's ABI is
// this file's `m3vit_*` symbols and nothing else (api/libm3vit.map).
#include "m3vit/m3vit.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/image_io.h"
#include "common/task_prediction.h"
#include "common/visualize.h"
#include "core/config.h"
#include "runtime/engine.h"
#include "runtime/image_input.h"
#include "runtime/ops/dnnl_context.h"
#include "runtime/ops/simd.h"

struct m3vit_model {
  std::unique_ptr<m3vit::rt::Engine> engine;
  std::vector<std::string> task_names;
  std::string config_json;
  std::mutex run_lock;  // Engine::run uses the handle's workspace: one run at a time
  bool has_run = false;
};

namespace {

thread_local std::string last_error;

// A failure the API itself detects (a null pointer, a size).
struct ArgumentError : m3vit::Error {
  using m3vit::Error::Error;
};

m3vit_status fail(m3vit_status s, const std::string& message) {
  last_error = message;
  return s;
}

// Runs `body`, mapping each error type to its status. The most derived types come first.
template <class F>
m3vit_status guarded(F&& body) {
  try {
    body();
    return M3VIT_OK;
  } catch (const ArgumentError& e) {
    return fail(M3VIT_ERROR_ARGUMENT, e.what());
  } catch (const m3vit::IoError& e) {
    return fail(M3VIT_ERROR_IO, e.what());
  } catch (const m3vit::FormatError& e) {
    return fail(M3VIT_ERROR_FORMAT, e.what());
  } catch (const m3vit::ConfigError& e) {
    return fail(M3VIT_ERROR_CONFIG, e.what());
  } catch (const m3vit::ShapeError& e) {
    return fail(M3VIT_ERROR_SHAPE, e.what());
  } catch (const m3vit::NumericError& e) {
    return fail(M3VIT_ERROR_NUMERIC, e.what());
  } catch (const std::bad_alloc&) {
    return fail(M3VIT_ERROR_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(M3VIT_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(M3VIT_ERROR_INTERNAL, "unknown error");
  }
}

void need(const void* p, const char* what) {
  if (!p) throw ArgumentError(std::string(what) + " is NULL");
}

const m3vit::ModelConfig& config(const m3vit_model* m) { return m->engine->config(); }

void need_task(const m3vit_model* m, int task) {
  if (task < 0 || task >= static_cast<int>(m->task_names.size()))
    throw ArgumentError("task index " + std::to_string(task) + " is out of range: the model has " +
                        std::to_string(m->task_names.size()) + " tasks");
}

// A caller's buffer must hold exactly the tensor: a smaller one would be overrun, a larger one
// usually means the caller has the shape wrong.
void need_floats(size_t given, size_t want, const char* what, const std::string& shape) {
  if (given != want)
    throw ArgumentError(std::string(what) + " holds " + std::to_string(given) + " floats, the model needs " +
                        std::to_string(want) + " (" + shape + ")");
}

size_t image_floats(const m3vit_model* m) {
  const auto& c = config(m);
  return static_cast<size_t>(c.in_chans) * c.img_h * c.img_w;
}
std::string image_shape(const m3vit_model* m) {
  const auto& c = config(m);
  return "[" + std::to_string(c.in_chans) + ", " + std::to_string(c.img_h) + ", " + std::to_string(c.img_w) + "]";
}
size_t logits_floats(const m3vit_model* m, int task) {
  const auto& c = config(m);
  return static_cast<size_t>(m->engine->out_channels(task)) * c.img_h * c.img_w;
}
std::string logits_shape(const m3vit_model* m, int task) {
  const auto& c = config(m);
  return "[" + std::to_string(m->engine->out_channels(task)) + ", " + std::to_string(c.img_h) + ", " +
         std::to_string(c.img_w) + "] for task " + m->task_names[task];
}

// The structs' sizes in version 0.1.0: a caller's struct_size may be larger (a newer header) or equal,
// never smaller.
constexpr size_t kOptionsSize_0_1 = offsetof(m3vit_options, direct_head_convs) + sizeof(int);
constexpr size_t kTimingsSize_0_1 = offsetof(m3vit_timings, stream_wait_ms) + sizeof(double);

void need_size(size_t size, size_t at_least, const char* what) {
  if (size < at_least) throw ArgumentError(std::string(what) + ".struct_size is " + std::to_string(size) + ", too small");
}

}  // namespace

extern "C" {

const char* m3vit_version(void) { return M3VIT_VERSION_STRING; }
int m3vit_version_number(void) { return M3VIT_VERSION_NUMBER; }
int m3vit_export_format_version(void) { return M3VIT_EXPORT_FORMAT_VERSION; }

const char* m3vit_features(void) {
  static const std::string words = [] {
    std::string s = "fp32";
    if (m3vit::rt::cpu_has_bf16()) s += " bf16";
    if (m3vit::rt::cpu_has_vnni()) s += " int8";
    if (m3vit::rt::cpu_has_avx512()) s += " avx512";
    return s;
  }();
  return words.c_str();
}

const char* m3vit_last_error(void) { return last_error.c_str(); }

const char* m3vit_status_name(m3vit_status s) {
  switch (s) {
    case M3VIT_OK: return "ok";
    case M3VIT_ERROR_ARGUMENT: return "argument";
    case M3VIT_ERROR_IO: return "io";
    case M3VIT_ERROR_FORMAT: return "format";
    case M3VIT_ERROR_CONFIG: return "config";
    case M3VIT_ERROR_SHAPE: return "shape";
    case M3VIT_ERROR_NUMERIC: return "numeric";
    case M3VIT_ERROR_MEMORY: return "memory";
    case M3VIT_ERROR_INTERNAL: return "internal";
  }
  return "unknown";
}

void m3vit_options_init(m3vit_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->experts = M3VIT_RESIDENT;
  o->layers = M3VIT_RESIDENT;
  o->precision = M3VIT_FP32;
}

void m3vit_timings_init(m3vit_timings* t) {
  if (!t) return;
  std::memset(t, 0, sizeof *t);
  t->struct_size = sizeof *t;
}

m3vit_status m3vit_open(const char* path, const m3vit_options* options, m3vit_model** model) {
  if (model) *model = nullptr;
  return guarded([&] {
    need(path, "path");
    need(model, "model");
    m3vit_options o;
    m3vit_options_init(&o);
    if (options) {
      // Every field up to direct_head_convs exists since version 0.1.0; fields a later version
      // appends keep their defaults when the caller's struct_size does not cover them.
      need_size(options->struct_size, kOptionsSize_0_1, "options");
      std::memcpy(&o, options, std::min(options->struct_size, sizeof o));
      o.struct_size = sizeof o;
    }
    if (o.experts != M3VIT_RESIDENT && o.experts != M3VIT_STREAM)
      throw ArgumentError("options.experts is " + std::to_string(o.experts) + ": use M3VIT_RESIDENT or M3VIT_STREAM");
    if (o.layers != M3VIT_RESIDENT && o.layers != M3VIT_STREAM)
      throw ArgumentError("options.layers is " + std::to_string(o.layers) + ": use M3VIT_RESIDENT or M3VIT_STREAM");
    if (o.precision != M3VIT_FP32 && o.precision != M3VIT_BF16 && o.precision != M3VIT_INT8)
      throw ArgumentError("options.precision is " + std::to_string(o.precision) +
                          ": use M3VIT_FP32, M3VIT_BF16 or M3VIT_INT8");
    if (o.threads < 0) throw ArgumentError("options.threads is " + std::to_string(o.threads) + ": use 0 (all) or more");
    m3vit::rt::EngineOptions eo;
    eo.experts = o.experts == M3VIT_STREAM ? m3vit::rt::Residency::stream : m3vit::rt::Residency::resident;
    eo.layers = o.layers == M3VIT_STREAM ? m3vit::rt::Residency::stream : m3vit::rt::Residency::resident;
    eo.precision = o.precision == M3VIT_BF16   ? m3vit::rt::Precision::bf16
                   : o.precision == M3VIT_INT8 ? m3vit::rt::Precision::int8
                                               : m3vit::rt::Precision::fp32;
    eo.threads = o.threads;
    eo.memory_budget = o.memory_budget;
    eo.winograd = o.direct_head_convs == 0;
    auto m = std::make_unique<m3vit_model>();
    m->engine = std::make_unique<m3vit::rt::Engine>(path, eo);
    for (const auto& t : m->engine->config().tasks) m->task_names.push_back(t.name);
    m->config_json = m3vit::config_to_json(m->engine->config());
    *model = m.release();
  });
}

void m3vit_close(m3vit_model* model) { delete model; }

m3vit_status m3vit_input_size(const m3vit_model* model, int* channels, int* height, int* width) {
  return guarded([&] {
    need(model, "model");
    const auto& c = config(model);
    if (channels) *channels = c.in_chans;
    if (height) *height = c.img_h;
    if (width) *width = c.img_w;
  });
}

int m3vit_task_count(const m3vit_model* model) { return model ? static_cast<int>(model->task_names.size()) : 0; }

const char* m3vit_task_name(const m3vit_model* model, int task) {
  if (!model || task < 0 || task >= static_cast<int>(model->task_names.size())) return nullptr;
  return model->task_names[task].c_str();
}

m3vit_status m3vit_task_index(const m3vit_model* model, const char* name, int* task) {
  return guarded([&] {
    need(model, "model");
    need(name, "name");
    need(task, "task");
    *task = model->engine->task_index(name);  // ConfigError naming the known tasks
  });
}

m3vit_status m3vit_output_channels(const m3vit_model* model, int task, int* channels) {
  return guarded([&] {
    need(model, "model");
    need(channels, "channels");
    need_task(model, task);
    *channels = model->engine->out_channels(task);
  });
}

const char* m3vit_config_json(const m3vit_model* model) { return model ? model->config_json.c_str() : nullptr; }

m3vit_status m3vit_run(m3vit_model* model, int task, const float* image, size_t n_image, float* logits,
                       size_t n_logits) {
  return guarded([&] {
    need(model, "model");
    need(image, "image");
    need(logits, "logits");
    need_task(model, task);
    need_floats(n_image, image_floats(model), "image", image_shape(model));
    need_floats(n_logits, logits_floats(model, task), "logits", logits_shape(model, task));
    std::lock_guard<std::mutex> hold(model->run_lock);
    model->has_run = false;  // a failed run leaves no "last run" behind
    model->engine->run(task, image, logits);
    model->has_run = true;
  });
}

m3vit_status m3vit_last_timings(const m3vit_model* model, m3vit_timings* timings) {
  return guarded([&] {
    need(model, "model");
    need(timings, "timings");
    need_size(timings->struct_size, kTimingsSize_0_1, "timings");
    auto& m = const_cast<m3vit_model&>(*model);
    std::lock_guard<std::mutex> hold(m.run_lock);
    if (!m.has_run) throw ArgumentError("no run on this model yet");
    const m3vit::rt::RunTimes& t = m.engine->last_times();
    m3vit_timings all;
    m3vit_timings_init(&all);
    all.embed_ms = t.embed;
    all.attention_ms = t.attention;
    all.mlp_ms = t.mlp;
    all.moe_ms = t.moe;
    all.head_ms = t.head;
    all.total_ms = t.total;
    all.experts_computed = t.experts_computed;
    all.stream_loads = t.stream.loads;
    all.stream_bytes_read = static_cast<int64_t>(t.stream.bytes_read);
    all.stream_wait_ms = t.stream.wait_ms;
    // Only the fields the caller's struct has (an older caller's is shorter); its struct_size stays.
    std::memcpy(reinterpret_cast<char*>(timings) + sizeof(size_t), reinterpret_cast<const char*>(&all) + sizeof(size_t),
                std::min(timings->struct_size, sizeof all) - sizeof(size_t));
  });
}

m3vit_status m3vit_routing_shape(const m3vit_model* model, int* moe_layers, int* tokens, int* k) {
  return guarded([&] {
    need(model, "model");
    const auto& c = config(model);
    const bool moe = !c.moe_blocks.empty();
    if (moe_layers) *moe_layers = static_cast<int>(c.moe_blocks.size());
    if (tokens) *tokens = moe ? 1 + c.grid_h() * c.grid_w() : 0;
    if (k) *k = moe ? c.moe_top_k : 0;
  });
}

m3vit_status m3vit_last_routing(const m3vit_model* model, int32_t* expert_ids, size_t count) {
  return guarded([&] {
    need(model, "model");
    auto& m = const_cast<m3vit_model&>(*model);
    std::lock_guard<std::mutex> hold(m.run_lock);
    if (!m.has_run) throw ArgumentError("no run on this model yet");
    const std::vector<int32_t>& r = m.engine->last_routing();
    if (count != r.size())
      throw ArgumentError("expert_ids holds " + std::to_string(count) + " values, the routing has " +
                          std::to_string(r.size()) + " ([moe_layers, tokens, k], m3vit_routing_shape)");
    if (!r.empty()) {
      need(expert_ids, "expert_ids");
      std::memcpy(expert_ids, r.data(), r.size() * sizeof(int32_t));
    }
  });
}

m3vit_status m3vit_prediction_channels(const m3vit_model* model, int task, int* channels) {
  return guarded([&] {
    need(model, "model");
    need(channels, "channels");
    need_task(model, task);
    *channels = m3vit::prediction_channels(model->task_names[task]);
  });
}

m3vit_status m3vit_predict(const m3vit_model* model, int task, const float* logits, size_t n_logits, float* prediction,
                           size_t n_prediction) {
  return guarded([&] {
    need(model, "model");
    need(logits, "logits");
    need(prediction, "prediction");
    need_task(model, task);
    need_floats(n_logits, logits_floats(model, task), "logits", logits_shape(model, task));
    const auto& c = config(model);
    const std::string& name = model->task_names[task];
    const int pc = m3vit::prediction_channels(name);
    need_floats(n_prediction, static_cast<size_t>(pc) * c.img_h * c.img_w, "prediction",
                "[" + std::to_string(pc) + ", " + std::to_string(c.img_h) + ", " + std::to_string(c.img_w) + "] for task " + name);
    const std::vector<float> map = m3vit::task_prediction(name, logits, model->engine->out_channels(task), c.img_h, c.img_w);
    std::memcpy(prediction, map.data(), map.size() * sizeof(float));
  });
}

m3vit_status m3vit_image_to_input(const m3vit_model* model, const uint8_t* rgb, int height, int width, int resize,
                                  float* image, size_t n_image) {
  return guarded([&] {
    need(model, "model");
    need(rgb, "rgb");
    need(image, "image");
    if (height <= 0 || width <= 0 || height > 65536 || width > 65536)
      throw ArgumentError("picture size " + std::to_string(width) + "x" + std::to_string(height) +
                          " is out of range (1..65536 each)");
    need_floats(n_image, image_floats(model), "image", image_shape(model));
    m3vit::Image8 img;
    img.height = height;
    img.width = width;
    img.channels = 3;
    img.pixels.assign(rgb, rgb + static_cast<size_t>(height) * width * 3);
    const std::vector<float> x = m3vit::rt::image_to_input(img, config(model), resize != 0, "in memory", "pass resize = 1 to scale it");
    std::memcpy(image, x.data(), x.size() * sizeof(float));
  });
}

m3vit_status m3vit_load_image(const m3vit_model* model, const char* path, int resize, float* image, size_t n_image) {
  return guarded([&] {
    need(model, "model");
    need(path, "path");
    need(image, "image");
    need_floats(n_image, image_floats(model), "image", image_shape(model));
    const std::vector<float> x = m3vit::rt::image_to_input(m3vit::read_image(path, 3), config(model), resize != 0, path,
                                                           "pass resize = 1 to scale it");
    std::memcpy(image, x.data(), x.size() * sizeof(float));
  });
}

m3vit_status m3vit_write_picture(const m3vit_model* model, int task, const float* logits, size_t n_logits,
                                 const char* png_path) {
  return guarded([&] {
    need(model, "model");
    need(logits, "logits");
    need(png_path, "png_path");
    need_task(model, task);
    need_floats(n_logits, logits_floats(model, task), "logits", logits_shape(model, task));
    const auto& c = config(model);
    m3vit::write_png(png_path, m3vit::visualize_task(model->task_names[task], logits, model->engine->out_channels(task),
                                                     c.img_h, c.img_w));
  });
}

}  // extern "C"
