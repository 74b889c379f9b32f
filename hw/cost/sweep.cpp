// Sweeps over E and k (hw/cost/sweep.h).
#include "hw/cost/sweep.h"

#include <cstdio>
#include <sstream>

#include "common/errors.h"
#include "hw/cost/hw_model.h"
#include "hw/cost/svg_plot.h"

namespace m3vit::hw {

namespace {

SweepPoint run_point(const ModelConfig& cfg, const AccelConfig& a, const SyntheticTraceSpec& spec) {
  SweepPoint p;
  p.experts = cfg.moe_experts;
  p.top_k = cfg.moe_top_k;
  ExpertTrace tr = synthetic_trace(cfg, spec);
  for (MoeStrategy s : all_strategies()) {
    HwResult r = evaluate(cfg, a, s, &tr);
    int i = static_cast<int>(s);
    p.memory_mib[i] = r.memory.total() / (1024.0 * 1024.0);
    p.latency_ms[i] = r.latency_ms;
    p.energy_j[i] = r.energy_j;
    p.dram_mb[i] = r.dram_bytes / 1e6;
    if (s == MoeStrategy::cache) {
      p.cache_slots = r.cache_slots;
      int64_t n = r.cache_hits + r.cache_misses;
      p.cache_miss_rate = n ? static_cast<double>(r.cache_misses) / n : 0;
    }
  }
  return p;
}

ModelConfig with_moe(const ModelConfig& base) {
  if (base.moe_blocks.empty()) throw ConfigError("config '" + base.name + "' has no MoE blocks to sweep");
  // Keep the expert's hidden width fixed while E or k change.
  return base;
}

}  // namespace

std::vector<SweepPoint> sweep_experts(const ModelConfig& base, const AccelConfig& a, const std::vector<int>& experts,
                                      const SyntheticTraceSpec& trace) {
  std::vector<SweepPoint> out;
  for (int E : experts) {
    ModelConfig c = with_moe(base);
    c.moe_experts = E;
    if (c.moe_top_k > E) continue;
    out.push_back(run_point(c, a, trace));
  }
  return out;
}

std::vector<SweepPoint> sweep_top_k(const ModelConfig& base, const AccelConfig& a, const std::vector<int>& top_k,
                                    const SyntheticTraceSpec& trace) {
  std::vector<SweepPoint> out;
  for (int k : top_k) {
    ModelConfig c = with_moe(base);
    c.moe_top_k = k;
    if (k > c.moe_experts) continue;
    out.push_back(run_point(c, a, trace));
  }
  return out;
}

std::string sweep_table(const std::vector<SweepPoint>& pts, bool by_experts) {
  std::ostringstream os;
  os << "| " << (by_experts ? "E" : "top-k")
     << " | memory all-on-chip (MiB) | memory cache (MiB) | memory reordered (MiB) | latency all-on-chip (ms) | "
        "latency cache (ms) | latency reordered (ms) | cache slots | cache miss rate | DRAM reordered (MB) |\n";
  os << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  char b[512];
  for (const auto& p : pts) {
    std::snprintf(b, sizeof b, "| %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.2f | %d | %.1f%% | %.1f |\n",
                  by_experts ? p.experts : p.top_k, p.memory_mib[0], p.memory_mib[1], p.memory_mib[2], p.latency_ms[0],
                  p.latency_ms[1], p.latency_ms[2], p.cache_slots, 100 * p.cache_miss_rate, p.dram_mb[2]);
    os << b;
  }
  return os.str();
}

namespace {
const char* kNames[3] = {"all experts on chip", "expert cache (LRU)", "reordered (ping/pong)"};
const char* kColors[3] = {"#d62728", "#ff7f0e", "#1f77b4"};
}  // namespace

namespace {
// Log-log plot over E of one quantity of the three designs.
PlotSpec sweep_plot(const std::vector<SweepPoint>& pts, const std::string& title, const std::string& y_label,
                    double (*value)(const SweepPoint&, int design)) {
  PlotSpec spec;
  spec.title = title;
  spec.x_label = "experts per MoE layer (E)";
  spec.y_label = y_label;
  spec.log_x = true;
  spec.log_y = true;
  for (int s = 0; s < 3; ++s) {
    PlotSeries ser{kNames[s], {}, {}, kColors[s], s == 1};
    for (const auto& p : pts) {
      ser.x.push_back(p.experts);
      ser.y.push_back(value(p, s));
    }
    spec.series.push_back(ser);
  }
  return spec;
}
}  // namespace

std::string sweep_memory_svg(const std::vector<SweepPoint>& pts, const AccelConfig& a, const std::string& title) {
  PlotSpec spec = sweep_plot(pts, title, "on-chip memory (MiB)",
                             [](const SweepPoint& p, int s) { return p.memory_mib[s]; });
  if (a.capacity_bytes() > 0) {
    spec.ref_y = a.capacity_bytes() / (1024.0 * 1024.0);
    spec.ref_label = a.name + " on-chip block memory";
  }
  return render_svg(spec);
}

std::string sweep_latency_svg(const std::vector<SweepPoint>& pts, const std::string& title) {
  return render_svg(sweep_plot(pts, title, "latency per frame (ms)",
                               [](const SweepPoint& p, int s) { return p.latency_ms[s]; }));
}

}  // namespace m3vit::hw
