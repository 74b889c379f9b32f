// The three ways to run a MoE layer on a layer-sequential accelerator (M³ViT paper §3.2, Fig. 4;
// Edge-MoE's src/moe.cpp), each driven by the per-token expert choices of a trace:
//
//   all_on_chip  every expert of the layer is resident; the E experts are loaded as one bulk
//                transfer issued right after the previous MoE layer, so it overlaps the work in
//                between (and delays the ping/pong loads queued behind it). O(E) memory.
//   cache        token by token, each token's k experts are looked up in an LRU cache of whole
//                experts; a miss stalls while the expert streams in. With the memory budget of
//                the reordered design, the cache shares the ping/pong weight buffers (4 ViT-S
//                experts) and is therefore empty at the start of every MoE layer.
//   reordered    the paper's computation reordering: after gating, each token (with its gate
//                weight) is appended to the queue of each of its k experts; experts are then run
//                one by one over their whole queue, the next expert's weights loading into the
//                other ping/pong buffer meanwhile (Edge-MoE moe.cpp compute_moe). O(1) memory.
//                Experts with an empty queue are skipped and never loaded.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "hw/cost/cycle_model.h"
#include "hw/cost/expert_trace.h"

namespace m3vit::hw {

enum class MoeStrategy { all_on_chip, cache, reordered };
const char* to_string(MoeStrategy s);
MoeStrategy strategy_from_string(const std::string& s);  // throws ConfigError
const std::vector<MoeStrategy>& all_strategies();

// LRU cache of experts keyed by (MoE layer, expert). `request` looks up all k experts a token
// needs at once: hits are used (and refreshed) first, then each miss evicts the least recently
// used entry. A cache with 0 slots misses every time.
class ExpertCache {
 public:
  explicit ExpertCache(int slots) : slots_(slots) {}
  int slots() const { return slots_; }
  // Returns the positions (into `experts`) that missed, in order; updates the cache.
  std::vector<int> request(int layer, const int32_t* experts, int k);
  void clear();
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  bool contains(int layer, int expert) const;

 private:
  using Key = int64_t;
  static Key key(int layer, int expert) { return (static_cast<int64_t>(layer) << 32) | static_cast<uint32_t>(expert); }
  int slots_;
  std::list<Key> lru_;  // front = most recently used
  std::unordered_map<Key, std::list<Key>::iterator> where_;
  int64_t hits_ = 0, misses_ = 0;
};

struct MoeLayerStats {
  int active_experts = 0;     // experts with a non-empty queue
  int64_t expert_loads = 0;   // whole experts fetched from DRAM
  int64_t cache_hits = 0, cache_misses = 0;
  double min_queue = 0, max_queue = 0;  // tokens per active expert
};

// Schedules the expert computation of one MoE layer (after gating) on the timeline and returns
// its cost (unit "experts"). `layer` is the MoE layer index into the trace.
//   all_on_chip: `store_ready` is when this layer's experts, prefetched by the caller, are on chip;
//                null or < 0: they are loaded now (the pipeline waits).
//   cache:       `cache` holds the state across layers and frames (flushed per layer when
//                `cache_shared` is true, i.e. the slots live in the ping/pong buffers).
UnitCost schedule_experts(MoeStrategy strategy, const AccelConfig& a, const ModelShape& s, const ExpertTrace& trace,
                          int image, int layer, Timeline& tl, ExpertCache* cache, bool cache_shared,
                          const double* store_ready, MoeLayerStats* stats);

}  // namespace m3vit::hw
