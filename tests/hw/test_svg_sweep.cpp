// SVG plots and sweeps: structure of the SVG, axis errors, and the sweep's trends (all-on-chip
// memory grows linearly in E, reordered memory is flat, the cache's miss rate tends to 1 - slots/E).
#include <gtest/gtest.h>

#include <regex>

#include "common/errors.h"
#include "hw/cost/repro.h"
#include "hw/cost/svg_plot.h"
#include "hw/cost/sweep.h"

namespace m3vit::hw {
namespace {

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(SvgPlot, RendersSeriesAndLegend) {
  PlotSpec p;
  p.title = "t <&>";
  p.log_x = true;
  p.series = {{"a", {4, 8, 16}, {1, 2, 3}, "", false}, {"b", {4, 8, 16}, {3, 2, 1}, "", true}};
  p.ref_y = 2.5;
  p.ref_label = "cap";
  std::string svg = render_svg(p);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 2);
  EXPECT_EQ(count(svg, "<circle"), 6);
  EXPECT_NE(svg.find("t &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">cap<"), std::string::npos);
  PlotSpec bad = p;
  bad.log_y = true;
  bad.series[0].y[0] = 0;
  EXPECT_THROW(render_svg(bad), ConfigError);
  bad = p;
  bad.series[0].y.pop_back();
  EXPECT_THROW(render_svg(bad), ConfigError);
}

TEST(Sweep, TrendsOverExperts) {
  SyntheticTraceSpec s;
  s.seed = 2;
  auto pts = sweep_experts(m3vit_vits_pascal(), accel_preset("zcu104"), {4, 16, 64, 256}, s);
  ASSERT_EQ(pts.size(), 4u);
  const int all = 0, cache = 1, reo = 2;
  // All-on-chip: the expert store is E experts (591,360 B each) once it outgrows the ping/pong;
  // the router [d, E] grows too (768 B per expert), in every design.
  EXPECT_NEAR(pts[3].memory_mib[all] - pts[2].memory_mib[all], 192 * (591360 + 768) / 1048576.0, 1e-6);
  EXPECT_NEAR(pts[3].memory_mib[reo] - pts[0].memory_mib[reo], 252 * 768 / 1048576.0, 1e-6);
  for (const auto& p : pts) {
    EXPECT_EQ(p.cache_slots, 4);
    EXPECT_NEAR(p.cache_miss_rate, p.experts <= 4 ? 0.0 : 1.0 - 4.0 / p.experts, 0.02) << "E = " << p.experts;
  }
  // Reordering stops hiding the loads at large E (256 experts: 16 tokens per queue, each expert
  // computing in 2 x 1,536 cycles what takes 2 x 4,684 cycles to load): about +32 ms on 71.
  EXPECT_GT(pts[3].latency_ms[reo], 1.3 * pts[1].latency_ms[reo]);
  EXPECT_GT(pts[1].latency_ms[cache], 5 * pts[1].latency_ms[reo]);
  // k > E points are skipped.
  EXPECT_EQ(sweep_top_k(m3vit_vits_pascal(), accel_preset("zcu104"), {1, 2, 4, 8, 32}, s).size(), 4u);
}

}  // namespace
}  // namespace m3vit::hw
