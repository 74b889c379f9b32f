// Resource estimate per unit and against the board (hw/cost/resources.h). The unit structure is that
// of the cycle model (hw/cost/cycle_model.h), which follows Edge-MoE's HLS sources
// (sharc-lab/Edge-MoE at 984b23b, src/); the buffers are memory_need's (hw/cost/hw_model.h).
#include "hw/cost/resources.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "hw/cost/hw_model.h"
#include "hw/cost/text_format.h"

namespace m3vit::hw {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Pieces of a signed operand on a multiplier port of `port` bits: one if it fits, else a signed top
// piece of `port` bits and unsigned pieces of port - 1 bits below it.
int pieces(int bits, int port) { return bits <= port ? 1 : 1 + static_cast<int>(ceil_div(bits - port, port - 1)); }

// "1,536": the tables below print every count this way.
constexpr auto num = thousands;

ResourceRow unit_row(const std::string& unit) {
  ResourceRow r;
  r.unit = unit;
  return r;
}

std::string widths(int a, int b) { return std::to_string(a) + "x" + std::to_string(b) + " bit"; }

}  // namespace

int dsp_per_product(int a_bits, int b_bits) {
  // DSP48E2: A port 27 bits, B port 18 bits, both signed (UG579).
  return std::min(pieces(a_bits, 27) * pieces(b_bits, 18), pieces(b_bits, 27) * pieces(a_bits, 18));
}

int64_t dsps_for_products(int64_t groups, int64_t fanout, int a_bits, int b_bits) {
  // WP487: two 8-bit products with a common operand packed in one 27x18 multiply.
  if (a_bits <= 8 && b_bits <= 8) return groups * ceil_div(fanout, 2);
  return groups * fanout * dsp_per_product(a_bits, b_bits);
}

const char* to_string(MemKind k) {
  switch (k) {
    case MemKind::none: return "none";
    case MemKind::lutram: return "LUTRAM";
    case MemKind::bram18: return "BRAM18";
    case MemKind::uram: return "URAM";
  }
  return "?";
}

BufferMap map_buffer(const std::string& name, double bits, int64_t banks, int64_t width_bits, bool has_uram) {
  BufferMap m;
  m.name = name;
  m.bits = bits;
  m.banks = banks;
  m.width_bits = width_bits;
  if (bits <= 0 || banks <= 0 || width_bits <= 0) return m;
  m.depth = static_cast<int64_t>(std::ceil(bits / (static_cast<double>(banks) * width_bits) - 1e-9));
  if (m.depth <= 64) {
    // Distributed RAM: one 6-input LUT holds 64 x 1 bit (UG574).
    m.kind = MemKind::lutram;
    m.shape = "64x1";
    m.blocks_per_bank = width_bits * ceil_div(m.depth, 64);
    m.lut = banks * m.blocks_per_bank;
  } else if (has_uram && m.depth >= 2048) {
    // URAM288: 4K x 72 only, no other aspect ratio (UG573).
    m.kind = MemKind::uram;
    m.shape = "4Kx72";
    m.blocks_per_bank = ceil_div(width_bits, 72) * ceil_div(m.depth, 4096);
    m.uram = banks * m.blocks_per_bank;
  } else {
    // RAMB18E2 in simple dual-port mode (one read, one write port), 18 Kbit (UG573).
    struct Shape { int64_t depth, width; const char* text; };
    static const Shape shapes[] = {{512, 36, "512x36"}, {1024, 18, "1Kx18"}, {2048, 9, "2Kx9"},
                                   {4096, 4, "4Kx4"},   {8192, 2, "8Kx2"},   {16384, 1, "16Kx1"}};
    m.kind = MemKind::bram18;
    for (const Shape& sh : shapes) {
      int64_t n = ceil_div(width_bits, sh.width) * ceil_div(m.depth, sh.depth);
      if (m.blocks_per_bank == 0 || n < m.blocks_per_bank) {
        m.blocks_per_bank = n;
        m.shape = sh.text;
      }
    }
    m.bram18 = banks * m.blocks_per_bank;
  }
  return m;
}

std::string BufferMap::partition() const {
  if (kind == MemKind::none) return name + ": empty";
  const std::string blocks = kind == MemKind::lutram ? "LUT as RAM (64x1)" : std::string(to_string(kind)) + " (" + shape + ")";
  return name + ": " + num(banks) + (banks == 1 ? " bank" : " banks") + " x " + num(depth) + " rows x " + num(width_bits) +
         " bit → " + num(blocks_per_bank) + " " + blocks + (banks > 1 ? " each" : "");
}

bool ResourceEstimate::fits() const {
  if (!memory_fits()) return false;
  if (!board_known) return true;
  return dsp.fits() && bram18.fits() && uram.fits() && lut.fits();
}

ResourceEstimate estimate_resources(const ModelShape& s, const AccelConfig& a, MoeStrategy strategy, int cache_slots) {
  a.validate();
  ResourceEstimate r;
  r.accel = a.name;
  r.board = a.board;
  r.strategy = strategy;
  r.cache_slots = cache_slots < 0 ? budget_cache_slots(s, a) : cache_slots;
  r.weight_bits = a.weight_bits;
  r.act_bits = a.act_bits;
  const int W = a.weight_bits, A = a.act_bits, Bb = a.bias_bits;
  const int mAA = dsp_per_product(A, A);  // activation x activation (attention, exp, rescaling)
  const int64_t hp = std::min<int64_t>(a.attn_heads_parallel, s.heads);
  const int64_t p = a.attn_queries;
  const bool has_moe = s.moe_layers() > 0;
  const bool shared = a.shared_mac_array;
  const std::string aa = widths(A, A) + " (" + std::to_string(mAA) + " DSP each)";

  // --- compute units -----------------------------------------------------------------------------
  // With a shared array, a unit that runs alone (attention, router logits, LayerNorm lanes) uses the
  // linear array's DSPs; its row holds only the DSPs by which the array must grow for it.
  int64_t array_dsp = 0;
  auto on_array = [&](int64_t need) {
    int64_t extra = std::max<int64_t>(0, need - array_dsp);
    array_dsp = std::max(array_dsp, need);
    return extra;
  };

  {
    ResourceRow u = unit_row("linear array");
    // Each input activation meets Lout weights in one cycle (linear.cpp compute_linear_on_stream).
    u.dsp = dsps_for_products(a.linear_in_lanes, a.linear_out_lanes, A, W);
    array_dsp = u.dsp;
    u.lut = static_cast<int64_t>(a.linear_out_lanes) * (a.linear_in_lanes - 1) * A + int64_t{a.linear_out_lanes} * A;
    u.partition = num(a.linear_in_lanes) + " x " + num(a.linear_out_lanes) + " MACs of " + widths(W, A) + ": " +
                  (W <= 8 && A <= 8 ? std::string("2 MACs per DSP (WP487)") : std::to_string(dsp_per_product(W, A)) + " DSP each");
    u.note = "also the patch embedding; LUT: one adder tree of Lin-1 adders per output and the bias add";
    r.rows.push_back(u);
  }
  {
    ResourceRow u = unit_row("attention");
    // Q·Kᵀ: one key element meets the p staggered queries (attention.cpp compute_q_matmul_k); A·V alike.
    const int64_t matmul = dsps_for_products(a.attn_lanes, p, A, A);
    if (shared) {
      u.dsp = on_array(matmul);
      u.lut = p * a.attn_lanes * A;  // operand muxes in front of the shared DSPs
      u.partition = "Q·Kᵀ and A·V on the shared array: " + num(p) + " x " + num(a.attn_lanes) + " products of " + aa +
                    " = " + num(matmul) + " DSP";
      u.note = "shared_mac_array: grows the array by the DSPs the AxA products need beyond the linear unit's; 1/√d folded "
               "into W_q; A·V's exp(s-b)/sum runs on the idle softmax lanes";
    } else {
      // Two units (compute_q_matmul_k, compute_attn_matmul_v), the 1/√d scale per query
      // (attn_addend *= attn_scale) and A·V's exp(s-b)·(1/sum) per query and head: one exp + one
      // multiply.
      u.dsp = 2 * matmul + p * mAA + p * hp * 2 * mAA;
      u.lut = 2 * p * (a.attn_lanes - 1) * A + 2 * p * hp * A;
      u.partition = "Q·Kᵀ and A·V units, each " + num(p) + " x " + num(a.attn_lanes) + " products of " + aa + " = " +
                    num(matmul) + " DSP; " + num(p) + " scale + " + num(p * hp) + " normalising lanes (exp, multiply)";
      u.note = "own multipliers (Edge-MoE attention.cpp); LUT: two adder trees per query and the per-head sums";
    }
    r.rows.push_back(u);
  }
  {
    ResourceRow u = unit_row("softmax");
    // Single-pass softmax beside Q·Kᵀ: per lane one exp and one multiply (the running sum rescaled
    // when the maximum changes); one reciprocal per head lane, as one query row ends per key step.
    const int64_t lanes = static_cast<int64_t>(a.softmax_pairs) * hp;
    u.dsp = lanes * 2 * mAA + hp * 2 * mAA;
    u.lut = lanes * 5 * A + hp * A;
    u.partition = num(lanes) + " lanes x (exp + rescale) + " + num(hp) + " reciprocal(s), " + aa;
    u.note = "exp = 1 multiplier, reciprocal = 2 (table seed + Newton step); LUT: subtract, compare, select, add, exp table";
    r.rows.push_back(u);
  }
  {
    ResourceRow u = unit_row("layernorm");
    // Per lane: x² for the one-pass statistics, (x-μ)·(1/σ) and ·γ; per token: the 1/d scaling of
    // both sums, μ² and 1/√ (layernorm.cpp).
    const int64_t lanes_need = static_cast<int64_t>(a.vector_lanes) * (2 * mAA + dsp_per_product(A, Bb));
    const int64_t per_token = 5 * mAA;
    u.dsp = (shared ? on_array(lanes_need) : lanes_need) + per_token;
    u.lut = int64_t{a.vector_lanes} * 4 * A + 2 * int64_t{a.vector_lanes - 1} * A;
    u.partition = num(a.vector_lanes) + " lanes x 3 multipliers (" + num(lanes_need) + " DSP" +
                  (shared ? ", on the shared array" : "") + ") + " + num(per_token) + " DSP per-token statistics";
    u.note = "LUT: subtract, adds and the two statistics adder trees";
    r.rows.push_back(u);
  }
  {
    ResourceRow u = unit_row("gelu");
    // δ(|x|) table with linear interpolation: one multiplier per lane (gelu.cpp, hw/fx/fx_gelu_table.h).
    const int64_t lanes = a.gelu_fused ? a.linear_out_lanes : a.vector_lanes;
    u.dsp = lanes * mAA;
    u.lut = lanes * 6 * A;
    u.partition = num(lanes) + (a.gelu_fused ? " lanes on the linear unit's output" : " lanes") + ", 1 multiplier of " + aa;
    u.note = "LUT: |x|, subtract, ReLU select and the 177-point δ table as LUT ROM (3 LUTs per output bit)";
    r.rows.push_back(u);
  }
  {
    ResourceRow u = unit_row("residual add");
    u.lut = int64_t{a.vector_lanes} * A;
    u.partition = num(a.vector_lanes) + " adders of " + std::to_string(A) + " bit";
    u.note = "no multiplier";
    r.rows.push_back(u);
  }
  if (has_moe) {
    ResourceRow u = unit_row("router");
    // gate_lanes token features, each against all E experts (moe.cpp compute_gating_for_patch); then
    // the single-pass softmax over E (exp + rescale) and, per chosen expert, exp and a divide.
    const int64_t logits = dsps_for_products(a.gate_lanes, s.experts, A, W);
    const int64_t special = (2 + 4 * s.top_k) * mAA;
    u.dsp = (shared ? on_array(logits) : logits) + special;
    u.lut = (shared ? int64_t{a.gate_lanes} * s.experts * A : s.experts * int64_t{a.gate_lanes - 1} * A) + 2 * s.top_k * A;
    u.partition = num(a.gate_lanes) + " x " + num(s.experts) + " logit products of " + widths(A, W) + " (" + num(logits) +
                  " DSP" + (shared ? ", on the shared array" : "") + ") + " + num(special) + " DSP softmax and top-k";
    u.note = "LUT: adder trees (or operand muxes when shared) and the top-k compare-and-shift";
    r.rows.push_back(u);

    ResourceRow g = unit_row("expert output scaling");
    // dst += score · y on the expert's output (linear.cpp write_out_stream_indirect).
    g.dsp = int64_t{a.linear_out_lanes} * mAA;
    g.lut = int64_t{a.linear_out_lanes} * A;
    g.partition = num(a.linear_out_lanes) + " multipliers of " + aa + " and adders";
    g.note = "the gate weight times the expert's output, accumulated";
    r.rows.push_back(g);
  }

  // --- buffers ------------------------------------------------------------------------------------
  const MemoryNeed m = memory_need(s, a, strategy, r.cache_slots);
  const bool has_uram = a.uram_blocks > 0;
  const int64_t weight_row = static_cast<int64_t>(a.linear_macs()) * W;  // one weight block per cycle
  auto add_memory = [&](const std::string& unit, const std::vector<BufferMap>& maps, const std::string& note) {
    ResourceRow u = unit_row(unit);
    for (const BufferMap& b : maps) {
      if (b.kind == MemKind::none) continue;
      u.bram18 += b.bram18;
      u.uram += b.uram;
      u.lut += b.lut;
      u.partition += (u.partition.empty() ? "" : "; ") + b.partition();
    }
    if (u.partition.empty()) return;
    u.note = note;
    r.rows.push_back(u);
  };
  add_memory("weight buffers (ping/pong)", {map_buffer("ping+pong", m.weight_buffers * 8, 1, weight_row, has_uram)},
             "one row = the " + num(a.linear_macs()) + " weights the linear array reads per cycle; ping and pong share "
             "the blocks (the array reads one half, the next load writes the other: simple dual port); biases in the "
             "same rows");
  add_memory("expert store", {map_buffer("experts", m.expert_store * 8, 1, weight_row, has_uram)},
             "rows as wide as the weight buffers: a resident expert feeds the array at the same rate");
  if (a.activations_in_dram) {
    // Line buffers (memory_need): a linear unit's input row, the p query rows and p A·V accumulator
    // rows (one bank each, attention.cpp array_partition dim=1), one LayerNorm token, one row of patches.
    const int64_t max_in = std::max({s.d, s.hidden, s.moe_hidden, s.patch_in});
    add_memory("activations (line buffers)",
               {map_buffer("linear input", static_cast<double>(max_in) * A, 1, int64_t{a.linear_in_lanes} * A, has_uram),
                map_buffer("queries and A·V sums", 2.0 * p * s.d * A, 2 * p, int64_t{a.attn_lanes} * A, has_uram),
                map_buffer("layernorm token", static_cast<double>(s.d) * A, 1, int64_t{a.vector_lanes} * A, has_uram),
                map_buffer("patch row", static_cast<double>(s.grid_w) * s.d * A, 1, int64_t{a.vector_lanes} * A, has_uram)},
               "intermediates live in DRAM; each line buffer is as wide as its reader's lanes");
  } else {
    const int64_t token_row = int64_t{std::max({a.linear_in_lanes, a.linear_out_lanes, a.vector_lanes})} * A;
    add_memory("activations (on chip)",
               {map_buffer("token buffers", static_cast<double>(a.act_buffers) * s.tokens * s.d * A, a.act_buffers, token_row,
                           has_uram),
                map_buffer("head buffers", static_cast<double>(a.act_head_buffers) * s.tokens * s.head_dim * hp * A,
                           a.act_head_buffers, int64_t{a.attn_lanes} * A, has_uram),
                map_buffer("score rows", static_cast<double>(p) * s.tokens * hp * A, hp, p * A, has_uram)},
               "token buffers as wide as the widest of Lin, Lout and the vector lanes; Q/K/V rows attn_lanes wide; the "
               "p score rows one score per query per cycle");
  }
  if (has_moe) {
    add_memory("moe queues", {map_buffer("queues", m.queues * 8, s.top_k, a.index_bits + A, has_uram)},
               "one bank per top-k slot: a token's k (index, gate weight) entries are written in one cycle");
    add_memory("router weights",
               {map_buffer("w_gate", m.router * 8, 1, int64_t{a.gate_lanes} * s.experts * W, has_uram)},
               "one row = gate_lanes x E weights per cycle (moe.cpp array_reshape of w_gate)");
  }
  add_memory("layernorm parameters", {map_buffer("gamma/beta", m.norms * 8, 4, int64_t{a.vector_lanes} * Bb, has_uram)},
             "γ and β of both LayerNorms, vector_lanes values per cycle each");
  add_memory("patch weights", {map_buffer("conv", m.patch_weights * 8, 1, weight_row, has_uram)},
             "cached once, read by the linear array at its rate");
  {
    ResourceRow u = unit_row("AXI masters and control");
    // Edge-MoE ViT_compute.cpp: one weights bundle and four activation bundles.
    const int ports = 1 + (a.activations_in_dram ? 4 : 1);
    u.lut = ports * 2000 + 5000;
    u.partition = std::to_string(ports) + " m_axi masters x 2,000 LUT + 5,000 LUT control";
    u.note = "rough estimate, no source";
    r.rows.push_back(u);
  }

  // --- totals -------------------------------------------------------------------------------------
  r.total.unit = "total";
  for (const auto& u : r.rows) {
    r.total.dsp += u.dsp;
    r.total.bram18 += u.bram18;
    r.total.uram += u.uram;
    r.total.lut += u.lut;
  }
  r.board_known = a.dsp_slices > 0 || a.bram18_blocks > 0 || a.uram_blocks > 0 || a.lut_count > 0;
  r.dsp = {r.total.dsp, a.dsp_slices};
  r.bram18 = {r.total.bram18, a.bram18_blocks};
  r.uram = {r.total.uram, a.uram_blocks};
  r.lut = {r.total.lut, a.lut_count};
  r.memory_bytes = m.total();
  r.capacity_bytes = a.capacity_bytes();
  return r;
}

namespace {

std::string md_cell(std::string s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}

struct Named {
  const char* name;
  const ResourceFit* fit;
};

}  // namespace

std::string format_resources_table(const ResourceEstimate& r) {
  std::ostringstream os;
  os << "| unit | DSP48E2 | BRAM18 | URAM | LUT (rough) | partition | note |\n|---|---:|---:|---:|---:|---|---|\n";
  for (const auto& u : r.rows)
    os << "| " << md_cell(u.unit) << " | " << num(u.dsp) << " | " << num(u.bram18) << " | " << num(u.uram) << " | "
       << num(u.lut) << " | " << md_cell(u.partition) << " | " << md_cell(u.note) << " |\n";
  os << "| **total** | **" << num(r.total.dsp) << "** | **" << num(r.total.bram18) << "** | **" << num(r.total.uram)
     << "** | **" << num(r.total.lut) << "** | | |\n";
  if (r.board_known) {
    os << "| board (" << md_cell(r.board) << ") | " << num(r.dsp.have) << " | " << num(r.bram18.have) << " | "
       << num(r.uram.have) << " | " << num(r.lut.have) << " | | |\n";
    os << "| short by | " << num(r.dsp.short_by()) << " | " << num(r.bram18.short_by()) << " | " << num(r.uram.short_by())
       << " | " << num(r.lut.short_by()) << " | | |\n";
  }
  os << "\n" << fit_summary(r) << "\n";
  return os.str();
}

std::string fit_summary(const ResourceEstimate& r) {
  const double MiB = 1024.0 * 1024.0;
  const Named all[] = {{"DSP48E2", &r.dsp}, {"BRAM18", &r.bram18}, {"URAM", &r.uram}, {"LUT", &r.lut}};
  std::vector<std::string> shortfalls;
  std::string detail;
  for (const Named& n : all) {
    if (r.board_known && !n.fit->fits()) shortfalls.push_back(num(n.fit->short_by()) + " " + n.name);
    detail += (detail.empty() ? "" : ", ") + std::string(n.name) + " " + num(n.fit->need) +
              (r.board_known ? " of " + num(n.fit->have) : "");
  }
  if (!r.memory_fits()) shortfalls.push_back(fmt("%.2f", (r.memory_bytes - r.capacity_bytes) / MiB) + " MiB of on-chip memory");
  detail += ", on-chip memory " + fmt("%.2f", r.memory_bytes / MiB) + " MiB" +
            (r.capacity_bytes > 0 ? " of " + fmt("%.2f", r.capacity_bytes / MiB) + " MiB" : "");
  std::string s = r.accel + " at W" + std::to_string(r.weight_bits) + "/A" + std::to_string(r.act_bits) + " (" +
                  to_string(r.strategy) + "): ";
  if (shortfalls.empty()) {
    s += r.board_known ? "fits" : "no device resources given";
  } else {
    s += "not fitting by ";
    for (size_t i = 0; i < shortfalls.size(); ++i)
      s += (i == 0 ? "" : (i + 1 == shortfalls.size() ? " and " : ", ")) + shortfalls[i];
  }
  return s + " (" + detail + ")";
}

std::string resources_to_json(const ResourceEstimate& r) {
  nlohmann::ordered_json j;
  j["accelerator"] = r.accel;
  j["board"] = r.board;
  j["strategy"] = to_string(r.strategy);
  if (r.strategy == MoeStrategy::cache) j["cache_slots"] = r.cache_slots;
  j["weight_bits"] = r.weight_bits;
  j["act_bits"] = r.act_bits;
  auto& rows = j["units"] = nlohmann::ordered_json::array();
  for (const auto& u : r.rows)
    rows.push_back({{"unit", u.unit}, {"dsp", u.dsp}, {"bram18", u.bram18}, {"uram", u.uram}, {"lut", u.lut},
                    {"partition", u.partition}, {"note", u.note}});
  j["total"] = {{"dsp", r.total.dsp}, {"bram18", r.total.bram18}, {"uram", r.total.uram}, {"lut", r.total.lut}};
  j["board_known"] = r.board_known;
  if (r.board_known) {
    j["board_resources"] = {{"dsp", r.dsp.have}, {"bram18", r.bram18.have}, {"uram", r.uram.have}, {"lut", r.lut.have}};
    j["short_by"] = {{"dsp", r.dsp.short_by()},
                     {"bram18", r.bram18.short_by()},
                     {"uram", r.uram.short_by()},
                     {"lut", r.lut.short_by()}};
  }
  j["memory_bytes"] = r.memory_bytes;
  j["capacity_bytes"] = r.capacity_bytes;
  j["memory_fits"] = r.memory_fits();
  j["fits"] = r.fits();
  j["summary"] = fit_summary(r);
  return j.dump(1);
}

}  // namespace m3vit::hw
