// MoE strategies on the timeline (hw/cost/moe_strategies.h).
#include "hw/cost/moe_strategies.h"

#include <algorithm>

#include "common/errors.h"

namespace m3vit::hw {

const char* to_string(MoeStrategy s) {
  switch (s) {
    case MoeStrategy::all_on_chip: return "all_on_chip";
    case MoeStrategy::cache: return "cache";
    case MoeStrategy::reordered: return "reordered";
  }
  return "?";
}

MoeStrategy strategy_from_string(const std::string& s) {
  if (s == "all_on_chip" || s == "all-on-chip") return MoeStrategy::all_on_chip;
  if (s == "cache") return MoeStrategy::cache;
  if (s == "reordered") return MoeStrategy::reordered;
  throw ConfigError("unknown MoE strategy '" + s + "' (all_on_chip, cache, reordered)");
}

const std::vector<MoeStrategy>& all_strategies() {
  static const std::vector<MoeStrategy> v = {MoeStrategy::all_on_chip, MoeStrategy::cache, MoeStrategy::reordered};
  return v;
}

std::vector<int> ExpertCache::request(int layer, const int32_t* experts, int k) {
  std::vector<int> missed;
  // Hits first: a token's resident experts are used (and refreshed) before any miss can evict them.
  for (int j = 0; j < k; ++j) {
    auto it = where_.find(key(layer, experts[j]));
    if (it == where_.end()) {
      missed.push_back(j);
      continue;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    ++hits_;
  }
  for (int j : missed) {
    ++misses_;
    if (slots_ <= 0) continue;
    if (static_cast<int>(lru_.size()) >= slots_) {
      where_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key(layer, experts[j]));
    where_[lru_.front()] = lru_.begin();
  }
  return missed;
}

void ExpertCache::clear() {
  lru_.clear();
  where_.clear();
}

bool ExpertCache::contains(int layer, int expert) const { return where_.count(key(layer, expert)) > 0; }

UnitCost schedule_experts(MoeStrategy strategy, const AccelConfig& a, const ModelShape& s, const ExpertTrace& trace,
                          int image, int layer, Timeline& tl, ExpertCache* cache, bool cache_shared,
                          const double* store_ready, MoeLayerStats* stats) {
  UnitCost u{"experts", "experts"};
  std::vector<int> queue = trace.queue_lengths(image, layer);
  MoeLayerStats st;
  st.min_queue = 1e18;
  for (int n : queue)
    if (n > 0) {
      ++st.active_experts;
      st.min_queue = std::min<double>(st.min_queue, n);
      st.max_queue = std::max<double>(st.max_queue, n);
    }
  if (st.active_experts == 0) st.min_queue = 0;
  const double ebytes = expert_bytes(a, s);
  auto fc1 = [&](int64_t n) { return linear_cost(a, n, s.d, s.moe_hidden, false, "fc1"); };
  auto fc2 = [&](int64_t n) { return linear_cost(a, n, s.moe_hidden, s.d, true, "fc2"); };
  auto act_dram = [&](const UnitCost& c, int64_t in, int64_t out) {
    return c.dram_bytes - linear_weight_bytes(a, in, out);  // the weight part is counted per load
  };

  switch (strategy) {
    case MoeStrategy::reordered: {
      // Expert by expert over its queue; fc1 and fc2 alternate ping/pong (moe.cpp compute_moe).
      for (int e = 0; e < s.experts; ++e) {
        if (queue[e] == 0) continue;
        UnitCost c1 = fc1(queue[e]), c2 = fc2(queue[e]);
        double gelu = gelu_cost(a, queue[e], s.moe_hidden).compute;
        u.stall += tl.weighted(c1.load, c1.compute + gelu);
        u.stall += tl.weighted(c2.load, c2.compute);
        u.compute += c1.compute + gelu + c2.compute;
        u.load += c1.load + c2.load;
        u.macs += c1.macs + c2.macs;
        u.dram_bytes += ebytes + act_dram(c1, s.d, s.moe_hidden) + act_dram(c2, s.moe_hidden, s.d);
        ++st.expert_loads;
      }
      break;
    }
    case MoeStrategy::all_on_chip: {
      // All E experts of the layer resident: one bulk load of every expert, used or not.
      double bulk = load_cycles(a, ebytes * s.experts);
      u.load = bulk;
      if (store_ready && *store_ready >= 0) u.stall += tl.wait_until(*store_ready);
      else u.stall += tl.demand_load(bulk);
      u.dram_bytes += ebytes * s.experts;
      st.expert_loads = s.experts;
      for (int e = 0; e < s.experts; ++e) {
        if (queue[e] == 0) continue;
        UnitCost c1 = fc1(queue[e]), c2 = fc2(queue[e]);
        double gelu = gelu_cost(a, queue[e], s.moe_hidden).compute;
        tl.plain(c1.compute + gelu + c2.compute);
        u.compute += c1.compute + gelu + c2.compute;
        u.macs += c1.macs + c2.macs;
        u.dram_bytes += act_dram(c1, s.d, s.moe_hidden) + act_dram(c2, s.moe_hidden, s.d);
      }
      break;
    }
    case MoeStrategy::cache: {
      // Token by token: each of the token's k experts must be resident; a miss stalls the pipeline
      // while the whole expert (fc1 + fc2) streams in. The token itself is then a 1-row linear.
      if (cache_shared) cache->clear();
      int64_t h0 = cache->hits(), m0 = cache->misses();
      UnitCost t1 = fc1(1), t2 = fc2(1);
      double gelu = gelu_cost(a, 1, s.moe_hidden).compute;
      double per_expert = t1.compute + gelu + t2.compute;
      double miss_load = load_cycles(a, ebytes);
      for (int tok = 0; tok < trace.tokens; ++tok) {
        std::vector<int> missed = cache->request(layer, trace.experts(image, layer, tok), trace.k);
        for (size_t m = 0; m < missed.size(); ++m) {
          u.stall += tl.demand_load(miss_load);
          u.load += miss_load;
          u.dram_bytes += ebytes;
        }
        tl.plain(per_expert * trace.k);
        u.compute += per_expert * trace.k;
        u.macs += (t1.macs + t2.macs) * trace.k;
        u.dram_bytes += (act_dram(t1, s.d, s.moe_hidden) + act_dram(t2, s.moe_hidden, s.d)) * trace.k;
      }
      st.cache_hits = cache->hits() - h0;
      st.cache_misses = cache->misses() - m0;
      st.expert_loads = st.cache_misses;
      break;
    }
  }
  if (stats) *stats = st;
  return u;
}

}  // namespace m3vit::hw
