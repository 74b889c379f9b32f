// The runtime's public API (runtime/engine.h): load-time assembly and the per-image pass.
#include "runtime/engine.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "common/errors.h"
#include "common/platform.h"
#include "core/flops.h"
#include "runtime/backbone.h"
#include "runtime/dense_store.h"
#include "runtime/expert_store.h"
#include "io/safetensors.h"
#include "runtime/head_store.h"
#include "runtime/int8_format.h"
#include "runtime/model_file.h"
#include "runtime/pup_head.h"
#include "runtime/task_switch.h"
#include "runtime/workspace.h"

namespace m3vit::rt {

namespace {
void check_task(const ModelConfig& c, int task) {
  if (task < 0 || task >= c.num_tasks())
    throw ConfigError("task index " + std::to_string(task) + " out of range: the model has " +
                      std::to_string(c.num_tasks()) + " tasks");
}
}  // namespace

struct Engine::Impl {
  EngineOptions opt;
  ModelConfig cfg;
  int threads = 1;
  DnnlContext ctx;
  std::unique_ptr<Backbone> backbone;
  // Declared before the ring: the ring's loader packs streamed head convs with the head's plans, so
  // the plans must outlive it.
  std::unique_ptr<PupHead> head;
  std::unique_ptr<WeightStream> ring;  // when anything streams
  std::unique_ptr<ExpertStore> experts;
  std::unique_ptr<DenseStore> dense;
  std::unique_ptr<HeadStore> head_convs;
  std::unique_ptr<TaskSwitch> tasks;
  std::vector<double> flops;  // per task
  Workspace work;             // activations of the backbone and, after it, of the head
  RunTimes times;
  std::vector<int32_t> routing;  // the last run's top-k expert ids, [moe_layers, N, k]
  std::vector<float> prefix_tokens;  // run_tasks: the tokens after the first MoE block's attention

  void pass(int task, const float* image, float* out, RunTrace* trace, Prefix prefix_mode);
  void head_only(int task, float* out);
  void add_stream_stats();
};

Engine::Engine(const std::string& path, const EngineOptions& opt) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = opt;
  if (opt.threads < 0) throw ConfigError("threads must be >= 0 (0 = all hardware threads)");
  m.threads = opt.threads > 0 ? opt.threads : default_threads();
  omp_set_num_threads(m.threads);
  if (opt.precision == Precision::bf16 && !cpu_has_bf16())
    throw ConfigError("bf16 mode needs a CPU with AVX512-BF16 (this one has none); use fp32");
  const bool stream_experts = opt.experts == Residency::stream, stream_layers = opt.layers == Residency::stream;
  if (!stream_experts && !stream_layers && opt.memory_budget != 0)
    throw ConfigError("--memory-budget applies to --experts stream or --layers stream only");
  if (opt.precision == Precision::int8 && !cpu_has_vnni())
    throw ConfigError("int8 mode needs a CPU with AVX512-VNNI (this one has none; oneDNN would run reference "
                      "int8 kernels, slower than fp32); use fp32");
  if (opt.calibration && (opt.precision != Precision::fp32 || stream_experts || stream_layers))
    throw ConfigError("calibration runs the fp32 engine with resident weights");
  // Open and check everything first: a bad file fails here before any packing work.
  ModelFile file(path);
  m.cfg = file.config();
  if (file.int8() && opt.precision != Precision::int8)
    throw ConfigError(path + " is an int8 file (m3vit calibrate): run it with --precision int8, or run the fp32 "
                      "export it was calibrated from");
  if (!file.int8() && opt.precision == Precision::int8)
    throw ConfigError(path + " holds fp32 weights: int8 mode needs the calibrated file that `m3vit calibrate "
                      "--model " + path + " --out M_int8.safetensors` writes");
  m.ctx.calibration = opt.calibration;
  m.backbone = std::make_unique<Backbone>(m.ctx, file, opt.precision);
  m.head = std::make_unique<PupHead>(m.ctx, m.cfg, opt.precision, opt.winograd, opt.winograd_tile);
  const MoeLayer& moe = m.backbone->moe();
  const DenseStore::Plans dense_plans = {&m.backbone->qkv_plan(), &m.backbone->proj_plan(), &m.backbone->fc1_plan(),
                                         &m.backbone->fc2_plan()};
  const HeadStore::Plans conv_plans = {&m.head->conv_plan(0), &m.head->conv_plan(1), &m.head->conv_plan(2),
                                       &m.head->conv_plan(3)};
  if (stream_experts || stream_layers) {
    // One ring for everything streamed; its buffers hold the largest load.
    size_t slot = 0, staging = 0;
    std::string largest;
    if (stream_experts && !m.cfg.moe_blocks.empty()) {
      slot = ExpertStore::slot_bytes(moe.fc1(), moe.fc2());
      staging = ExpertStore::staging_bytes(moe.fc1());
      largest = "an expert";
    }
    if (stream_layers) {
      const size_t layer_slot = std::max(DenseStore::slot_bytes(dense_plans), HeadStore::slot_bytes(conv_plans));
      if (layer_slot > slot) {
        slot = layer_slot;
        largest = "the largest dense layer or head conv";
      }
      staging = std::max({staging, DenseStore::staging_bytes(m.cfg, opt.precision),
                          HeadStore::staging_bytes(m.cfg, opt.precision)});
    }
    if (slot > 0) {
      const size_t budget = opt.memory_budget == 0 ? 2 * slot : opt.memory_budget;
      if (budget < 2 * slot)
        throw ConfigError("memory budget " + std::to_string(budget) + " bytes is below two weight buffers (2 × " +
                          std::to_string(slot) + " bytes for " + largest + ", " + to_string(opt.precision) + ")");
      m.ring = std::make_unique<WeightStream>(m.ctx.eng, path, static_cast<int>(budget / slot), slot, staging);
    }
  }
  m.dense = std::make_unique<DenseStore>(m.ctx, file, opt.layers, dense_plans, m.ring.get());
  m.experts = std::make_unique<ExpertStore>(m.ctx, file, m.cfg.moe_blocks.empty() ? Residency::resident : opt.experts,
                                            moe.fc1(), moe.fc2(), m.ring.get());
  m.head_convs = std::make_unique<HeadStore>(m.ctx, file, opt.layers, conv_plans, m.ring.get());
  // The order of the streamed loads is the forward pass's: each store lets the next one post behind
  // it (a resident store at once: it posts nothing). Dense layers up to MoE layer 0, its experts, the
  // dense layers up to MoE layer 1, ..., the last dense layers, the task's head convs.
  DenseStore* dense = m.dense.get();
  HeadStore* head_convs = m.head_convs.get();
  m.experts->set_after_layer([dense](int l) { dense->after_moe_layer(l); });
  m.dense->set_after_last([head_convs] { head_convs->post(); });
  m.tasks = std::make_unique<TaskSwitch>(file, m.backbone->moe().router_plan(), *m.head);
  m.work.reserve(std::max(m.backbone->work_floats(), m.head->work_floats()));
  const FlopsReport fr = count_flops(m.cfg);
  for (int t = 0; t < m.cfg.num_tasks(); ++t) m.flops.push_back(2.0 * fr.single_task(t).macs);
  // `file` unmaps here: every weight now lives in packed buffers (streamed ones: in the file).
}

Engine::~Engine() {
  // The reader thread may be running a load of one of the stores: let it finish before they are
  // destroyed (members go in reverse order, the ring after them).
  if (impl_ && impl_->ring) impl_->ring->reset();
}

const ModelConfig& Engine::config() const { return impl_->cfg; }
const EngineOptions& Engine::options() const { return impl_->opt; }
int Engine::task_index(const std::string& name) const { return impl_->cfg.task_index(name); }
int Engine::out_channels(int task) const {
  check_task(impl_->cfg, task);
  return impl_->cfg.tasks[task].out_channels;
}
const RunTimes& Engine::last_times() const { return impl_->times; }
const std::vector<int32_t>& Engine::last_routing() const { return impl_->routing; }
double Engine::counted_flops(int task) const {
  check_task(impl_->cfg, task);
  return impl_->flops[task];
}

size_t Engine::weight_bytes() const {
  const Impl& m = *impl_;
  return m.backbone->bytes() + m.dense->resident_bytes() + m.tasks->bytes() + m.head_convs->resident_bytes() +
         expert_bytes() + stream_bytes();
}
size_t Engine::expert_bytes() const { return impl_->experts->resident_bytes(); }
size_t Engine::stream_bytes() const { return impl_->ring ? impl_->ring->bytes() : 0; }
bool Engine::head_winograd() const { return impl_->head->winograd(); }


// One task's pass over an image: the backbone (all of it, or from a saved prefix), then the task's
// head. Times and stream statistics are added to m.times.
void Engine::Impl::pass(int task, const float* image, float* out, RunTrace* trace, Prefix prefix_mode) {
  if (ring) {
    ring->reset();  // a failed earlier image may have left loads behind
    ring->reset_stats();
  }
  head_convs->begin_image(task);  // before the dense store: with no MoE layer it posts the head at once
  dense->begin_image(prefix_mode == Prefix::resume);
  ImagePass p{image, task, *tasks, *experts, *dense, times, trace, &routing, work.base()};
  p.prefix = prefix_mode;
  p.prefix_tokens = &prefix_tokens;
  const float* tokens = backbone->forward(p);
  const auto th = std::chrono::steady_clock::now();
  head->forward(tokens, tasks->head(task), *head_convs, out, work.base());
  times.head += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - th).count();
  add_stream_stats();
}

// Another task's head on the tokens the last pass left in the backbone (one router for all tasks).
void Engine::Impl::head_only(int task, float* out) {
  if (ring) {
    ring->reset();
    ring->reset_stats();
  }
  head_convs->begin_image(task);
  head_convs->post();  // no dense layer goes first
  const auto th = std::chrono::steady_clock::now();
  head->forward(backbone->tokens(), tasks->head(task), *head_convs, out, work.base());
  times.head += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - th).count();
  add_stream_stats();
}

void Engine::Impl::add_stream_stats() {
  if (!ring) return;
  const WeightStreamStats s = ring->stats();
  times.stream.loads += s.loads;
  times.stream.bytes_read += s.bytes_read;
  times.stream.wait_ms += s.wait_ms;
}

void Engine::run(int task, const float* image, float* out, RunTrace* trace) {
  Impl& m = *impl_;
  check_task(m.cfg, task);
  omp_set_num_threads(m.threads);
  const auto t0 = std::chrono::steady_clock::now();
  check_finite(image, static_cast<int64_t>(m.cfg.in_chans) * m.cfg.img_h * m.cfg.img_w, "input image");
  m.times = RunTimes{};
  m.pass(task, image, out, trace, Prefix::none);
  m.times.total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void Engine::run_tasks(const std::vector<int>& task_list, const float* image, const std::vector<float*>& outs) {
  Impl& m = *impl_;
  if (task_list.empty() || task_list.size() != outs.size())
    throw ConfigError("run_tasks: " + std::to_string(task_list.size()) + " tasks and " + std::to_string(outs.size()) +
                      " outputs (one output per task, at least one)");
  for (int t : task_list) check_task(m.cfg, t);
  omp_set_num_threads(m.threads);
  const auto t0 = std::chrono::steady_clock::now();
  check_finite(image, static_cast<int64_t>(m.cfg.in_chans) * m.cfg.img_h * m.cfg.img_w, "input image");
  m.times = RunTimes{};
  const bool one_routing = m.cfg.moe_blocks.empty() || m.cfg.gate == GateType::shared;
  if (task_list.size() == 1) {
    m.pass(task_list[0], image, outs[0], nullptr, Prefix::none);
  } else if (one_routing) {
    m.pass(task_list[0], image, outs[0], nullptr, Prefix::none);
    for (size_t i = 1; i < task_list.size(); ++i) m.head_only(task_list[i], outs[i]);
  } else {
    m.pass(task_list[0], image, outs[0], nullptr, Prefix::save);
    for (size_t i = 1; i < task_list.size(); ++i) m.pass(task_list[i], image, outs[i], nullptr, Prefix::resume);
  }
  m.times.total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<float> Engine::run(int task, const std::vector<float>& image) {
  const ModelConfig& c = impl_->cfg;
  const size_t want = static_cast<size_t>(c.in_chans) * c.img_h * c.img_w;
  if (image.size() != want)
    throw ShapeError("input image has " + std::to_string(image.size()) + " values, expected [" +
                     std::to_string(c.in_chans) + ", " + std::to_string(c.img_h) + ", " + std::to_string(c.img_w) +
                     "] = " + std::to_string(want));
  std::vector<float> out(static_cast<size_t>(out_channels(task)) * c.img_h * c.img_w);
  run(task, image.data(), out.data());
  return out;
}

// The calibration pass of int8 mode (declared in runtime/int8_format.h): here, because it runs the
// engine, and engine.h is the top of the runtime (nothing else in it includes the engine).
Calibration calibrate_model(const std::string& model, int images,
                            const std::function<void(int, std::vector<float>&)>& image, int threads) {
  if (images < 1) throw ConfigError("calibration needs at least one image");
  if (SafeTensorsFile(model).metadata().count(kPrecisionKey))
    throw ConfigError(model + ": already an int8 file; calibrate the fp32 export it came from");
  Calibration calib;
  EngineOptions o;
  o.threads = threads;
  o.calibration = &calib;
  Engine eng(model, o);
  const ModelConfig& c = eng.config();
  std::vector<float> x(static_cast<size_t>(c.in_chans) * c.img_h * c.img_w);
  std::vector<std::vector<float>> outs(c.num_tasks());
  std::vector<int> tasks;
  std::vector<float*> out_ptrs;
  for (int t = 0; t < c.num_tasks(); ++t) {
    outs[t].resize(static_cast<size_t>(c.tasks[t].out_channels) * c.img_h * c.img_w);
    tasks.push_back(t);
    out_ptrs.push_back(outs[t].data());
  }
  for (int i = 0; i < images; ++i) {
    image(i, x);
    eng.run_tasks(tasks, x.data(), out_ptrs);
  }
  return calib;
}

}  // namespace m3vit::rt
