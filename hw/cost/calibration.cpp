// The zcu104 preset's fits on the PASCAL column of Table 4 (hw/cost/calibration.h).
#include "hw/cost/calibration.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "hw/cost/hw_model.h"
#include "hw/cost/repro.h"
#include "hw/cost/text_format.h"

namespace m3vit::hw {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// MAC/cycle the dense ViT-S row implies: all of the frame's MACs (attention matmuls included) in the
// paper's latency at the paper's clock, as if the array never idled. The array shape is then the
// multiple of the fixed lane width (32: one ViT-S head's features) nearest to it.
void fit_mac_rate(const AccelConfig& a, std::vector<Calibration>& out) {
  const HwResult dense = evaluate(m3vit_vits_pascal_dense(), a, MoeStrategy::reordered, nullptr);
  const double rate = dense.macs / (paper_number("zcu104.latency_dense") * 1e-3 * a.clock_mhz * 1e6);
  const std::string cell = "zcu104.latency_dense";
  const std::string how = "MACs of the dense ViT-S frame / (paper latency x clock), divided by the fixed lane width";
  out.push_back({"linear_in_lanes", cell, how + " (linear_out_lanes)", rate / a.linear_out_lanes,
                 std::round(rate / a.linear_out_lanes), static_cast<double>(a.linear_in_lanes),
                 fmt("%.1f MAC/cycle", rate)});
  out.push_back({"attn_queries", cell, how + " (attn_lanes)", rate / a.attn_lanes, std::round(rate / a.attn_lanes),
                 static_cast<double>(a.attn_queries), fmt("%.1f MAC/cycle", rate)});
}

// The cache's latency is compute plus stalls for expert loads, and the stalls scale with
// 1/efficiency (each miss streams one expert at efficiency x peak). Two runs of the model (at
// efficiency 1 and 1/2) give both parts; the efficiency that puts the latency on the paper's cell
// follows, and a design cannot stream faster than the DRAM's peak, so it is capped at 1.
void fit_dram_efficiency(const AccelConfig& a, int trace_images, std::vector<Calibration>& out) {
  const ModelConfig pascal = m3vit_vits_pascal();
  SyntheticTraceSpec uniform;
  uniform.images = trace_images;
  uniform.seed = 1;
  const ExpertTrace t = synthetic_trace(pascal, uniform);
  AccelConfig full = a, half = a;
  full.dram_efficiency = 1.0;
  half.dram_efficiency = 0.5;
  const double l1 = evaluate(pascal, full, MoeStrategy::cache, &t).latency_ms;
  const double l2 = evaluate(pascal, half, MoeStrategy::cache, &t).latency_ms;
  const double stalls = l2 - l1, compute = l1 - stalls;
  const double fitted = stalls / (paper_number("zcu104.latency_cache") - compute);
  out.push_back({"dram_efficiency", "zcu104.latency_cache",
                 "stall time linear in 1/efficiency (model runs at 1 and 1/2), solved for the paper's latency, capped "
                 "at the peak",
                 fitted, std::min(1.0, fitted), a.dram_efficiency,
                 fmt("compute %.1f ms + stalls at peak ", compute) + fmt("%.1f ms", stalls)});
}

// Weight width and on-chip activation buffers from the two memory cells: every combination of a
// realisable width and small buffer counts, the one with the least squared relative error over both.
void fit_memory(const AccelConfig& a, std::vector<Calibration>& out) {
  const ModelShape s = model_shape(m3vit_vits_pascal());
  const double all_paper = paper_number("zcu104.memory_all_on_chip"), reo_paper = paper_number("zcu104.memory_reordered");
  double best = std::numeric_limits<double>::infinity();
  AccelConfig fit = a;
  for (int wb : {4, 8, 16, 32})
    for (int ab = 1; ab <= 6; ++ab)
      for (int hb = 0; hb <= 6; ++hb) {
        AccelConfig c = a;
        c.weight_bits = wb;
        c.act_buffers = ab;
        c.act_head_buffers = hb;
        const double all = memory_need(s, c, MoeStrategy::all_on_chip, 0).total() / kMiB;
        const double reo = memory_need(s, c, MoeStrategy::reordered, 0).total() / kMiB;
        const double err = std::pow(all / all_paper - 1, 2) + std::pow(reo / reo_paper - 1, 2);
        if (err < best) {
          best = err;
          fit = c;
        }
      }
  const std::string cells = "zcu104.memory_all_on_chip,zcu104.memory_reordered";
  const std::string how = "grid search (weights 4/8/16/32 bits, 1-6 token buffers, 0-6 head buffers), least squares "
                          "of both cells' relative errors";
  const std::string note = fmt("rms relative error %.2f%%", 100 * std::sqrt(best / 2));
  out.push_back({"weight_bits", cells, how, static_cast<double>(fit.weight_bits), static_cast<double>(fit.weight_bits),
                 static_cast<double>(a.weight_bits), note});
  out.push_back({"act_buffers", cells, how, static_cast<double>(fit.act_buffers), static_cast<double>(fit.act_buffers),
                 static_cast<double>(a.act_buffers), note});
  out.push_back({"act_head_buffers", cells, how, static_cast<double>(fit.act_head_buffers),
                 static_cast<double>(fit.act_head_buffers), static_cast<double>(a.act_head_buffers), note});
}

}  // namespace

std::vector<Calibration> calibrate_zcu104(const AccelConfig& design, int trace_images) {
  std::vector<Calibration> out;
  fit_mac_rate(design, out);
  fit_dram_efficiency(design, trace_images, out);
  fit_memory(design, out);
  return out;
}

std::vector<std::string> calibration_cells() {
  return {"zcu104.latency_dense", "zcu104.latency_cache", "zcu104.memory_all_on_chip", "zcu104.memory_reordered"};
}

std::string field_kind(const AccelConfig& a, const std::string& field) {
  auto it = a.sources.find(field);
  if (it == a.sources.end()) return "unknown";
  const std::string& src = it->second;
  auto starts = [&](const char* p) { return src.rfind(p, 0) == 0; };
  if (starts("calibrated")) return "calibrated";
  if (starts("assumed")) return "assumed";
  if (starts("unused")) return "unused";
  if (starts("measured")) return "measured";
  return "fact";
}

}  // namespace m3vit::hw
