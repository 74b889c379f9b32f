// Whole-frame simulation, memory model, task switching and output (hw/cost/hw_model.h).
#include "hw/cost/hw_model.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "common/errors.h"
#include "hw/cost/text_format.h"

namespace m3vit::hw {

double pingpong_bytes(const ModelShape& s, const AccelConfig& a) {
  double biggest = linear_weight_bytes(a, s.d, s.d);  // q, k, v, proj
  bool any_dense = false, any_moe = false;
  for (bool m : s.moe) (m ? any_moe : any_dense) = true;
  if (any_dense) biggest = std::max({biggest, linear_weight_bytes(a, s.d, s.hidden), linear_weight_bytes(a, s.hidden, s.d)});
  if (any_moe)
    biggest = std::max({biggest, linear_weight_bytes(a, s.d, s.moe_hidden), linear_weight_bytes(a, s.moe_hidden, s.d)});
  if (!a.patch_weights_on_chip) biggest = std::max(biggest, linear_weight_bytes(a, s.patch_in, s.d));
  return 2 * biggest;
}

int budget_cache_slots(const ModelShape& s, const AccelConfig& a) {
  return static_cast<int>(std::floor(pingpong_bytes(s, a) / expert_bytes(a, s) + 1e-9));
}

MemoryNeed memory_need(const ModelShape& s, const AccelConfig& a, MoeStrategy strategy, int cache_slots) {
  MemoryNeed m;
  const double ab = a.act_bits / 8.0;
  const bool has_moe = s.moe_layers() > 0;
  m.weight_buffers = pingpong_bytes(s, a);
  if (has_moe && strategy == MoeStrategy::all_on_chip)
    // The layer's experts are resident; dense layers' weights stream through part of that store.
    m.expert_store = std::max(0.0, expert_bytes(a, s) * s.experts - m.weight_buffers);
  if (has_moe && strategy == MoeStrategy::cache)
    m.expert_store = std::max(0.0, expert_bytes(a, s) * cache_slots - m.weight_buffers);
  int64_t hp = std::min<int64_t>(a.attn_heads_parallel, s.heads);
  if (a.activations_in_dram) {
    // Line buffers only: a linear unit's input row, the staggered query rows and A·V accumulators,
    // one LayerNorm token, one row of patches of the patch embedding.
    int64_t max_in = std::max({s.d, s.hidden, s.moe_hidden, s.patch_in});
    m.activations = (max_in + 2.0 * a.attn_queries * s.d + s.d + s.grid_w * s.d) * ab;
  } else {
    m.activations = (a.act_buffers * static_cast<double>(s.tokens) * s.d +
                     a.act_head_buffers * static_cast<double>(s.tokens) * s.head_dim * hp +
                     static_cast<double>(a.attn_queries) * s.tokens * hp) *  // score rows of the p queries
                    ab;
  }
  if (has_moe) {
    // Reordered: every token's k (index, gate weight) pairs in the expert queues; the other two
    // designs only hold the current token's k choices.
    double entries = strategy == MoeStrategy::reordered ? static_cast<double>(s.tokens) * s.top_k : s.top_k;
    m.queues = entries * (a.index_bits + a.act_bits) / 8.0;
    m.router = static_cast<double>(s.d) * s.experts * a.weight_bits / 8.0;
  }
  m.norms = 2.0 * 2 * s.d * a.bias_bits / 8.0;
  if (a.patch_weights_on_chip) m.patch_weights = linear_weight_bytes(a, s.patch_in, s.d);
  return m;
}

namespace {

struct FrameSim {
  std::vector<LayerResult> layers;
  double cycles = 0, dram = 0, macs = 0, stall = 0;
};

// One frame through the accelerator.
FrameSim simulate_frame(const ModelShape& s, const AccelConfig& a, MoeStrategy strategy, const ExpertTrace* trace,
                        int image, ExpertCache* cache, bool cache_shared) {
  FrameSim f;
  Timeline tl(a.overlap_loads);
  auto add_unit = [&](LayerResult& L, UnitCost u, bool weighted) {
    if (weighted) u.stall = tl.weighted(u.load, u.compute);
    else tl.plain(u.compute);
    L.units.push_back(u);
  };
  {
    LayerResult L;
    L.name = "patch_embed";
    UnitCost u = patch_embed_cost(a, s);
    add_unit(L, u, !a.patch_weights_on_chip);
    f.layers.push_back(L);
  }
  double gate_free = 0;
  int moe_index = 0;
  // All experts on chip: each MoE layer's bulk load is issued right after the previous one (the
  // first at the start of the frame), when loads may overlap compute.
  const bool prefetch = strategy == MoeStrategy::all_on_chip && a.overlap_loads && s.moe_layers() > 0;
  const double bulk = load_cycles(a, expert_bytes(a, s) * s.experts);
  double store_ready = prefetch ? tl.prefetch(bulk) : -1;
  for (int b = 0; b < s.depth; ++b) {
    LayerResult L;
    L.block = b;
    L.moe = s.moe[b];
    L.name = "block " + std::to_string(b) + (L.moe ? " (moe)" : "");
    add_unit(L, layernorm_cost(a, s, "ln1"), false);
    add_unit(L, linear_cost(a, s.tokens, s.d, s.d, false, "q"), true);
    add_unit(L, linear_cost(a, s.tokens, s.d, s.d, false, "k"), true);
    add_unit(L, attention_qk_cost(a, s), false);
    add_unit(L, linear_cost(a, s.tokens, s.d, s.d, false, "v"), true);
    add_unit(L, attention_av_cost(a, s), false);
    add_unit(L, linear_cost(a, s.tokens, s.d, s.d, false, "proj"), true);
    add_unit(L, add_cost(a, s, "add1"), false);
    add_unit(L, layernorm_cost(a, s, "ln2"), false);
    if (!L.moe) {
      add_unit(L, linear_cost(a, s.tokens, s.d, s.hidden, false, "fc1"), true);
      UnitCost g = gelu_cost(a, s.tokens, s.hidden);
      if (g.compute > 0) add_unit(L, g, false);
      add_unit(L, linear_cost(a, s.tokens, s.hidden, s.d, false, "fc2"), true);
    } else {
      if (!trace) throw ConfigError("a MoE model needs an expert trace (--trace or --synthetic-trace)");
      UnitCost g = gating_cost(a, s);
      g.stall = tl.side_load(g.load, gate_free);  // the router's weights have a small buffer of their own
      tl.plain(g.compute);
      gate_free = tl.now();
      L.units.push_back(g);
      UnitCost e = schedule_experts(strategy, a, s, *trace, image, moe_index, tl, cache, cache_shared, &store_ready,
                                    &L.moe_stats);
      store_ready = (prefetch && moe_index + 1 < s.moe_layers()) ? tl.prefetch(bulk) : -1;
      L.mean_active_experts = L.moe_stats.active_experts;
      L.units.push_back(e);
      ++moe_index;
    }
    add_unit(L, add_cost(a, s, "add2"), false);
    f.layers.push_back(L);
  }
  for (auto& L : f.layers) {
    for (const auto& u : L.units) {
      L.cycles += u.cycles();
      L.dram_bytes += u.dram_bytes;
      f.macs += u.macs;
      f.stall += u.stall;
    }
    f.cycles += L.cycles;
    f.dram += L.dram_bytes;
  }
  return f;
}

}  // namespace

HwResult evaluate(const ModelConfig& cfg, const AccelConfig& a, MoeStrategy strategy, const ExpertTrace* trace,
                  int cache_slots) {
  a.validate();
  ModelShape s = model_shape(cfg);
  if (s.moe_layers() > 0) {
    if (!trace) throw ConfigError("config '" + cfg.name + "' has MoE layers: an expert trace is needed");
    check_trace_matches(*trace, cfg);
  }
  HwResult r;
  r.model = cfg.name;
  r.accel = a.name;
  r.strategy = strategy;
  r.cache_slots = cache_slots < 0 ? budget_cache_slots(s, a) : cache_slots;
  r.cache_shared = r.cache_slots * expert_bytes(a, s) <= pingpong_bytes(s, a) + 1e-6;
  r.images = (s.moe_layers() > 0) ? trace->images : 1;
  r.capacity_bytes = a.capacity_bytes();
  r.memory = memory_need(s, a, strategy, r.cache_slots);
  ExpertCache cache(r.cache_slots);
  r.min_cycles = 1e300;
  for (int img = 0; img < r.images; ++img) {
    FrameSim f = simulate_frame(s, a, strategy, s.moe_layers() > 0 ? trace : nullptr, img, &cache, r.cache_shared);
    if (img == 0) {
      r.layers = f.layers;
      for (auto& L : r.layers) {
        for (auto& u : L.units) {
          u.compute /= r.images;
          u.load /= r.images;
          u.stall /= r.images;
          u.dram_bytes /= r.images;
          u.macs /= r.images;
        }
        L.cycles /= r.images;
        L.dram_bytes /= r.images;
        L.mean_active_experts /= r.images;
      }
    } else {
      for (size_t i = 0; i < r.layers.size(); ++i) {
        auto& L = r.layers[i];
        const auto& F = f.layers[i];
        for (size_t j = 0; j < L.units.size(); ++j) {
          L.units[j].compute += F.units[j].compute / r.images;
          L.units[j].load += F.units[j].load / r.images;
          L.units[j].stall += F.units[j].stall / r.images;
          L.units[j].dram_bytes += F.units[j].dram_bytes / r.images;
          L.units[j].macs += F.units[j].macs / r.images;
        }
        L.cycles += F.cycles / r.images;
        L.dram_bytes += F.dram_bytes / r.images;
        L.mean_active_experts += F.mean_active_experts / r.images;
        L.moe_stats = F.moe_stats;
      }
    }
    r.cycles += f.cycles / r.images;
    r.dram_bytes += f.dram / r.images;
    r.macs += f.macs / r.images;
    r.stall_cycles += f.stall / r.images;
    r.min_cycles = std::min(r.min_cycles, f.cycles);
    r.max_cycles = std::max(r.max_cycles, f.cycles);
  }
  r.cache_hits = cache.hits();
  r.cache_misses = cache.misses();
  r.latency_ms = a.ms(r.cycles);
  // Board power over the frame's latency (the paper's method) plus the DRAM's access energy for the
  // bytes the frame moves, so that a design's DRAM traffic shows in its energy.
  r.energy_board_j = r.latency_ms * 1e-3 * a.power_w;
  r.energy_dram_j = r.dram_bytes * a.dram_pj_per_byte * 1e-12;
  r.energy_j = r.energy_board_j + r.energy_dram_j;
  return r;
}

SwitchCost task_switch_cost(const ModelConfig& cfg, const AccelConfig& a, MoeStrategy strategy, const ExpertTrace& from,
                            const ExpertTrace& to, int cache_slots) {
  ModelShape s = model_shape(cfg);
  SwitchCost c;
  if (s.moe_layers() == 0) {
    c.switched_cycles = c.steady_cycles = simulate_frame(s, a, strategy, nullptr, 0, nullptr, true).cycles;
    return c;
  }
  check_trace_matches(from, cfg);
  check_trace_matches(to, cfg);
  int slots = cache_slots < 0 ? budget_cache_slots(s, a) : cache_slots;
  bool shared = slots * expert_bytes(a, s) <= pingpong_bytes(s, a) + 1e-6;
  // After the frames of task A, the first frame of task B ...
  ExpertCache after_switch(slots);
  for (int i = 0; i < from.images; ++i) simulate_frame(s, a, strategy, &from, i, &after_switch, shared);
  c.switched_cycles = simulate_frame(s, a, strategy, &to, 0, &after_switch, shared).cycles;
  // ... against the same frame of B after the frames of B.
  ExpertCache steady(slots);
  for (int i = 0; i < to.images; ++i) simulate_frame(s, a, strategy, &to, i, &steady, shared);
  c.steady_cycles = simulate_frame(s, a, strategy, &to, 0, &steady, shared).cycles;
  return c;
}

namespace {

double unit_sum(const LayerResult& L, const std::vector<std::string>& units) {
  double c = 0;
  for (const auto& u : L.units)
    if (std::find(units.begin(), units.end(), u.unit) != units.end() ||
        (u.unit == "linear" && std::find(units.begin(), units.end(), "linear:" + u.name) != units.end()))
      c += u.compute;
  return c;
}

}  // namespace

std::string format_table(const HwResult& r, const AccelConfig& a) {
  std::ostringstream os;
  os << "model " << r.model << " on " << r.accel << " (" << a.board << ", " << a.clock_mhz << " MHz), MoE strategy "
     << to_string(r.strategy);
  if (r.strategy == MoeStrategy::cache) os << " (" << r.cache_slots << " expert slots)";
  os << ", " << r.images << " image(s)\n";
  os << "cycles per layer (thousands; mean over images):\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %9s %9s %9s %9s %9s %9s %9s %10s %8s %9s\n", "layer", "norm+add", "qkv+proj",
                "attention", "mlp/exp", "router", "stall", "total", "ms", "DRAM MB", "experts");
  os << line;
  for (const auto& L : r.layers) {
    double norm = unit_sum(L, {"layernorm", "add"});
    double lin = unit_sum(L, {"linear:q", "linear:k", "linear:v", "linear:proj", "patch_embed"});
    double att = unit_sum(L, {"attention_qk", "attention_av"});
    double mlp = unit_sum(L, {"linear:fc1", "linear:fc2", "gelu", "experts"});
    double gate = unit_sum(L, {"gating"});
    double stall = 0;
    for (const auto& u : L.units) stall += u.stall;
    std::snprintf(line, sizeof line, "%-16s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %10.3f %8.2f %9s\n",
                  L.name.c_str(), norm / 1e3, lin / 1e3, att / 1e3, mlp / 1e3, gate / 1e3, stall / 1e3, L.cycles / 1e3,
                  a.ms(L.cycles), L.dram_bytes / 1e6, L.moe ? fmt("%.1f", L.mean_active_experts).c_str() : "");
    os << line;
  }
  std::snprintf(line, sizeof line, "%-16s %69s %9.1f %10.3f %8.2f\n", "total", "", r.cycles / 1e3, r.latency_ms,
                r.dram_bytes / 1e6);
  os << line;
  if (r.images > 1)
    os << "latency over images: min " << fmt("%.3f", a.ms(r.min_cycles)) << " ms, max " << fmt("%.3f", a.ms(r.max_cycles))
       << " ms\n";
  os << "latency " << fmt("%.3f", r.latency_ms) << " ms, energy " << fmt("%.4f", r.energy_j) << " J ("
     << fmt("%.4f", r.energy_board_j) << " J at " << a.power_w << " W + " << fmt("%.4f", r.energy_dram_j) << " J DRAM at "
     << a.dram_pj_per_byte << " pJ/B), " << fmt("%.1f", r.gops()) << " GOPS, waiting for weights "
     << fmt("%.3f", a.ms(r.stall_cycles)) << " ms\n";
  if (r.strategy == MoeStrategy::cache && r.cache_hits + r.cache_misses > 0)
    os << "expert cache: " << r.cache_hits << " hits, " << r.cache_misses << " misses ("
       << fmt("%.1f", 100.0 * r.cache_misses / (r.cache_hits + r.cache_misses)) << "% miss rate)\n";
  const double MiB = 1024.0 * 1024.0;
  const MemoryNeed& m = r.memory;
  os << "on-chip memory " << fmt("%.3f", m.total() / MiB) << " MiB (weight buffers " << fmt("%.3f", m.weight_buffers / MiB)
     << ", expert store " << fmt("%.3f", m.expert_store / MiB) << ", activations " << fmt("%.3f", m.activations / MiB)
     << ", queues " << fmt("%.4f", m.queues / MiB) << ", router " << fmt("%.4f", m.router / MiB) << ", other "
     << fmt("%.4f", (m.norms + m.patch_weights) / MiB) << ") of " << fmt("%.3f", r.capacity_bytes / MiB) << " MiB on "
     << a.name << (r.fits() ? "" : "  ** does not fit **") << "\n";
  return os.str();
}

std::string result_to_json(const HwResult& r, const AccelConfig& a) {
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["accelerator"] = nlohmann::ordered_json::parse(accel_config_to_json(a));
  j["strategy"] = to_string(r.strategy);
  if (r.strategy == MoeStrategy::cache) {
    j["cache_slots"] = r.cache_slots;
    j["cache_shared_with_weight_buffers"] = r.cache_shared;
    j["cache_hits"] = r.cache_hits;
    j["cache_misses"] = r.cache_misses;
  }
  j["images"] = r.images;
  j["cycles"] = r.cycles;
  j["latency_ms"] = r.latency_ms;
  j["latency_ms_min"] = a.ms(r.min_cycles);
  j["latency_ms_max"] = a.ms(r.max_cycles);
  j["energy_j"] = r.energy_j;
  j["energy_board_j"] = r.energy_board_j;
  j["energy_dram_j"] = r.energy_dram_j;
  j["dram_bytes"] = r.dram_bytes;
  j["macs"] = r.macs;
  j["gops"] = r.gops();
  j["stall_cycles"] = r.stall_cycles;
  const MemoryNeed& m = r.memory;
  j["memory_bytes"] = {{"total", m.total()},          {"weight_buffers", m.weight_buffers},
                       {"expert_store", m.expert_store}, {"activations", m.activations},
                       {"queues", m.queues},           {"router", m.router},
                       {"norms", m.norms},             {"patch_weights", m.patch_weights}};
  j["memory_mib"] = m.total() / (1024.0 * 1024.0);
  j["capacity_bytes"] = r.capacity_bytes;
  j["fits"] = r.fits();
  auto& layers = j["layers"] = nlohmann::ordered_json::array();
  for (const auto& L : r.layers) {
    nlohmann::ordered_json lj;
    lj["name"] = L.name;
    lj["block"] = L.block;
    lj["moe"] = L.moe;
    lj["cycles"] = L.cycles;
    lj["ms"] = a.ms(L.cycles);
    lj["dram_bytes"] = L.dram_bytes;
    if (L.moe) lj["mean_active_experts"] = L.mean_active_experts;
    auto& units = lj["units"] = nlohmann::ordered_json::array();
    for (const auto& u : L.units)
      units.push_back({{"unit", u.unit}, {"name", u.name}, {"compute", u.compute}, {"load", u.load},
                       {"stall", u.stall}, {"dram_bytes", u.dram_bytes}, {"macs", u.macs}});
    layers.push_back(lj);
  }
  return j.dump(1);
}

std::string comparison_to_json(const std::vector<HwResult>& rs) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  const HwResult* reo = nullptr;
  for (const HwResult& r : rs)
    if (r.strategy == MoeStrategy::reordered) reo = &r;
  if (!reo) return j.dump();
  for (const HwResult& r : rs) {
    if (&r == reo) continue;
    j[std::string("reordered_vs_") + to_string(r.strategy)] = {
        {"speedup", r.latency_ms / reo->latency_ms},
        {"energy_ratio", r.energy_j / reo->energy_j},
        {"energy_ratio_board_power_only", r.energy_board_j / reo->energy_board_j},
        {"dram_ratio", reo->dram_bytes > 0 ? r.dram_bytes / reo->dram_bytes : 0.0},
        {"memory_ratio", r.memory.total() / reo->memory.total()}};
  }
  return j.dump();
}

}  // namespace m3vit::hw
