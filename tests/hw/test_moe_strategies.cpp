// The MoE strategies on hand traces: LRU hit counting, the reordered schedule's cycles with and
// without overlapped loads, and the cache's stalls. Expected numbers are worked out in the comments.
#include <gtest/gtest.h>

#include "hw/cost/hw_model.h"
#include "hw/cost/moe_strategies.h"

namespace m3vit::hw {
namespace {

TEST(ExpertCache, LruHitsOnHandTrace) {
  ExpertCache c(2);
  const int32_t t0[2] = {0, 1}, t1[2] = {1, 2}, t2[2] = {0, 2}, t3[2] = {2, 0}, t4[2] = {1, 3};
  // t0: both miss -> {1, 0} (MRU first)
  EXPECT_EQ(c.request(0, t0, 2), (std::vector<int>{0, 1}));
  // t1: 1 hits (refreshed), 2 misses and evicts the LRU 0 -> {2, 1}
  EXPECT_EQ(c.request(0, t1, 2), (std::vector<int>{1}));
  EXPECT_TRUE(c.contains(0, 1));
  EXPECT_FALSE(c.contains(0, 0));
  // t2: 2 hits; 0 misses and evicts 1 -> {0, 2}
  EXPECT_EQ(c.request(0, t2, 2), (std::vector<int>{0}));
  // t3: both hit
  EXPECT_TRUE(c.request(0, t3, 2).empty());
  // t4: both miss
  EXPECT_EQ(c.request(0, t4, 2), (std::vector<int>{0, 1}));
  EXPECT_EQ(c.hits(), 4);
  EXPECT_EQ(c.misses(), 6);
  // Same expert id in another layer is another entry.
  const int32_t l1[1] = {1};
  EXPECT_EQ(c.request(1, l1, 1).size(), 1u);
}

TEST(ExpertCache, HitsAreUsedBeforeMissesEvict) {
  // Slots {A=0 (LRU), B=1}; a token needing {2, 0}: in plain order, the miss on 2 would evict 0
  // before it is used; hits go first, so 0 is refreshed and 1 is evicted instead.
  ExpertCache c(2);
  const int32_t fill[2] = {0, 1}, tok[2] = {2, 0};
  c.request(0, fill, 2);
  EXPECT_EQ(c.request(0, tok, 2), (std::vector<int>{0}));
  EXPECT_TRUE(c.contains(0, 0));
  EXPECT_TRUE(c.contains(0, 2));
  EXPECT_FALSE(c.contains(0, 1));
  ExpertCache none(0);
  EXPECT_EQ(none.request(0, fill, 2).size(), 2u);
  EXPECT_EQ(none.request(0, fill, 2).size(), 2u);
}

// A tiny model and accelerator whose numbers are easy to follow by hand:
// d = 32, expert hidden 32, E = 4, k = 2, 16x64 image -> 4 patches + cls = 5 tokens.
ModelConfig tiny() {
  ModelConfig c;
  c.name = "tiny_hw";
  c.img_h = 16;
  c.img_w = 64;
  c.embed_dim = 32;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_ratio = 1;
  c.moe_blocks = {1};
  c.moe_experts = 4;
  c.moe_top_k = 2;
  c.moe_mlp_ratio = 1;
  c.tasks = {{"semseg", 2}};
  c.validate();
  return c;
}

AccelConfig simple_accel(bool overlap) {
  AccelConfig a;
  a.name = "hand";
  a.linear_in_lanes = 8;  // a 32x32 layer: 4 x 4 = 16 cycles per token
  a.linear_out_lanes = 8;
  a.port_bytes = 64;      // 64 B/cycle
  a.dram_gbps = 1e3;      // not the limit
  a.dram_latency = 0;
  a.weight_bits = 16;
  a.bias_bits = 16;       // one 32x32 layer = (1024 + 32) x 2 B = 2112 B = 33 cycles
  a.activations_in_dram = false;
  a.overlap_loads = overlap;
  a.gelu_fused = true;
  return a;
}

ExpertTrace hand_trace(const ModelConfig& c) {
  ExpertTrace t;
  t.cfg = c;
  t.images = 1;
  t.layers = 1;
  t.tokens = 5;
  t.k = 2;
  // Queues: expert 0 <- tokens 0,1,2,3 (4); expert 1 <- 0 (1); expert 2 <- 1,2,3,4 (4); expert 3 <- 4 (1).
  t.idx = {0, 1, 0, 2, 2, 0, 0, 2, 2, 3};
  t.w = {0.5f, 0.2f, 0.5f, 0.2f, 0.5f, 0.2f, 0.5f, 0.2f, 0.5f, 0.2f};
  t.validate("hand");
  return t;
}

TEST(ReorderedStrategy, CyclesOnHandTraceWithoutOverlap) {
  ModelConfig c = tiny();
  AccelConfig a = simple_accel(false);
  ModelShape s = model_shape(c);
  ExpertTrace t = hand_trace(c);
  Timeline tl(false);
  MoeLayerStats st;
  UnitCost u = schedule_experts(MoeStrategy::reordered, a, s, t, 0, 0, tl, nullptr, true, nullptr, &st);
  // Per active expert: load fc1 (33) + fc1 16·n + load fc2 (33) + fc2 16·n.
  // Queues 4, 1, 4, 1: compute 32·(4+1+4+1) = 320, loads 4 x 66 = 264.
  EXPECT_EQ(st.active_experts, 4);
  EXPECT_DOUBLE_EQ(u.compute, 320);
  EXPECT_DOUBLE_EQ(u.load, 264);
  EXPECT_DOUBLE_EQ(u.stall, 264);
  EXPECT_DOUBLE_EQ(tl.now(), 584);
  EXPECT_DOUBLE_EQ(u.macs, 10 * 2 * 32 * 32);
  EXPECT_EQ(st.min_queue, 1);
  EXPECT_EQ(st.max_queue, 4);
}

TEST(ReorderedStrategy, CyclesOnHandTraceWithPingPong) {
  ModelConfig c = tiny();
  AccelConfig a = simple_accel(true);
  ModelShape s = model_shape(c);
  ExpertTrace t = hand_trace(c);
  Timeline tl(true);
  UnitCost u = schedule_experts(MoeStrategy::reordered, a, s, t, 0, 0, tl, nullptr, true, nullptr, nullptr);
  // Ops in order (load L = 33 each, compute C): e0.fc1 64, e0.fc2 64, e1.fc1 16, e1.fc2 16,
  // e2.fc1 64, e2.fc2 64, e3.fc1 16, e3.fc2 16; buffers alternate ping, pong, ping, ...
  //   e0.fc1: load 0-33 (ping), compute 33-97                 stall 33
  //   e0.fc2: load 33-66 (pong), compute 97-161               stall 0
  //   e1.fc1: ping free at 97: load 97-130, compute 161-177   stall 0
  //   e1.fc2: pong free at 161: load 161-194, compute 194-210 stall 17
  //   e2.fc1: ping free at 177: load 194-227, compute 227-291 stall 17
  //   e2.fc2: pong free at 210: load 227-260, compute 291-355 stall 0
  //   e3.fc1: ping free at 291: load 291-324, compute 355-371 stall 0
  //   e3.fc2: pong free at 355: load 355-388, compute 388-404 stall 17
  EXPECT_DOUBLE_EQ(u.compute, 320);
  EXPECT_DOUBLE_EQ(u.stall, 33 + 17 + 17 + 17);
  EXPECT_DOUBLE_EQ(tl.now(), 404);
}

TEST(CacheStrategy, StallsOnEveryMissOfHandTrace) {
  ModelConfig c = tiny();
  AccelConfig a = simple_accel(true);
  ModelShape s = model_shape(c);
  ExpertTrace t = hand_trace(c);
  // Two slots: t0 {0,1} miss miss; t1 {0,2}: 0 hit, 2 miss (evicts 1); t2 {2,0}: hits;
  // t3 {0,2}: hits; t4 {2,3}: 2 hit, 3 miss. 4 misses, 6 hits.
  ExpertCache cache(2);
  Timeline tl(true);
  MoeLayerStats st;
  UnitCost u = schedule_experts(MoeStrategy::cache, a, s, t, 0, 0, tl, &cache, true, nullptr, &st);
  EXPECT_EQ(st.cache_misses, 4);
  EXPECT_EQ(st.cache_hits, 6);
  // A miss loads a whole expert (2 x 2112 B = 66 cycles); each token-expert pair computes 16 + 16.
  EXPECT_DOUBLE_EQ(u.stall, 4 * 66);
  EXPECT_DOUBLE_EQ(u.compute, 10 * 32);
  EXPECT_DOUBLE_EQ(tl.now(), 4 * 66 + 320);
}

TEST(AllOnChipStrategy, PrefetchedBulkLoadIsHidden) {
  ModelConfig c = tiny();
  AccelConfig a = simple_accel(true);
  ModelShape s = model_shape(c);
  ExpertTrace t = hand_trace(c);
  Timeline tl(true);
  double ready = tl.prefetch(4 * 66);  // every expert, used or not: 264 cycles
  EXPECT_DOUBLE_EQ(ready, 264);
  tl.plain(1000);  // the work in between
  UnitCost u = schedule_experts(MoeStrategy::all_on_chip, a, s, t, 0, 0, tl, nullptr, true, &ready, nullptr);
  EXPECT_DOUBLE_EQ(u.load, 4 * 66);
  EXPECT_DOUBLE_EQ(u.stall, 0);
  EXPECT_DOUBLE_EQ(tl.now(), 1000 + 320);
  // Not prefetched (no overlap): the pipeline waits for the whole bulk load.
  Timeline serial(false);
  UnitCost v = schedule_experts(MoeStrategy::all_on_chip, a, s, t, 0, 0, serial, nullptr, true, nullptr, nullptr);
  EXPECT_DOUBLE_EQ(v.stall, 264);
  EXPECT_DOUBLE_EQ(serial.now(), 264 + 320);
}

TEST(Memory, ThreeStrategiesOnViTSNumbers) {
  // M3ViT ViT-S on the zcu104 preset, by hand (bytes):
  //   ping/pong: 2 x (384·1536 + 1536) x 2 = 2,365,440; one expert 2 x (384·384 + 384) x 2 = 591,360
  //   activations: (3·1025·384 + 3·1025·32 + 48·1025) x 2 = 2,656,800
  //   queues (reordered): 1025·4 x (16 + 16)/8 = 16,400; router 384·16·2 = 12,288; norms 4·384·2 = 3,072
  ModelConfig c;
  c.name = "vits";
  c.tasks = {{"semseg", 21}};
  c.moe_blocks = odd_blocks(12);
  c.validate();
  ModelShape s = model_shape(c);
  AccelConfig a = accel_preset("zcu104");
  EXPECT_DOUBLE_EQ(pingpong_bytes(s, a), 2365440);
  EXPECT_DOUBLE_EQ(expert_bytes(a, s), 591360);
  EXPECT_EQ(budget_cache_slots(s, a), 4);
  MemoryNeed r = memory_need(s, a, MoeStrategy::reordered, 4);
  EXPECT_DOUBLE_EQ(r.total(), 2365440 + 2656800 + 16400 + 12288 + 3072);
  MemoryNeed all = memory_need(s, a, MoeStrategy::all_on_chip, 4);
  EXPECT_DOUBLE_EQ(all.weight_buffers + all.expert_store, 16 * 591360);
  MemoryNeed cache = memory_need(s, a, MoeStrategy::cache, 4);
  EXPECT_DOUBLE_EQ(cache.expert_store, 0);  // 4 slots live in the ping/pong buffers
  EXPECT_DOUBLE_EQ(memory_need(s, a, MoeStrategy::cache, 10).expert_store, 10 * 591360 - 2365440);
}

}  // namespace
}  // namespace m3vit::hw
