// MAC and parameter counter (core/flops.cpp) against hand counts: docs/FLOPS.md's numbers for ViT-S
// at 512x512 and 480x640 and its parameter counts, each re-derived in the comments from the
// module shapes (N tokens, d width, k of E experts, hid expert width, c = 256 head channels).
#include <gtest/gtest.h>

#include "common/errors.h"
#include "core/config.h"
#include "core/flops.h"

using namespace m3vit;

namespace {

const std::string kSrc = M3VIT_SOURCE_DIR;

double row_total(const std::vector<CostRow>& rows, const std::string& prefix) {
  double s = 0;
  for (const auto& r : rows)
    if (r.name.rfind(prefix, 0) == 0) s += r.total().macs;
  return s;
}
const CostRow& row(const std::vector<CostRow>& rows, const std::string& prefix) {
  for (const auto& r : rows)
    if (r.name.rfind(prefix, 0) == 0) return r;
  throw std::runtime_error("no row " + prefix);
}

}  // namespace

TEST(Flops, VitSmall512MatchesHandCounts) {
  const FlopsReport r = count_flops(load_config(kSrc + "/configs/pascal_vits_moe16.yaml"));
  const auto& rows = r.backbone_rows;
  // N = 1025, d = 384. Attention per block: qkv 3·N·d² = 453,427,200; Q·Kᵀ and A·V N²·d = 403,440,000
  // each; proj N·d² = 151,142,400; sum 1,411,449,600 ≈ 1.411 G (docs/FLOPS.md).
  EXPECT_EQ(row(rows, "attention.qkv").each.macs, 453427200.0);
  EXPECT_EQ(row(rows, "attention.q_kT").each.macs, 403440000.0);
  EXPECT_EQ(row(rows, "attention.a_v").each.macs, 403440000.0);
  EXPECT_EQ(row(rows, "attention.proj").each.macs, 151142400.0);
  EXPECT_EQ(row_total(rows, "attention") / 12, 1411449600.0);
  // MoE layer: router N·d·E = 6,297,600; 4 experts of 2·d·384 per token = 1,209,139,200; 1.215 G.
  EXPECT_EQ(row(rows, "moe.router").each.macs + row(rows, "moe.experts").each.macs, 1215436800.0);
  EXPECT_EQ(row(rows, "moe.router").count, 6);
  // Dense MLP 2·N·d·1536 = 1,209,139,200 (top-4 x ratio 1 has the same expert MACs).
  EXPECT_EQ(row(rows, "mlp").each.macs, 1209139200.0);
  // Patch embed 1024·384·768 = 301,989,888. Backbone: 12 attention + 6 dense + 6 MoE + patch embed.
  EXPECT_EQ(row(rows, "patch_embed").each.macs, 301989888.0);
  EXPECT_EQ(r.backbone.macs, 301989888.0 + 12 * 1411449600.0 + 6 * 1209139200.0 + 6 * 1215436800.0);
  EXPECT_NEAR(r.backbone.macs / 1e9, 31.8, 0.05);
  // PUP head with C = 1: 9·256·(1024·384 + 4096·256 + 16384·256 + 65536·256) + 65536·256·1
  // = 51,640,270,848 + 16,777,216 = 51,657,048,064 ≈ 51.7 G.
  const int sal = r.cfg.task_index("sal");
  EXPECT_EQ(r.heads[sal].macs, 51657048064.0);
  EXPECT_NEAR(r.heads[sal].macs / 1e9, 51.7, 0.05);
  // semseg's conv_4 has 21 outputs: + 65536·256·20.
  EXPECT_EQ(r.heads[0].macs, 51657048064.0 + 65536.0 * 256 * 20);
  // Single-task semseg ≈ 83.8 G, the paper's 84 G (Table 1).
  EXPECT_NEAR(r.single_task(0).macs / 1e9, 83.78, 0.01);
}

TEST(Flops, VitSmall480x640MatchesHandCounts) {
  const FlopsReport r = count_flops(load_config(kSrc + "/configs/nyud_vits_moe16.yaml"));
  // N = 1201, h·w = 1200: attention 4·N·d² + 2·N²·d = 708,395,904 + 1,107,746,688 = 1,816,142,592.
  EXPECT_EQ(row_total(r.backbone_rows, "attention") / 12, 1816142592.0);
  EXPECT_NEAR(r.backbone.macs / 1e9, 39.2, 0.05);
  // Depth head (C = 1): 9·256·(1200·384 + 256·(4800 + 19200 + 76800)) + 76800·256 = 60,535,603,200.
  EXPECT_EQ(r.heads[1].macs, 60535603200.0);
  EXPECT_NEAR(r.heads[1].macs / 1e9, 60.5, 0.05);
  // Semseg single task ≈ 100.5 G (the paper's 100 G, Table 2).
  EXPECT_NEAR(r.single_task(0).macs / 1e9, 100.5, 0.05);
}

TEST(Flops, InferenceModesAndThopVisiblePart) {
  const ModelConfig cfg = load_config(kSrc + "/configs/pascal_vits_moe16.yaml");
  const FlopsReport r = count_flops(cfg);
  // Multi-gate: one backbone pass per task, all 5 heads.
  EXPECT_EQ(r.all_task_passes(), 5);
  double heads = 0;
  for (const auto& h : r.heads) heads += h.macs;
  EXPECT_EQ(r.all_tasks().macs, 5 * r.backbone.macs + heads);
  // thop sees the patch conv, qkv, proj, the dense MLPs and the head convs; not Q·Kᵀ, A·V, routers,
  // experts: 301,989,888 + 12·(453,427,200 + 151,142,400) + 6·1,209,139,200.
  EXPECT_EQ(r.backbone.thop_macs, 301989888.0 + 12 * (453427200.0 + 151142400.0) + 6 * 1209139200.0);
  EXPECT_EQ(r.heads[0].thop_macs, r.heads[0].macs);

  ModelConfig shared = cfg;
  shared.gate = GateType::shared;
  const FlopsReport s = count_flops(shared);
  EXPECT_EQ(s.all_task_passes(), 1);
  EXPECT_EQ(s.all_tasks().macs, s.backbone.macs + heads);

  // Dense M-ViT baseline: MoE rows replaced by 1.209 G dense MLPs; one pass serves all heads.
  const FlopsReport d = count_flops(dense_baseline(cfg));
  EXPECT_EQ(d.backbone.macs, 301989888.0 + 12 * (1411449600.0 + 1209139200.0));
  EXPECT_EQ(d.all_task_passes(), 1);
  EXPECT_EQ(r.backbone.macs - d.backbone.macs, 6 * 6297600.0);  // the routers are the only extra MACs

  // task_cond: the router reads [token ; 64-d task embedding] and the embedding MLP runs once a pass.
  ModelConfig tc = cfg;
  tc.gate = GateType::task_cond;
  tc.task_emb_dim = 64;
  const FlopsReport t = count_flops(tc);
  EXPECT_EQ(row(t.backbone_rows, "moe.router").each.macs, 1025.0 * (384 + 64) * 16);
  EXPECT_EQ(row(t.backbone_rows, "task_embedding").each.macs, 5.0 * 64 + 64 * 64);
  EXPECT_EQ(t.all_task_passes(), 5);
}

TEST(Flops, ParameterCountsMatchSpec) {
  const FlopsReport r = count_flops(load_config(kSrc + "/configs/pascal_vits_moe16.yaml"));
  const ParamCount& p = r.params;
  // One expert: 384·384 + 384 + 384·384 + 384 = 295,680; 6 layers x 16 = 28,385,280 ≈ 28.39 M.
  EXPECT_EQ(p.experts, 6 * 16 * 295680);
  // Routers: 6 layers x 5 tasks x [384, 16] = 184,320 ≈ 0.18 M.
  EXPECT_EQ(p.routers, 184320);
  // Backbone 43.46 M: patch 295,296 + cls/pos 393,984 + attention/norms 7,114,752 + dense 7,089,408.
  EXPECT_EQ(p.patch_embed, 295296);
  EXPECT_EQ(p.tokens, 393984);
  EXPECT_EQ(p.attention, 7114752);
  EXPECT_EQ(p.dense_mlp, 7089408);
  EXPECT_EQ(p.backbone(), 43463040);
  // Head: LN 768 + conv_0 884,992 + 3 x 590,080 + 4 BN x 512 + conv_4 (256·C + C) = 2,658,048 + 257·C.
  EXPECT_EQ(p.heads[0], 2658048 + 257 * 21);
  EXPECT_NEAR(p.heads[2] / 1e6, 2.66, 0.005);
  // Touched per token (semseg): the backbone minus 12 of 16 experts per layer and 4 of 5 routers.
  EXPECT_EQ(p.touched_per_token[0], 43463040 - 6 * 12 * 295680 - 6 * 4 * 384 * 16 + p.heads[0]);
  // TAM, 2 levels of 5 tasks (c = 256): layers0/2 9·1280·256+256 + BN, layers1, 2 encoders, 2 decoders
  // 9·256²+256 + BN, per task 9·1280·256+256 + BN + 256·C + C.
  const int64_t big = 9 * 1280 * 256 + 256 + 512, small = 9 * 256 * 256 + 256 + 512;
  const int64_t per_level = 2 * big + 5 * small + 5 * big + (256 * 33 + 33);
  EXPECT_EQ(p.tam, 2 * per_level);
  EXPECT_EQ(p.total(), p.backbone() + p.heads_total() + p.tam);
}

TEST(Flops, TinyConfigByHand) {
  // tiny_test: 32x48 input, patch 16 -> 2x3 grid, N = 7, d = 32, depth 2 (block 1 MoE), 2 heads,
  // E = 4, k = 2, hid 32, head c = 8, tasks semseg 8 / normals 3 / depth 1.
  const FlopsReport r = count_flops(load_config(kSrc + "/configs/tiny_test.yaml"));
  // patch 6·32·768 = 147,456; attention 2 x (4·7·1024 + 2·49·32) = 2 x 31,808; dense 2·7·32·128 = 57,344;
  // router 7·32·4 = 896; experts 2·2·7·32·32 = 28,672.
  EXPECT_EQ(r.backbone.macs, 147456.0 + 2 * 31808 + 57344 + 896 + 28672);
  // Head: 9·8·(6·32 + 24·8 + 96·8 + 384·8) + 384·8·C.
  EXPECT_EQ(r.heads[0].macs, 9.0 * 8 * (192 + 192 + 768 + 3072) + 384 * 8 * 8);
  // Parameters: patch 32·768+32; tokens 32 + 7·32; attention 2 x (64 + 3168 + 1056 + 64);
  // dense 32·128+128 + 128·32+32; experts 4 x (32·32+32 + 32·32+32); routers 3 tasks x 32·4.
  const ParamCount& p = r.params;
  EXPECT_EQ(p.backbone(), (32 * 768 + 32) + (32 + 7 * 32) + 2 * (64 + 3168 + 1056 + 64) + (4224 + 4128) +
                              4 * (1056 + 1056) + 3 * 32 * 4);
  EXPECT_EQ(p.heads[1], 64 + (9 * 32 * 8 + 8) + 3 * (9 * 64 + 8) + (8 * 3 + 3) + 4 * 16);
}

TEST(Flops, ReportPrintsAllThreeModes) {
  const std::string s = format_flops_report(count_flops(load_config(kSrc + "/configs/pascal_vits_moe16.yaml")));
  EXPECT_NE(s.find("(a) single task: semseg"), std::string::npos);
  EXPECT_NE(s.find("(b) all tasks"), std::string::npos);
  EXPECT_NE(s.find("(c) dense M-ViT baseline"), std::string::npos);
  EXPECT_NE(s.find("83.779"), std::string::npos);  // semseg single-task GMAC
  EXPECT_NE(s.find("28385280"), std::string::npos);  // experts
}

TEST(Flops, InvalidConfigIsRejected) {
  ModelConfig c = load_config(kSrc + "/configs/tiny_test.yaml");
  c.moe_top_k = 9;
  EXPECT_THROW(count_flops(c), ConfigError);
}
