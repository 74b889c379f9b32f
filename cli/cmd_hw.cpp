// `m3vit hw`: the layer-sequential FPGA accelerator model (hw/cost/hw_model.h; docs/HW_MODEL.md).
//
//   m3vit hw --config C [overrides] --hw zcu104|zcu102|FILE.yaml
//            [--trace FILE | --weights W | --images DIR | --synthetic N | --synthetic-trace uniform|skewed]
//            [--task T] [--strategy all|all_on_chip|cache|reordered] [--cache-slots N]
//            [--sweep] [--svg-dir DIR] [--switch-task T2]
//            [--fixed-point [--saturate] [--round-weights] [--fx-format a32w16|a32w8|a16w16|a16w8] [--fx-arith ours|edge_moe]]
//            [--json OUT.json] [--report OUT.md --img-dir DIR] [--dump-hw FILE.yaml]
//
// Routing comes from a trace file (m3vit trace), from running the model here (--weights/--images/
// --synthetic, the same code as m3vit trace), or from a synthetic trace (uniform by default).
// Prints on-chip memory, DRAM traffic, latency per layer and in total, and energy for the MoE
// strategies; --json writes the same as JSON. --fixed-point measures the fixed-point encoder
// against the fp32 reference on the same weights and images.
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/config_options.h"
#include "cli/model_trace.h"
#include "common/errors.h"
#include "common/fileutil.h"
#include "hw/cost/hw_model.h"
#include "hw/cost/report.h"
#include "hw/cost/resources.h"
#include "hw/cost/sweep.h"
#include "hw/fx/fx_check.h"

namespace m3vit::cli {

namespace {

struct HwArgs {
  ConfigArgs config;
  std::string hw = "zcu104", trace, weights, task, strategy = "all", json, report, img_dir, svg_dir, switch_task,
              dump_hw, synthetic_trace;
  ImageSource images;
  std::vector<std::string> trained_traces, trained_notes;  // --report only: traces of trained routers
  int cache_slots = -1, trace_images = 2, fx_images = 2, fx_metrics = 0, threads = 0;
  double skew = 1.0, correlation = 0.0;
  uint64_t seed = 0, trace_seed = 1;
  bool sweep = false, fixed_point = false, saturate = false, round_weights = false;
  std::string fx_format = "a32w16", fx_arith = "ours";
};

bool runs_model(const HwArgs& a) { return !a.weights.empty() || a.images.given(); }

// The routing of task `task` as the arguments ask for it.
hw::ExpertTrace get_trace(const HwArgs& a, const ModelConfig& cfg, int task, uint64_t synthetic_seed) {
  if (!a.trace.empty()) {
    hw::ExpertTrace t = hw::read_trace(a.trace);
    hw::check_trace_matches(t, cfg);
    return t;
  }
  if (runs_model(a) && a.synthetic_trace.empty()) {
    ImageSource src = a.images;
    if (!src.given()) src.synthetic = a.trace_images;  // --weights alone: synthetic scenes
    return trace_model(cfg, a.weights, a.seed, task, load_images8(src, cfg), src.describe(), a.threads);
  }
  hw::SyntheticTraceSpec s;
  s.kind = a.synthetic_trace.empty() ? "uniform" : a.synthetic_trace;
  s.skew = a.skew;
  s.correlation = a.correlation;
  s.images = a.trace_images;
  s.seed = synthetic_seed;
  s.task = cfg.tasks.at(task).name;
  return hw::synthetic_trace(cfg, s);
}

// `--json -`: the JSON object alone on stdout, so it pipes into jq; the human text goes to stderr.
// Returns a descriptor of the real stdout for the JSON (-1 without `--json -`).
int json_to_stdout(const std::string& json) {
  if (json != "-") return -1;
  std::fflush(stdout);
  const int fd = dup(STDOUT_FILENO);
  if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) throw IoError("--json -: cannot redirect the text to stderr");
  return fd;
}

void run_hw(const HwArgs& a) {
  const int json_fd = json_to_stdout(a.json);
  const TrainConfig f = load_config_args(a.config);
  const ModelConfig& cfg = f.model;
  const hw::AccelConfig acc = hw::load_accel_config(a.hw);
  const int task = a.task.empty() ? 0 : cfg.task_index(a.task);
  if (!a.trace.empty() && (runs_model(a) || !a.synthetic_trace.empty()))
    throw ConfigError("--trace cannot be combined with --weights/--images/--synthetic/--synthetic-trace");
  if (!a.images.dir.empty() && a.images.synthetic > 0) throw ConfigError("give one of --images and --synthetic");
  if (a.trace_images < 1) throw ConfigError("--trace-images must be >= 1");
  if (a.json != "-") check_output_dir(a.json, "--json");
  check_output_dir(a.report, "--report");
  check_output_dir(a.dump_hw, "--dump-hw");
  if (!a.report.empty() && a.img_dir.empty()) throw ConfigError("--report needs --img-dir (where the SVG plots go)");
  if (a.report.empty() && !(a.trained_traces.empty() && a.trained_notes.empty()))
    throw ConfigError("--trained-trace and --trained-note only go with --report");
  if (!a.trained_notes.empty() && a.trained_notes.size() != a.trained_traces.size())
    throw ConfigError("give one --trained-note per --trained-trace (or none)");
  if (!a.img_dir.empty() && !std::filesystem::is_directory(a.img_dir))
    throw IoError("--img-dir " + a.img_dir + ": no such folder");
  if (!a.svg_dir.empty() && !std::filesystem::is_directory(a.svg_dir))
    throw IoError("--svg-dir " + a.svg_dir + ": no such folder");
  std::vector<hw::MoeStrategy> strategies;
  if (a.strategy == "all") strategies = hw::all_strategies();
  else strategies = {hw::strategy_from_string(a.strategy)};

  if (!a.dump_hw.empty()) {
    write_file_atomic(a.dump_hw, hw::accel_config_to_yaml(acc));
    std::printf("wrote %s\n", a.dump_hw.c_str());
  }

  nlohmann::ordered_json out;
  out["config"] = cfg.name;
  out["accelerator"] = nlohmann::ordered_json::parse(hw::accel_config_to_json(acc));
  const bool moe = !cfg.moe_blocks.empty();
  if (!moe && (!a.trace.empty() || !a.synthetic_trace.empty()))
    throw ConfigError("config '" + cfg.name + "' has no MoE layers: a routing trace has nothing to drive");
  std::unique_ptr<hw::ExpertTrace> trace;
  if (moe) {
    trace = std::make_unique<hw::ExpertTrace>(get_trace(a, cfg, task, a.trace_seed));
    std::printf("routing: %s, task %s, %d image(s)\n", trace->source.c_str(), trace->task.c_str(), trace->images);
    out["trace"] = {{"source", trace->source}, {"task", trace->task}, {"images", trace->images}};
  }

  // The strategies: a summary line each, the per-layer table of the last one.
  auto& results = out["results"] = nlohmann::ordered_json::array();
  std::printf("%-12s %12s %6s %12s %12s %10s\n", "strategy", "memory MiB", "fits", "DRAM MB", "latency ms", "energy J");
  std::vector<hw::HwResult> rs;
  std::vector<hw::ResourceEstimate> fits;
  for (hw::MoeStrategy s : strategies) {
    hw::HwResult r = hw::evaluate(cfg, acc, s, trace.get(), a.cache_slots);
    std::printf("%-12s %12.3f %6s %12.1f %12.3f %10.4f\n", hw::to_string(s), r.memory.total() / 1048576.0,
                r.fits() ? "yes" : "no", r.dram_bytes / 1e6, r.latency_ms, r.energy_j);
    nlohmann::ordered_json rj = nlohmann::ordered_json::parse(hw::result_to_json(r, acc));
    fits.push_back(hw::estimate_resources(hw::model_shape(cfg), acc, s, a.cache_slots));
    rj["resources"] = nlohmann::ordered_json::parse(hw::resources_to_json(fits.back()));
    results.push_back(std::move(rj));
    rs.push_back(r);
    if (!moe) break;  // the strategies only differ in the MoE layers
  }
  // DSP slices and memory blocks against the board (docs/HW_MODEL.md "Resources"); per unit in --json.
  std::printf("\nFPGA resources:\n");
  for (const auto& re : fits) std::printf("  %s\n", hw::fit_summary(re).c_str());
  if (moe) out["comparison"] = nlohmann::ordered_json::parse(hw::comparison_to_json(rs));
  std::printf("\n%s", hw::format_table(rs.back(), acc).c_str());

  if (!a.switch_task.empty()) {
    if (!moe) throw ConfigError("--switch-task: config '" + cfg.name + "' has no MoE layers");
    const int from = cfg.task_index(a.switch_task);
    if (!a.trace.empty()) throw ConfigError("--switch-task needs the model or synthetic traces, not --trace");
    hw::ExpertTrace tf = get_trace(a, cfg, from, a.trace_seed + 1000);
    auto& sw = out["task_switch"] = nlohmann::ordered_json::array();
    std::printf("\nswitching from task %s to %s between frames:\n", a.switch_task.c_str(), trace->task.c_str());
    for (hw::MoeStrategy s : strategies) {
      hw::SwitchCost c = hw::task_switch_cost(cfg, acc, s, tf, *trace, a.cache_slots);
      std::printf("  %-12s first frame after the switch %.3f ms, steady %.3f ms, cost %.3f ms\n", hw::to_string(s),
                  acc.ms(c.switched_cycles), acc.ms(c.steady_cycles), acc.ms(c.cycles()));
      sw.push_back({{"strategy", hw::to_string(s)}, {"switched_ms", acc.ms(c.switched_cycles)},
                    {"steady_ms", acc.ms(c.steady_cycles)}, {"cost_ms", acc.ms(c.cycles())}});
    }
  }

  if (a.sweep) {
    if (!moe) throw ConfigError("--sweep: config '" + cfg.name + "' has no MoE layers");
    hw::SyntheticTraceSpec s;
    s.kind = a.synthetic_trace.empty() ? "uniform" : a.synthetic_trace;
    s.skew = a.skew;
    s.correlation = a.correlation;
    s.seed = a.trace_seed;
    auto pe = hw::sweep_experts(cfg, acc, {4, 8, 16, 32, 64, 128, 256}, s);
    auto pk = hw::sweep_top_k(cfg, acc, {1, 2, 4, 8}, s);
    std::printf("\nsweep over E (top-%d):\n%s\nsweep over top-k (E = %d):\n%s", cfg.moe_top_k,
                hw::sweep_table(pe, true).c_str(), cfg.moe_experts, hw::sweep_table(pk, false).c_str());
    auto to_json = [](const std::vector<hw::SweepPoint>& pts) {
      auto arr = nlohmann::ordered_json::array();
      for (const auto& p : pts) {
        nlohmann::ordered_json j;
        j["experts"] = p.experts;
        j["top_k"] = p.top_k;
        for (hw::MoeStrategy st : hw::all_strategies()) {
          int i = static_cast<int>(st);
          j[hw::to_string(st)] = {{"memory_mib", p.memory_mib[i]}, {"latency_ms", p.latency_ms[i]},
                                  {"energy_j", p.energy_j[i]}, {"dram_mb", p.dram_mb[i]}};
        }
        j["cache_miss_rate"] = p.cache_miss_rate;
        arr.push_back(j);
      }
      return arr;
    };
    out["sweep_experts"] = to_json(pe);
    out["sweep_top_k"] = to_json(pk);
    if (!a.svg_dir.empty()) {
      write_file_atomic(a.svg_dir + "/memory_vs_experts.svg",
                        hw::sweep_memory_svg(pe, acc, "On-chip memory, " + cfg.name + ", " + acc.name));
      write_file_atomic(a.svg_dir + "/latency_vs_experts.svg",
                        hw::sweep_latency_svg(pe, "Latency, " + cfg.name + ", " + acc.name));
      std::printf("wrote %s/memory_vs_experts.svg and latency_vs_experts.svg\n", a.svg_dir.c_str());
    }
  }

  std::vector<hw::FxCheckResult> fx;
  std::string fx_note;
  if (a.fixed_point || !a.report.empty()) {
    hw::EncoderWeights w = model_encoder_weights(cfg, a.weights, a.seed);
    ImageSource src = a.images;
    if (!src.given()) src.synthetic = a.fx_images;
    std::vector<std::vector<uint8_t>> imgs = load_images8(src, cfg);
    if (static_cast<int>(imgs.size()) > a.fx_images) imgs.resize(a.fx_images);
    fx_note = "Model " + cfg.name + " with " +
              (a.weights.empty() ? "random weights (the authors' initialisation, seed " + std::to_string(a.seed) + ")"
                                 : "weights " + a.weights) +
              ", task " + cfg.tasks.at(task).name + ", on " + std::to_string(imgs.size()) + " of " + src.describe() +
              ". The same weights and 8-bit images go to both encoders.";
    // The fp32 reference must be the model itself: compare it with the libtorch backbone first.
    auto [diff, scale] = reference_vs_model(cfg, a.weights, a.seed, task, imgs);
    std::printf("\nfp32 reference encoder vs the libtorch model: max |difference| %.3g (values up to %.3g)\n", diff,
                scale);
    out["reference_vs_model_max_abs"] = diff;
    char buf[160];
    std::snprintf(buf, sizeof buf, " The fp32 reference matches the libtorch model's backbone to %.2g (largest value %.3g).",
                  diff, scale);
    fx_note += buf;
    hw::FxCheckOptions o;
    o.task = task;
    o.format = hw::fx_format_from_string(a.fx_format);
    o.arith = hw::fx_arith_from_string(a.fx_arith);
    // The report shows the vendor default (truncate, wrap), saturation, and rounded weights.
    std::vector<std::pair<bool, bool>> modes = {{a.saturate, a.round_weights}};
    if (!a.report.empty()) modes = {{false, false}, {true, false}, {false, true}};
    for (auto [sat, rnd] : modes) {
      o.saturate = sat;
      o.round_weights = rnd;
      fx.push_back(hw::fx_check(w, imgs, o));
      std::printf("\n%s", hw::fx_check_text(fx.back()).c_str());
    }
    auto& fj = out["fixed_point"] = nlohmann::ordered_json::array();
    for (const auto& r : fx) fj.push_back(nlohmann::ordered_json::parse(hw::fx_check_json(r)));
  }

  std::vector<TaskMetricChange> metrics;
  if (a.fx_metrics > 0) {
    hw::FxOptions fo;
    fo.format = hw::fx_format_from_string(a.fx_format);
    fo.arith = hw::fx_arith_from_string(a.fx_arith);
    fo.saturate = a.saturate;
    fo.round_weights = a.round_weights;
    metrics = fx_metric_change(cfg, a.weights, a.seed, a.fx_metrics, a.images.seed, fo);
    auto& mj = out["fixed_point_metrics"] = nlohmann::ordered_json::array();
    std::printf("\nper-task metric, fp32 encoder vs fixed-point encoder (%s), %d synthetic validation scenes:\n",
                a.weights.empty() ? "random weights: not meaningful" : a.weights.c_str(), a.fx_metrics);
    for (const auto& m : metrics) {
      if (!m.note.empty()) {
        std::printf("  %-12s not scored: %s\n", m.task.c_str(), m.note.c_str());
        continue;
      }
      std::printf("  %-12s %-18s fp32 %.4f  fixed point %.4f  change %+.4f\n", m.task.c_str(), m.metric.c_str(), m.fp32,
                  m.fixed, m.fixed - m.fp32);
      mj.push_back({{"task", m.task}, {"metric", m.metric}, {"fp32", m.fp32}, {"fixed_point", m.fixed},
                    {"images", m.images}});
    }
  }

  if (!a.report.empty()) {
    hw::ReportInputs in;
    in.img_dir = a.img_dir;
    namespace fs = std::filesystem;
    in.img_link = fs::relative(fs::absolute(a.img_dir), fs::absolute(a.report).parent_path()).string();
    in.command = "m3vit hw --config " + a.config.path + " --hw " + a.hw + " --report " + a.report + " --img-dir " + a.img_dir;
    // The trace files' names only (a report is often made from temporary traces); section 7 says
    // how each was made.
    for (const auto& t : a.trained_traces) in.command += " --trained-trace " + fs::path(t).filename().string();
    if (!a.trained_notes.empty()) in.command += " --trained-note ...";
    if (moe && (runs_model(a) || !a.trace.empty())) {
      in.model_trace = trace.get();
      in.model_trace_note = "Routing: " + trace->source + ", task " + trace->task + ".";
    }
    for (size_t i = 0; i < a.trained_traces.size(); ++i) {
      hw::ExpertTrace t = hw::read_trace(a.trained_traces[i]);
      std::string how = a.trained_notes.empty() ? "Routing: " + t.source + ", task " + t.task + "." : a.trained_notes[i];
      std::string name = t.cfg.name;
      in.trained.push_back({std::move(t), name, how});
    }
    in.fx = fx;
    in.fx_note = fx_note;
    for (const auto& m : metrics)
      in.fx_metrics.push_back({m.task, m.metric, m.fp32, m.fixed, m.higher_is_better, m.images, m.note});
    in.fx_metrics_note = a.weights.empty()
                             ? "With random weights (no trained checkpoint given), so the metrics themselves mean "
                               "nothing; the path is what this shows. Pass --weights with a trained export."
                             : "Weights " + a.weights + ".";
    write_file_atomic(a.report, hw::hardware_report(in));
    std::printf("\nwrote %s (plots in %s)\n", a.report.c_str(), a.img_dir.c_str());
  }

  if (json_fd >= 0) {
    std::fflush(stdout);
    const std::string text = out.dump(1) + "\n";
    FILE* f = fdopen(json_fd, "w");
    if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0)
      throw IoError("--json -: cannot write to stdout");
  } else if (!a.json.empty()) {
    write_file_atomic(a.json, out.dump(1) + "\n");
    std::printf("wrote %s\n", a.json.c_str());
  }
}

}  // namespace

void register_hw(CLI::App& app) {
  auto* sub = app.add_subcommand("hw", "FPGA accelerator model: memory, DRAM traffic, latency and energy per MoE strategy");
  auto a = std::make_shared<HwArgs>();
  add_config_options(sub, a->config);
  sub->add_option("--hw", a->hw, "accelerator: zcu104, zcu102 or a YAML file (configs/hw/*.yaml)");
  sub->add_option("--trace", a->trace, "routing trace from m3vit trace");
  sub->add_option("--trained-trace", a->trained_traces,
                  "--report: a trained router's trace (m3vit trace on a trained export); repeatable");
  sub->add_option("--trained-note", a->trained_notes, "--report: how that model was trained and traced, per trace");
  sub->add_option("--weights", a->weights, "run this checkpoint to get the routing (and for --fixed-point)");
  sub->add_option("--images", a->images.dir, "folder of PNG/JPEG images to run the model on");
  sub->add_flag("--resize", a->images.resize, "scale folder images to the model's size");
  sub->add_option("--synthetic", a->images.synthetic, "run the model on N synthetic scenes");
  sub->add_option("--image-seed", a->images.seed, "seed of the synthetic scenes");
  sub->add_option("--seed", a->seed, "seed of the random weights when --weights is not given");
  sub->add_option("--task", a->task, "task whose routers are used (default: the first)");
  sub->add_option("--synthetic-trace", a->synthetic_trace, "synthetic routing: uniform or skewed");
  sub->add_option("--skew", a->skew, "popularity skew s of a skewed synthetic trace");
  sub->add_option("--correlation", a->correlation, "correlation of neighbouring tokens' router logits, [0, 1)");
  sub->add_option("--trace-images", a->trace_images, "images of a synthetic trace (or scenes with --weights only)");
  sub->add_option("--trace-seed", a->trace_seed, "seed of the synthetic trace");
  sub->add_option("--strategy", a->strategy, "all, all_on_chip, cache or reordered");
  sub->add_option("--cache-slots", a->cache_slots, "expert slots of the cache (default: the reordered design's budget)");
  sub->add_flag("--sweep", a->sweep, "sweep E = 4..256 and top-k = 1..8 with synthetic routing");
  sub->add_option("--svg-dir", a->svg_dir, "write the sweep's SVG plots here");
  sub->add_option("--switch-task", a->switch_task, "cost of switching from this task to --task between frames");
  sub->add_flag("--fixed-point", a->fixed_point, "measure the fixed-point encoder against fp32");
  sub->add_flag("--saturate", a->saturate, "fixed point: saturate instead of wrapping on overflow");
  sub->add_flag("--round-weights", a->round_weights, "fixed point: round weights to nearest instead of truncating");
  sub->add_option("--fx-format", a->fx_format,
                  "fixed point: stored activation and weight widths, a32w16 (Edge-MoE's), a32w8, a16w16 or a16w8");
  sub->add_option("--fx-arith", a->fx_arith,
                  "fixed point: order of operations, ours or edge_moe (Edge-MoE's exactly)");
  sub->add_option("--fx-images", a->fx_images, "images for the fixed-point check");
  sub->add_option("--fx-metrics", a->fx_metrics,
                  "fixed point: per-task metric change on N synthetic validation scenes (needs trained weights to mean much)");
  sub->add_option("--threads", a->threads, "libtorch threads when the model runs");
  sub->add_option("--json", a->json, "write the results as JSON");
  sub->add_option("--report", a->report, "write the full hardware report (markdown), as make hw-report does");
  sub->add_option("--img-dir", a->img_dir, "folder for the report's SVG plots");
  sub->add_option("--dump-hw", a->dump_hw, "write the accelerator parameters as YAML");
  sub->callback([a] { run_hw(*a); });
}

}  // namespace m3vit::cli
