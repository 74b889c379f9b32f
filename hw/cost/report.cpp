// The generated hardware report (hw/cost/report.h).
#include "hw/cost/report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "hw/cost/calibration.h"
#include "hw/cost/hw_model.h"
#include "hw/cost/repro.h"
#include "hw/cost/resources.h"
#include "hw/cost/sweep.h"
#include "hw/cost/text_format.h"

namespace m3vit::hw {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

void write_svg(const ReportInputs& in, const std::string& name, const std::string& svg) {
  write_file_atomic(in.img_dir + "/" + name, svg);
}

std::string strategies_table(const ModelConfig& cfg, const AccelConfig& a, const ExpertTrace& tr) {
  std::ostringstream os;
  os << "| strategy | on-chip memory (MiB) | fits " << a.name << " (" << fmt("%.2f", a.capacity_bytes() / kMiB)
     << " MiB) | DRAM per frame (MB) | latency (ms) | energy (J) | of which DRAM (J) | waiting for weights (ms) | "
        "expert loads per frame |\n";
  os << "|---|---:|:-:|---:|---:|---:|---:|---:|---:|\n";
  for (MoeStrategy s : all_strategies()) {
    HwResult r = evaluate(cfg, a, s, &tr);
    double loads = 0;
    if (s == MoeStrategy::cache) loads = static_cast<double>(r.cache_misses) / r.images;
    else if (s == MoeStrategy::all_on_chip) loads = static_cast<double>(cfg.moe_experts) * cfg.moe_blocks.size();
    else
      for (const auto& L : r.layers) loads += L.moe ? L.mean_active_experts : 0;
    std::string name = to_string(s);
    if (s == MoeStrategy::cache) name += " (" + std::to_string(r.cache_slots) + " slots)";
    os << "| " << name << " | " << fmt("%.3f", r.memory.total() / kMiB) << " | " << (r.fits() ? "yes" : "no") << " | "
       << fmt("%.1f", r.dram_bytes / 1e6) << " | " << fmt("%.2f", r.latency_ms) << " | " << fmt("%.4f", r.energy_j) << " | "
       << fmt("%.4f", r.energy_dram_j) << " | "
       << fmt("%.2f", a.ms(r.stall_cycles)) << " | " << fmt("%.0f", loads) << " |\n";
  }
  return os.str();
}

std::string sensitivity_table(const ModelConfig& cfg, const AccelConfig& a) {
  struct Case {
    const char* name;
    SyntheticTraceSpec spec;
  };
  std::vector<Case> cases;
  auto mk = [](const char* kind, double skew, double rho) {
    SyntheticTraceSpec s;
    s.kind = kind;
    s.skew = skew;
    s.correlation = rho;
    s.images = 2;
    s.seed = 3;
    return s;
  };
  cases.push_back({"uniform", mk("uniform", 0, 0)});
  cases.push_back({"skewed s=1", mk("skewed", 1, 0)});
  cases.push_back({"skewed s=2", mk("skewed", 2, 0)});
  cases.push_back({"uniform, neighbours correlated rho=0.9", mk("uniform", 0, 0.9)});
  cases.push_back({"skewed s=1, rho=0.9", mk("skewed", 1, 0.9)});
  std::ostringstream os;
  os << "| routing | active experts per layer | tokens per active expert (min-max) | cache miss rate | cache latency (ms) "
        "| reordered latency (ms) | reordered: waiting for weights (ms) |\n|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& c : cases) {
    ExpertTrace tr = synthetic_trace(cfg, c.spec);
    HwResult rc = evaluate(cfg, a, MoeStrategy::cache, &tr);
    HwResult rr = evaluate(cfg, a, MoeStrategy::reordered, &tr);
    double active = 0, qmin = 1e18, qmax = 0;
    int n = 0;
    for (const auto& L : rr.layers)
      if (L.moe) {
        active += L.mean_active_experts;
        qmin = std::min(qmin, L.moe_stats.min_queue);
        qmax = std::max(qmax, L.moe_stats.max_queue);
        ++n;
      }
    double miss = static_cast<double>(rc.cache_misses) / std::max<int64_t>(1, rc.cache_hits + rc.cache_misses);
    os << "| " << c.name << " | " << fmt("%.1f", active / std::max(1, n)) << " | " << fmt("%.0f", qmin) << "-"
       << fmt("%.0f", qmax) << " | " << fmt("%.1f%%", 100 * miss) << " | " << fmt("%.1f", rc.latency_ms) << " | "
       << fmt("%.2f", rr.latency_ms) << " | " << fmt("%.3f", a.ms(rr.stall_cycles)) << " |\n";
  }
  return os.str();
}

std::string task_switch_table(const ModelConfig& cfg, const AccelConfig& a) {
  SyntheticTraceSpec sa, sb;
  sa.kind = sb.kind = "skewed";
  sa.skew = sb.skew = 1.5;
  sa.correlation = sb.correlation = 0.5;
  sa.images = sb.images = 3;
  sa.seed = 11;  // the two tasks' routers prefer different experts
  sb.seed = 12;
  ExpertTrace ta = synthetic_trace(cfg, sa), tb = synthetic_trace(cfg, sb);
  const int whole = cfg.moe_experts * static_cast<int>(cfg.moe_blocks.size());
  std::ostringstream os;
  os << "| strategy | cache slots | frame after a task switch (ms) | steady frame (ms) | switch cost (ms) |\n"
        "|---|---:|---:|---:|---:|\n";
  struct Row {
    MoeStrategy s;
    int slots;
  };
  for (Row row : {Row{MoeStrategy::all_on_chip, -1}, Row{MoeStrategy::cache, -1}, Row{MoeStrategy::cache, whole / 2},
                  Row{MoeStrategy::cache, whole}, Row{MoeStrategy::reordered, -1}}) {
    SwitchCost c = task_switch_cost(cfg, a, row.s, ta, tb, row.slots);
    int slots = row.slots < 0 ? budget_cache_slots(model_shape(cfg), a) : row.slots;
    os << "| " << to_string(row.s) << " | " << (row.s == MoeStrategy::cache ? std::to_string(slots) : "-") << " | "
       << fmt("%.2f", a.ms(c.switched_cycles)) << " | " << fmt("%.2f", a.ms(c.steady_cycles)) << " | "
       << fmt("%.3f", a.ms(c.cycles())) << " |\n";
  }
  return os.str();
}

// Whether a trace's routing shape is `cfg`'s, so that it can drive `cfg`'s designs directly.
bool routing_fits(const ExpertTrace& t, const ModelConfig& cfg) {
  try {
    check_trace_matches(t, cfg);
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

// The trained traces whose routing shape is `cfg`'s.
std::vector<const ReportInputs::TrainedRouting*> trained_for(const ReportInputs& in, const ModelConfig& cfg) {
  std::vector<const ReportInputs::TrainedRouting*> out;
  for (const auto& t : in.trained)
    if (routing_fits(t.trace, cfg)) out.push_back(&t);
  return out;
}

// Reordering's speed-up over the expert cache (latency ratio; at fixed power, the paper's energy
// efficiency) under one routing.
double reorder_speedup(const ModelConfig& cfg, const AccelConfig& a, const ExpertTrace& t) {
  return evaluate(cfg, a, MoeStrategy::cache, &t).latency_ms / evaluate(cfg, a, MoeStrategy::reordered, &t).latency_ms;
}

// The speed-up over the synthetic routings of section 5 that bracket it (uniform, the paper's
// implied routing; neighbours correlated; skewed and correlated) and over each trained router.
struct RoutingRange {
  std::vector<std::pair<std::string, double>> cases;  // (routing, speed-up)
  double lo = 0, hi = 0;
  std::string sentence;  // "9.06x (uniform) ... range 2.1x-9.06x"
};
RoutingRange routing_range(const ReportInputs& in, const ModelConfig& cfg, const AccelConfig& a) {
  RoutingRange r;
  auto spec = [](double skew, double rho) {
    SyntheticTraceSpec s;
    s.kind = skew > 0 ? "skewed" : "uniform";
    s.skew = skew;
    s.correlation = rho;
    s.images = 2;
    s.seed = 1;
    return s;
  };
  r.cases.push_back({"uniform", reorder_speedup(cfg, a, synthetic_trace(cfg, spec(0, 0)))});
  r.cases.push_back({"uniform, rho=0.9", reorder_speedup(cfg, a, synthetic_trace(cfg, spec(0, 0.9)))});
  r.cases.push_back({"skewed s=1, rho=0.9", reorder_speedup(cfg, a, synthetic_trace(cfg, spec(1, 0.9)))});
  for (const auto* t : trained_for(in, cfg))
    r.cases.push_back({"trained: " + t->name, reorder_speedup(cfg, a, t->trace)});
  r.lo = r.hi = r.cases[0].second;
  std::string list;
  for (const auto& [name, x] : r.cases) {
    r.lo = std::min(r.lo, x);
    r.hi = std::max(r.hi, x);
    list += (list.empty() ? "" : ", ") + name + " " + fmt("%.2f", x) + "x";
  }
  r.sentence = "reordering over the expert cache " + fmt("%.2f", r.lo) + "x to " + fmt("%.2f", r.hi) + "x (" + list + ")";
  return r;
}

std::string presets_table() {
  AccelConfig z4 = accel_preset("zcu104"), z2 = accel_preset("zcu102");
  std::ostringstream os;
  os << "| field | zcu104 | kind | zcu102 | kind | source (zcu104) | source (zcu102) |\n|---|---:|---|---:|---|---|---|\n";
  for (const auto& name : accel_field_names())
    os << "| `" << name << "` | " << accel_field_value(z4, name) << " | " << field_kind(z4, name) << " | "
       << accel_field_value(z2, name) << " | " << field_kind(z2, name) << " | " << z4.sources[name] << " | "
       << z2.sources[name] << " |\n";
  return os.str();
}

std::string fx_section(const ReportInputs& in) {
  std::ostringstream os;
  if (in.fx.empty()) {
    os << "Not run in this report.\n";
    return os.str();
  }
  os << in.fx_note << "\n\n";
  os << "| model | overflow | images | MSE | MAE | max abs error | ref. mean square | relative MSE | top-k choices "
        "identical | overflow events (kernels) | weights out of range |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : in.fx)
    os << "| " << r.model << " | " << r.mode << " | " << r.images << " | " << fmt("%.3g", r.mse) << " | "
       << fmt("%.3g", r.mae) << " | " << fmt("%.3g", r.max_abs) << " | " << fmt("%.3g", r.ref_mean_square) << " | "
       << fmt("%.3g", r.rel_mse()) << " | " << fmt("%.2f%%", 100 * r.routing_agreement) << " | " << r.total_overflows()
       << " | " << r.conversion_overflows << " |\n";
  for (const auto& r : in.fx) {
    if (r.total_overflows() == 0) {
      os << "\n" << r.model << ", " << r.mode << ": no overflow event in any layer.\n";
      continue;
    }
    os << "\nOverflow events per layer, " << r.model << ", " << r.mode << ":\n\n| layer |";
    for (int u = 0; u < fx_unit_count; ++u) os << " " << fx_unit_name(u) << " |";
    os << "\n|---|";
    for (int u = 0; u < fx_unit_count; ++u) os << "---:|";
    os << "\n";
    for (size_t l = 0; l < r.overflows.size(); ++l) {
      os << "| " << (l == 0 ? std::string("patch_embed") : "block " + std::to_string(l - 1)) << " |";
      for (int u = 0; u < fx_unit_count; ++u) os << " " << r.overflows[l][u] << " |";
      os << "\n";
    }
  }
  return os.str();
}

}  // namespace

std::string hardware_report(const ReportInputs& in) {
  const AccelConfig z4 = accel_preset("zcu104"), z2 = accel_preset("zcu102");
  std::ostringstream md;
  md << "# Hardware model report\n\n"
     << "Generated by `" << in.command << "` (`make hw-report`); do not edit by hand. How the model works, what "
     << "each constant means and what is left out: [HW_MODEL.md](HW_MODEL.md).\n\n";

  // 1. Reproduction.
  const std::vector<ReproRow> rows = reproduce(z4, z2);
  const PredictionError pe = prediction_error(rows);
  md << "## 1. Reproduction of the papers' hardware numbers\n\n"
     << "One constant set per board (the `zcu104` and `zcu102` presets, section 8), no tuning per number. A few "
     << "`zcu104` constants are fit on cells of the PASCAL column (section 1.1); each row says whether it was "
     << "**fitted** on (agreement by construction), is a **prediction** (no fit used it: the NYUD column, the "
     << "reordered latency, the dense memory, and Edge-MoE's on-board latency on `zcu102`, whose constants all come "
     << "from its code and bitstream), or is **derived** from other rows (ratios; energy = latency x power). "
     << "MoE rows use a seeded synthetic trace in which every token picks k distinct experts uniformly at random: "
     << "the paper's cache-based figure implies it (4 expert slots, top-4 of 16: 75% misses); section 7 gives the "
     << "same designs under trained routers. `tests/hw/test_repro.cpp` holds every row to ±5%.\n\n"
     << "**Error on the predictions only:** " << pe.rows << " rows, mean |error| " << fmt("%.1f%%", 100 * pe.mean_abs)
     << ", largest " << fmt("%.1f%%", 100 * pe.max_abs) << " (`" << pe.worst << "`).\n\n"
     << "| quantity | board | paper | model | error | paper's figure | role |\n|---|---|---:|---:|---:|---|---|\n";
  for (const auto& r : rows) {
    md << "| " << r.what << " | " << r.board << " | " << fmt("%.3f", r.paper) << " " << r.unit << " | "
       << fmt("%.3f", r.model) << " " << r.unit << " | " << fmt("%+.1f%%", 100 * r.rel_error()) << " | " << r.source
       << (r.estimate ? "; an estimate, not a measurement (Edge-MoE §II calls M³ViT's FPGA numbers an optimistic "
                        "estimation)"
                      : "; measured on the board")
       << " | " << (r.role == "fitted" ? "fitted (" + r.fit + ")" : r.role) << " |\n";
  }
  md << "\nThe paper's 4.840 MiB exceeds the 4.75 MiB of block RAM and UltraRAM it quotes for the ZCU104 "
     << "(11 + 27 Mbit); the model's 4.82 MiB does too. Distributed (LUT) RAM could hold the difference; the paper "
     << "does not say. Section 9 counts the design in DSP slices, BRAM18 and URAM blocks.\n\n";
  const ModelConfig pascal = m3vit_vits_pascal(), edge = edge_moe_vitt_cityscapes();
  const RoutingRange range_p = routing_range(in, pascal, z4), range_e = routing_range(in, edge, z2);
  md << "**The headline ratio depends on the routing.** The paper's 9.23x compares the designs under the "
     << "routing its cache figure implies (uniform). Under other routings, on the same presets: ViT-S on `zcu104`, "
     << range_p.sentence << "; ViT-T on `zcu102`, " << range_e.sentence << ". "
     << (trained_for(in, pascal).empty() && trained_for(in, edge).empty()
             ? "No trained router's trace was given to this report (section 7 says how to add one). "
             : "The trained routers are named in section 2 and section 7 says how they were made. ");
  // Trained routers of other shapes cannot drive the paper's designs; their speed-up on their own
  // model (section 7) stands beside the range.
  std::string own;
  for (const auto& t : in.trained)
    if (!routing_fits(t.trace, pascal) && !routing_fits(t.trace, edge))
      own += (own.empty() ? "" : ", ") + t.name + " " + fmt("%.2f", reorder_speedup(t.trace.cfg, z4, t.trace)) +
             "x on `zcu104`";
  if (!own.empty()) md << "Trained routers of other shapes, on their own models (section 7): " << own << ". ";
  md << "\n\n";

  md << "### 1.1 Calibrated constants\n\n"
     << "Every `zcu104` field whose source says \"calibrated\", refit here from the PASCAL column with every "
     << "other field at its preset value (`hw/cost/calibration.h`); a test requires each fit to land on the "
     << "preset. The NYUD column and the `zcu102` row use these values with no refit.\n\n"
     << "| field | fit on | method | fitted | chosen | preset | note |\n|---|---|---|---:|---:|---:|---|\n";
  for (const Calibration& c : calibrate_zcu104(z4)) {
    std::string cells = c.cells;
    for (size_t i = 0; (i = cells.find(',', i)) != std::string::npos; i += 2) cells.replace(i, 1, ", ");
    md << "| `" << c.fields << "` | " << cells << " | " << c.method << " | " << fmt("%.4g", c.fitted) << " | "
       << fmt("%.4g", c.chosen) << " | " << fmt("%.4g", c.preset) << " | " << c.note << " |\n";
  }

  md << "\n### 1.2 Edge-MoE with and without overlapped weight loads\n\n"
     << "`zcu102` serialises every weight load with the computation that uses it (`overlap_loads: false`, as "
     << "Edge-MoE's `ViT_compute.cpp` reads). Its MoE unit has two expert weight buffers, so a design could also "
     << "load the next expert while the current one computes. Both, against the on-board 34.64 ms and the shares "
     << "Edge-MoE's latency breakdown (its Fig. 12) reports: the two attention matmuls about half, all linear "
     << "layers about 35%:\n\n"
     << "| weight loads | latency (ms) | vs 34.64 ms | attention matmuls | linear layers | waiting for weights | "
        "norms, adds, router |\n|---|---:|---:|---:|---:|---:|---:|\n";
  for (const OverlapCase& c : edge_moe_overlap_cases(z2)) {
    md << "| " << (c.overlap ? "overlapped (ping/pong)" : "serialised (preset)") << " | " << fmt("%.2f", c.latency_ms)
       << " | " << fmt("%+.1f%%", 100 * (c.latency_ms / paper_number("zcu102.latency_edge_moe") - 1)) << " | "
       << fmt("%.0f%%", 100 * c.attention_share) << " | " << fmt("%.0f%%", 100 * c.linear_share) << " | "
       << fmt("%.0f%%", 100 * c.weight_wait_share) << " | " << fmt("%.0f%%", 100 * c.other_share) << " |\n";
  }
  md << "\n";

  // 2. Strategies side by side.
  SyntheticTraceSpec uni;
  uni.images = 2;
  uni.seed = 1;
  const ExpertTrace tp = synthetic_trace(pascal, uni), te = synthetic_trace(edge, uni);
  md << "## 2. The three MoE strategies\n\n"
     << "Each design under uniform routing (the paper's), then under every trained router whose routing shape "
     << "is the model's; the last line gives the speed-up of reordering over the cache under each routing.\n\n"
     << "### M³ViT: ViT-S, 512×512, 16 experts, top-4, on `zcu104`\n\n"
     << "Uniform routing:\n\n" << strategies_table(pascal, z4, tp);
  for (const auto* t : trained_for(in, pascal))
    md << "\nTrained routers, `" << t->name << "` (" << t->trace.images << " images, task " << t->trace.task
       << "):\n\n" << strategies_table(pascal, z4, t->trace);
  md << "\nOver the routings: " << range_p.sentence << ".\n"
     << "\n### Edge-MoE: ViT-T, 128×256, 16 experts, top-2, on `zcu102`\n\n"
     << "Uniform routing:\n\n" << strategies_table(edge, z2, te);
  for (const auto* t : trained_for(in, edge))
    md << "\nTrained routers, `" << t->name << "` (" << t->trace.images << " images, task " << t->trace.task
       << "):\n\n" << strategies_table(edge, z2, t->trace);
  md << "\nOver the routings: " << range_e.sentence << ".\n"
     << "\nOn `zcu102` (activations in DRAM behind 128-bit ports, no load overlap) every expert load is exposed; "
     << "the reordered design still loads each active expert once per layer, the cache up to k times per token.\n\n";

  // 3. Per layer.
  md << "## 3. Latency per layer\n\n"
     << "M³ViT ViT-S on `zcu104`, reordered (cycles in thousands):\n\n```\n"
     << format_table(evaluate(pascal, z4, MoeStrategy::reordered, &tp), z4) << "```\n\n"
     << "Edge-MoE ViT-T on `zcu102`, reordered:\n\n```\n"
     << format_table(evaluate(edge, z2, MoeStrategy::reordered, &te), z2) << "```\n\n";

  // 4. Sweeps.
  const std::vector<int> Es = {4, 8, 16, 32, 64, 128, 256};
  SyntheticTraceSpec sw;
  sw.images = 1;
  sw.seed = 5;
  auto p_e = sweep_experts(pascal, z4, Es, sw);
  auto e_e = sweep_experts(edge, z2, Es, sw);
  write_svg(in, "hw_memory_vs_experts_zcu104.svg",
            sweep_memory_svg(p_e, z4, "On-chip memory, ViT-S top-4, zcu104"));
  write_svg(in, "hw_latency_vs_experts_zcu104.svg", sweep_latency_svg(p_e, "Latency, ViT-S 512x512 top-4, zcu104"));
  write_svg(in, "hw_memory_vs_experts_zcu102.svg", sweep_memory_svg(e_e, z2, "On-chip memory, ViT-T top-2, zcu102"));
  write_svg(in, "hw_latency_vs_experts_zcu102.svg", sweep_latency_svg(e_e, "Latency, ViT-T 128x256 top-2, zcu102"));
  md << "## 4. Sweeps over the expert count and top-k\n\n"
     << "Synthetic uniform routing, expert width fixed (so compute per token depends on k only); the cache has "
     << "the reordered design's memory budget.\n\n"
     << "### ViT-S, 512×512, top-4, `zcu104`\n\n"
     << "![memory vs E](" << in.img_link << "/hw_memory_vs_experts_zcu104.svg)\n"
     << "![latency vs E](" << in.img_link << "/hw_latency_vs_experts_zcu104.svg)\n\n"
     << sweep_table(p_e, true) << "\n"
     << "### ViT-T, 128×256, top-2, `zcu102`\n\n"
     << "![memory vs E](" << in.img_link << "/hw_memory_vs_experts_zcu102.svg)\n"
     << "![latency vs E](" << in.img_link << "/hw_latency_vs_experts_zcu102.svg)\n\n"
     << sweep_table(e_e, true) << "\n"
     << "### top-k, ViT-S with 16 experts, `zcu104`\n\n"
     << sweep_table(sweep_top_k(pascal, z4, {1, 2, 4, 8}, sw), false) << "\n"
     << "Reordering keeps memory flat in E; once an expert's queue (N·k/E tokens) computes faster than its "
     << "weights stream in, the loads stop hiding and latency grows with E. The cache's miss rate tends to "
     << "1 − slots/E.\n\n";

  // 5. Sensitivity.
  md << "## 5. Sensitivity to the routing\n\n"
     << "Synthetic traces: `skewed` adds a per-expert popularity bias −s·ln(1 + rank) to the router logits; "
     << "`rho` correlates neighbouring tokens' logits (real routers send neighbouring patches to similar "
     << "experts).\n\n### ViT-S on `zcu104`\n\n"
     << sensitivity_table(pascal, z4) << "\n### ViT-T on `zcu102`\n\n"
     << sensitivity_table(edge, z2) << "\n";

  // 6. Task switching.
  md << "## 6. Switching task between frames\n\n"
     << "Multi-gate M³ViT shares the experts between tasks; only the routers change, so a switch changes which "
     << "experts are used. Simulated: three frames of task A, then a frame of task B, against the same frame of "
     << "B after frames of B (skewed traces s=1.5, rho=0.5, different hot experts per task). Router weights are "
     << "loaded per MoE layer in every frame anyway. Caches of half and of all the model's experts (dedicated "
     << "stores, one slot per expert of a layer) are shown because only they keep anything from one frame to "
     << "the next: at the reordered budget the cache lives in the ping/pong buffers, which the dense layers "
     << "overwrite. The reordered and all-on-chip designs carry no state between frames, so their switch costs "
     << "nothing (the paper's zero-overhead task switching).\n\n"
     << "### ViT-S on `zcu104`\n\n" << task_switch_table(pascal, z4) << "\n### ViT-T on `zcu102`\n\n"
     << task_switch_table(edge, z2) << "\n";

  // 7. Model trace.
  md << "## 7. Routing of trained models\n\n";
  for (const auto& t : in.trained) {
    md << "### `" << t.name << "`\n\n" << t.how << "\n\n";
    if (routing_fits(t.trace, pascal) || routing_fits(t.trace, edge)) {  // it already drove sections 1 and 2
      md << "Its routing shape is a paper model's, so it drives that model's designs in sections 1 and 2.\n\n";
      continue;
    }
    md << "On its own model (`" << t.trace.cfg.name << "`), on `zcu104`:\n\n" << strategies_table(t.trace.cfg, z4, t.trace)
       << "\nOn `zcu102`:\n\n" << strategies_table(t.trace.cfg, z2, t.trace) << "\nReordering over the cache: "
       << fmt("%.2f", reorder_speedup(t.trace.cfg, z4, t.trace)) << "x on `zcu104`, "
       << fmt("%.2f", reorder_speedup(t.trace.cfg, z2, t.trace)) << "x on `zcu102`; under uniform routing of the same "
       << "model " << fmt("%.2f", reorder_speedup(t.trace.cfg, z4, synthetic_trace(t.trace.cfg, uni))) << "x and "
       << fmt("%.2f", reorder_speedup(t.trace.cfg, z2, synthetic_trace(t.trace.cfg, uni))) << "x.\n\n";
  }
  if (in.trained.empty())
    md << "No trained router's trace was given to this report. `make hw-report` adds them when given trained "
       << "exports (scripts/hw-report.sh: HW_FX_WEIGHTS for the demo model, HW_ROUTING_WEIGHTS for "
       << "configs/pascal_routing_synthetic.yaml, the paper's routing shape).\n\n";
  if (in.model_trace) {
    const ExpertTrace& t = *in.model_trace;
    md << "### The model given to this report (`--trace`, or `--weights`/`--synthetic`)\n\n" << in.model_trace_note
       << "\n\n#### " << t.cfg.name << " on `zcu104`\n\n"
       << strategies_table(t.cfg, z4, t) << "\n#### " << t.cfg.name << " on `zcu102`\n\n"
       << strategies_table(t.cfg, z2, t) << "\n";
  } else {
    md << "No model trace was given to this report (`m3vit hw --report ... --trace FILE`, a file from "
       << "`m3vit trace`).\n\n";
  }

  // 8. Presets.
  md << "## 8. The presets and the source of every constant\n\n"
     << "Read from `configs/hw/zcu104.yaml` and `configs/hw/zcu102.yaml`, where each field holds its value and its "
     << "source. Kind: **fact** (a paper, data sheet, code or bitstream gives it), **calibrated** (fit on a "
     << "Table 4 cell, section 1.1), **assumed** (a design choice no document gives and no number was fit to; "
     << "section 5 and `m3vit hw --hw my.yaml` show what changing it does), **measured** (chosen from a "
     << "measurement of this model: `act_bits`, sections 9 and 11), **unused** (no effect in this "
     << "design).\n\n"
     << presets_table() << "\n";

  // 9. Resources.
  {
    const ModelConfig pascal = m3vit_vits_pascal(), edge = edge_moe_vitt_cityscapes();
    const ResourceEstimate r4 = estimate_resources(model_shape(pascal), z4, MoeStrategy::reordered, -1);
    const ResourceEstimate r2 = estimate_resources(model_shape(edge), z2, MoeStrategy::reordered, -1);
    AccelConfig z4a32 = z4;
    z4a32.act_bits = 32;
    const ResourceEstimate r4a32 = estimate_resources(model_shape(pascal), z4a32, MoeStrategy::reordered, -1);
    md << "## 9. FPGA resources\n\n"
       << "DSP48E2 slices, 18 Kbit block RAMs, UltraRAMs and a rough LUT count per unit of the reordered design "
       << "(`hw/cost/resources.h`; HW_MODEL.md \"Resources\" gives every rule), against the board's device. Nothing "
       << "here is synthesised: it says whether a preset could be built as the model describes it, not that it "
       << "was.\n\n### M³ViT ViT-S on `zcu104`\n\n"
       << format_resources_table(r4) << "\nThe same design with 32-bit activations (Edge-MoE's A32): "
       << fit_summary(r4a32) << ". This is why the `zcu104` preset keeps 16-bit activations; section 11 measures, "
       << "on trained weights, what 16-bit activations (and 8-bit weights) cost in accuracy.\n\n"
       << "### Edge-MoE ViT-T on `zcu102`\n\n"
       << format_resources_table(r2) << "\n";
  }

  // 10. Fixed point.
  md << "## 10. Fixed-point encoder against fp32\n\n" << fx_section(in) << "\n";
  md << "### Per-task metric change\n\n";
  if (in.fx_metrics.empty()) {
    md << "Not run in this section (`m3vit hw --fx-metrics N --weights W` needs trained weights); section 11 "
       << "gives the comparison on a trained export when the report is built with HW_FX_WEIGHTS.\n";
  } else {
    md << in.fx_metrics_note << " Heads on the fp32 backbone's tokens and on the fixed-point encoder's tokens, "
       << "synthetic validation scenes.\n\n| task | metric | images | fp32 | fixed point | change |\n"
       << "|---|---|---:|---:|---:|---:|\n";
    for (const auto& m : in.fx_metrics) {
      if (!m.note.empty()) {
        md << "| " << m.task << " | not scored: " << m.note << " | | | | |\n";
        continue;
      }
      md << "| " << m.task << " | " << m.metric << (m.higher_is_better ? " (higher is better)" : " (lower is better)")
         << " | " << m.images << " | " << fmt("%.4f", m.fp32) << " | " << fmt("%.4f", m.fixed) << " | "
         << fmt("%+.4f", m.fixed - m.fp32) << " |\n";
    }
  }
  return md.str();
}

}  // namespace m3vit::hw
