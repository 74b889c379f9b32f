// Checkpoint import/export (model/checkpoint.h) on tiny models (d=32, 2 blocks, 32x48 input = a 2x3
// grid). Oracles: our own model before export (round trip must be bit-exact), checkpoints in the
// authors' layout and DeiT's layout written by torch.save in Python, and torch.nn.functional.interpolate
// for the positional-embedding resize.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/errors.h"
#include "io/pth_reader.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "tests/core/io_test_util.h"

namespace m3vit {
namespace {

ModelConfig tiny_config(GateType gate = GateType::multi, int experts = 4, int top_k = 2) {
  ModelConfig c;
  c.name = "tiny";
  c.img_h = 32;
  c.img_w = 48;
  c.patch = 16;
  c.embed_dim = 32;
  c.depth = 2;
  c.num_heads = 4;
  c.mlp_ratio = 4.0;  // dense hidden H = 128
  c.moe_blocks = {1};
  c.moe_experts = experts;
  c.moe_top_k = top_k;
  c.moe_mlp_ratio = 1.0;  // expert hidden = 32
  c.gate = gate;
  c.task_emb_dim = 8;
  c.head_channels = 16;
  c.tasks = {{"semseg", 5}, {"normals", 3}};
  return c;
}

std::map<std::string, torch::Tensor> state_of(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : m.named_parameters(true)) s[p.key()] = p.value().detach().clone();
  for (const auto& b : m.named_buffers(true)) s[b.key()] = b.value().detach().clone();
  return s;
}

torch::Tensor from_view(const OwnedTensor& t) {
  EXPECT_EQ(t.dtype, DType::F32);
  torch::Tensor out = torch::empty(t.shape, torch::kFloat);
  std::memcpy(out.data_ptr(), t.bytes.data(), t.bytes.size());
  return out;
}

// Fills BatchNorm statistics with something other than their defaults so that the export has to
// carry them (mean ~ N(0,1), var ~ U(0.5, 1.5), num_batches_tracked = 7).
void randomise_buffers(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& b : m.named_buffers(true)) {
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_();
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
    if (b.key().find("num_batches_tracked") != std::string::npos) b.value().fill_(7);
  }
}

bool has_entry(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

// Python side: authors'-layout checkpoints made from model A's export, a DeiT-style file, and the
// interpolate oracle. Reads our export with a numpy reader written from the format description.
const char* kMakeFixtures = R"PY(
import collections, json, math, os, struct, sys
import numpy as np
import torch
import torch.nn.functional as F
d = sys.argv[1]

def read_st(path):
    raw = open(path, 'rb').read()
    n, = struct.unpack('<Q', raw[:8])
    h = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = h.pop('__metadata__', {})
    out = collections.OrderedDict()
    for k, v in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        b, e = v['data_offsets']
        assert v['dtype'] == 'F32', k
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np.float32).reshape(v['shape']).copy())
    return out, meta

def write_st(path, tensors):
    hdr, blob = {}, b''
    for k, t in tensors.items():
        b = t.float().contiguous().numpy().tobytes()
        hdr[k] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [len(blob), len(blob) + len(b)]}
        blob += b
    h = json.dumps(hdr).encode()
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + blob)

sd, meta = read_st(d + '/model_a.safetensors')
assert meta['format'] == 'm3vit-export-v1'
cfg = json.loads(meta['m3vit_config'])
E = cfg['moe_experts']

# The authors' layout (common_config.py:29-97): DDP prefix, one router per MoE layer plus its
# unused w_gate_aux, integer num_batches_tracked, nested under 'state_dict' next to optimizer state.
authors = collections.OrderedDict()
for k, t in sd.items():
    if '.mlp.gate.' in k:
        if k.endswith('.gate.0.w_gate'):
            stem = k[:-len('0.w_gate')]
            authors['module.' + stem + 'w_gate'] = t
            authors['module.' + stem + 'w_gate_aux'] = torch.randn_like(t)
        continue
    authors['module.' + k] = t.long() if k.endswith('num_batches_tracked') else t
optimizer = {'state': {0: {'momentum_buffer': torch.ones(3)}}, 'param_groups': [{'lr': 0.1, 'params': [0]}]}
torch.save({'state_dict': authors, 'epoch': 7, 'optimizer': optimizer}, d + '/authors.pth')
# Two ranks (utils/moe_utils.py:32-38, 68-79): rank 0 everything with its experts [0, E/2), rank 1 only experts [E/2, E).
os.makedirs(d + '/shards', exist_ok=True)
r0, r1 = collections.OrderedDict(), collections.OrderedDict()
for k, t in authors.items():
    if '.mlp.experts.' in k:
        r0[k], r1[k] = t[:E // 2].clone(), t[E // 2:].clone()
    else:
        r0[k] = t
torch.save({'state_dict': r0, 'epoch': 7, 'optimizer': optimizer}, d + '/shards/0.pth')
torch.save({'state_dict': r1, 'epoch': 7}, d + '/shards/1.pth')
write_st(d + '/authors.safetensors', authors)

# A DeiT-style checkpoint (timm names) for a d=32 ViT on a 14x14 grid, nested under 'model'.
torch.manual_seed(0)
D, H = cfg['embed_dim'], int(cfg['embed_dim'] * cfg['mlp_ratio'])
deit = collections.OrderedDict()
deit['cls_token'] = torch.randn(1, 1, D)
deit['pos_embed'] = torch.randn(1, 197, D)
deit['patch_embed.proj.weight'] = torch.randn(D, 3, 16, 16) * 0.02
deit['patch_embed.proj.bias'] = torch.randn(D)
for i in range(cfg['depth']):
    p = 'blocks.%d.' % i
    for n in ['norm1', 'norm2']:
        deit[p + n + '.weight'] = 1 + 0.1 * torch.randn(D)
        deit[p + n + '.bias'] = 0.1 * torch.randn(D)
    deit[p + 'attn.qkv.weight'] = 0.1 * torch.randn(3 * D, D)
    deit[p + 'attn.qkv.bias'] = 0.1 * torch.randn(3 * D)
    deit[p + 'attn.proj.weight'] = 0.1 * torch.randn(D, D)
    deit[p + 'attn.proj.bias'] = 0.1 * torch.randn(D)
    deit[p + 'mlp.fc1.weight'] = 0.2 * torch.randn(H, D)
    deit[p + 'mlp.fc1.bias'] = 0.2 * torch.randn(H)
    deit[p + 'mlp.fc2.weight'] = 0.2 * torch.randn(D, H)
    deit[p + 'mlp.fc2.bias'] = 0.2 * torch.randn(D)
deit['norm.weight'], deit['norm.bias'] = torch.ones(D), torch.zeros(D)
deit['head.weight'], deit['head.bias'] = torch.randn(1000, D), torch.randn(1000)
torch.save({'model': deit, 'epoch': 300}, d + '/deit.pth')
# Flat variant: linear-layout patch embedding and a distilled model's extra token and pos row.
flat = collections.OrderedDict(deit)
flat['patch_embed.proj.weight'] = deit['patch_embed.proj.weight'].reshape(D, -1)
flat['dist_token'] = torch.randn(1, 1, D)
flat['pos_embed'] = torch.randn(1, 198, D)
flat['head_dist.weight'] = torch.randn(1000, D)
torch.save(flat, d + '/deit_flat.pth')

def resize(pos, h, w):  # utils/helpers.py:280-301
    n, c, hw = pos.transpose(1, 2).shape
    g = int(math.sqrt(hw))
    grid = pos[:, -g * g:].transpose(1, 2).reshape(n, c, g, g)
    grid = F.interpolate(grid, size=(h, w), mode='bilinear', align_corners=False)
    return torch.cat([pos[:, :1], grid.reshape(n, c, -1).transpose(1, 2)], 1)
gh, gw = cfg['img_size'][0] // 16, cfg['img_size'][1] // 16
expect = {'pos': resize(deit['pos_embed'], gh, gw), 'pos_flat': resize(flat['pos_embed'], gh, gw)}
p197 = torch.randn(1, 197, 8)
expect['p197'], expect['p197_30x40'], expect['p197_32x32'] = p197, resize(p197, 30, 40), resize(p197, 32, 32)
p578 = torch.randn(1, 578, 8)
expect['p578'], expect['p578_30x40'] = p578, resize(p578, 30, 40)
x = torch.randn(10, D)
expect['x'] = x
for i in range(cfg['depth']):
    p = 'blocks.%d.mlp.' % i
    expect['dense%d' % i] = F.linear(F.gelu(F.linear(x, deit[p + 'fc1.weight'], deit[p + 'fc1.bias'])),
                                     deit[p + 'fc2.weight'], deit[p + 'fc2.bias'])
torch.save(expect, d + '/expect.pth')
print('PY_OK')
)PY";

class CheckpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test_io::make_scratch_dir("checkpoint");
    torch::manual_seed(11);
    model_a_ = new MultiTaskModel(tiny_config());
    randomise_buffers(**model_a_);
    (*model_a_)->eval();
    export_model(**model_a_, path("model_a.safetensors"));
    // Keyed by the script and model A's bytes, so a change to the model's init rebuilds the fixtures.
    fixtures_ = test_io::cached_python_fixture("checkpoint", kMakeFixtures, {path("model_a.safetensors")},
                                               &python_output_);
    if (!fixtures_.empty())
      for (auto& [k, t] : read_pth_tensors(fixture("expect.pth"))) expect_[k] = from_view(t);
  }
  static void TearDownTestSuite() {
    delete model_a_;
    if (!any_failure_) std::filesystem::remove_all(dir_);
  }
  void SetUp() override { ASSERT_FALSE(fixtures_.empty()) << python_output_; }
  void TearDown() override { any_failure_ |= HasFailure(); }
  static std::string path(const std::string& n) { return dir_ + "/" + n; }           // this process's scratch
  static std::string fixture(const std::string& n) { return fixtures_ + "/" + n; }  // made by Python
  static MultiTaskModelImpl& a() { return **model_a_; }

  // Model B starts from other weights, loads `file`, and must then equal model A, every router
  // holding A's task-0 router (the one the authors' checkpoint carries).
  void expect_equals_a_with_copied_routers(MultiTaskModelImpl& b) {
    auto sa = state_of(a()), sb = state_of(b);
    ASSERT_EQ(sa.size(), sb.size());
    for (const auto& [k, t] : sa) {
      std::string src = k;
      const auto g = k.find(".mlp.gate.");
      if (g != std::string::npos) src = k.substr(0, g) + ".mlp.gate.0.w_gate";
      EXPECT_TRUE(torch::equal(sb.at(k), sa.at(src))) << k;
    }
    torch::manual_seed(5);
    torch::Tensor x = torch::randn({2, 3, 32, 48});
    b.eval();
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(b.forward_task(x, 0), a().forward_task(x, 0)));
  }

  static inline std::string dir_, fixtures_, python_output_;
  static inline bool any_failure_ = false;
  static inline MultiTaskModel* model_a_ = nullptr;
  static inline std::map<std::string, torch::Tensor> expect_;
};

TEST_F(CheckpointTest, ExportRoundTripGivesIdenticalOutputs) {
  for (GateType gate : {GateType::multi, GateType::task_cond, GateType::shared}) {
    ModelConfig cfg = tiny_config(gate);
    cfg.tam = true;  // TAM tensors are part of the export too
    cfg.tam_levels[0] = false;  // level 0 needs an even patch grid; this one is 2x3
    cfg.tam_levels[1] = true;
    torch::manual_seed(3);
    MultiTaskModel m(cfg);
    randomise_buffers(*m);
    m->eval();
    const std::string file = path(std::string("rt_") + to_string(gate) + ".safetensors");
    export_model(*m, file);

    SafeTensorsFile f(file);
    EXPECT_EQ(f.metadata().at("format"), "m3vit-export-v1");
    EXPECT_EQ(f.metadata().at("m3vit_config"), config_to_json(cfg));
    auto want = state_of(*m);
    EXPECT_EQ(f.names().size(), want.size());
    for (const auto& n : f.names()) EXPECT_EQ(f.get(n).dtype, DType::F32) << n;
    EXPECT_EQ(config_to_json(read_export_config(file)), config_to_json(cfg));

    MultiTaskModel back = load_exported(file);
    EXPECT_FALSE(back->is_training());
    auto got = state_of(*back);
    for (const auto& [k, t] : want) {
      ASSERT_TRUE(got.count(k)) << k;
      EXPECT_EQ(got.at(k).scalar_type(), t.scalar_type()) << k;
      EXPECT_TRUE(torch::equal(got.at(k), t)) << k;
    }
    torch::NoGradGuard ng;
    torch::Tensor x = torch::randn({2, 3, 32, 48});
    for (int t = 0; t < cfg.num_tasks(); ++t) EXPECT_TRUE(torch::equal(back->forward_task(x, t), m->forward_task(x, t)));
  }
}

// An inference export (export_model(..., training_weights = false)) holds no TAM and says so; it loads
// for inference with the same outputs, and a load that needs the TAM refuses it, naming the file.
TEST_F(CheckpointTest, InferenceExportLeavesOutTheTam) {
  ModelConfig cfg = tiny_config();
  cfg.tam = true;
  cfg.tam_levels[0] = false;  // level 0 needs an even patch grid; this one is 2x3
  cfg.tam_levels[1] = true;
  torch::manual_seed(4);
  MultiTaskModel m(cfg);
  m->eval();
  const std::string inf = path("inference.safetensors"), full = path("with_tam.safetensors");
  export_model(*m, inf, /*training_weights=*/false);
  export_model(*m, full);
  SafeTensorsFile fi(inf), ff(full);
  EXPECT_EQ(fi.metadata().at(kTrainingWeightsKey), kTrainingWeightsOmitted);
  EXPECT_EQ(ff.metadata().at(kTrainingWeightsKey), kTrainingWeightsIncluded);
  EXPECT_FALSE(export_has_training_weights(fi.metadata(), inf));
  size_t tam = 0;
  for (const auto& n : ff.names()) {
    if (training_only_key(n)) ++tam;
    else EXPECT_TRUE(fi.has(n)) << n;
  }
  for (const auto& n : fi.names()) EXPECT_FALSE(training_only_key(n)) << n;
  EXPECT_GT(tam, 0u);
  EXPECT_EQ(fi.names().size() + tam, ff.names().size());

  MultiTaskModel b(cfg);
  const LoadReport r = load_checkpoint(*b, inf, /*strict=*/true, LoadFor::inference);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_EQ(r.ignored.size(), tam);
  b->eval();
  torch::NoGradGuard ng;
  torch::Tensor x = torch::randn({1, 3, 32, 48});
  for (int t = 0; t < cfg.num_tasks(); ++t) EXPECT_TRUE(torch::equal(b->forward_task(x, t), m->forward_task(x, t)));

  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (attempt == 0) load_exported(inf);
      else load_checkpoint(*b, inf, /*strict=*/true);  // LoadFor::training
      FAIL() << attempt;
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(inf), std::string::npos) << msg;
      EXPECT_NE(msg.find("TAM"), std::string::npos) << msg;
      EXPECT_NE(msg.find("--with-training-weights"), std::string::npos) << msg;
    }
  }
  EXPECT_NO_THROW(load_exported(full));
}

TEST_F(CheckpointTest, ExportErrorsAreNamed) {
  // Not an export: no format tag.
  SafeTensorsWriter w;
  float v = 1;
  w.add("x", DType::F32, {1}, &v, 4);
  w.write(path("plain.safetensors"));
  EXPECT_THROW(read_export_config(path("plain.safetensors")), FormatError);
  // A bad config JSON is a ConfigError naming the file.
  w.set_metadata("format", "m3vit-export-v1");
  w.set_metadata("m3vit_config", "{\"embed_dim\": \"wide\"}");
  w.write(path("badcfg.safetensors"));
  try {
    read_export_config(path("badcfg.safetensors"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("badcfg.safetensors"), std::string::npos) << e.what();
  }
  // An export missing one tensor does not load (strict).
  SafeTensorsFile full(path("model_a.safetensors"));
  SafeTensorsWriter part;
  for (const auto& n : full.names())
    if (n != "backbone.blocks.0.attn.proj.bias") {
      const TensorView& t = full.get(n);
      part.add(n, t.dtype, t.shape, t.data, t.nbytes);
    }
  for (const auto& [k, s] : full.metadata()) part.set_metadata(k, s);
  part.write(path("partial.safetensors"));
  try {
    load_exported(path("partial.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("backbone.blocks.0.attn.proj.bias"), std::string::npos) << e.what();
  }
  // A model with a NaN is not exported, and no file appears.
  MultiTaskModel m(tiny_config());
  {
    torch::NoGradGuard ng;
    m->backbone->cls_token.fill_(NAN);
  }
  EXPECT_THROW(export_model(*m, path("nan.safetensors")), NumericError);
  EXPECT_FALSE(std::filesystem::exists(path("nan.safetensors")));
  EXPECT_THROW(load_exported(path("absent.safetensors")), IoError);
}

TEST_F(CheckpointTest, AuthorsPthWithPrefixesAuxKeysAndOneRouter) {
  torch::manual_seed(99);
  MultiTaskModel b(tiny_config());
  LoadReport r = load_checkpoint(*b, fixture("authors.pth"), /*strict=*/true);
  expect_equals_a_with_copied_routers(*b);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.unexpected.empty()) << r.unexpected.front();
  EXPECT_TRUE(has_entry(r.remapped, "backbone.blocks.1.mlp.gate.1.w_gate: single router copied to task 1"));
  EXPECT_TRUE(has_entry(r.remapped, "module.* -> *"));
  EXPECT_TRUE(has_entry(r.ignored, "state_dict.module.backbone.blocks.1.mlp.gate.w_gate_aux"));
  EXPECT_TRUE(has_entry(r.ignored, "optimizer.state.0.momentum_buffer"));
  EXPECT_EQ(r.loaded.size(), state_of(*b).size());
}

TEST_F(CheckpointTest, AuthorsShardDirectoryConcatenatesExpertsInRankOrder) {
  torch::manual_seed(98);
  MultiTaskModel b(tiny_config());
  LoadReport r = load_checkpoint(*b, fixture("shards"), /*strict=*/true);
  expect_equals_a_with_copied_routers(*b);
  EXPECT_TRUE(r.unexpected.empty());
  // A missing rank is named.
  std::filesystem::create_directories(path("shards_gap"));
  std::filesystem::copy_file(fixture("shards/0.pth"), path("shards_gap/0.pth"));
  std::filesystem::copy_file(fixture("shards/1.pth"), path("shards_gap/2.pth"));
  try {
    load_checkpoint(*b, path("shards_gap"), true);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("1.pth is missing"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, AuthorsKeysAsSafetensors) {
  torch::manual_seed(97);
  MultiTaskModel b(tiny_config());
  LoadReport r = load_checkpoint(*b, fixture("authors.safetensors"), /*strict=*/true);
  expect_equals_a_with_copied_routers(*b);
  EXPECT_TRUE(has_entry(r.ignored, "w_gate_aux"));
}

TEST_F(CheckpointTest, MisShapedTensorAndStrictMissingKeysAreNamedAndLeaveTheModelUntouched) {
  SafeTensorsFile full(path("model_a.safetensors"));
  SafeTensorsWriter bad, part;
  std::vector<float> small(96 * 16, 0.5f);
  for (const auto& n : full.names()) {
    const TensorView& t = full.get(n);
    if (n == "backbone.blocks.0.attn.qkv.weight") bad.add(n, DType::F32, {96, 16}, small.data(), small.size() * 4);
    else bad.add(n, t.dtype, t.shape, t.data, t.nbytes);
    if (n != "decoders.normals.conv_4.weight") part.add(n, t.dtype, t.shape, t.data, t.nbytes);
  }
  bad.write(path("bad_shape.safetensors"));
  part.write(path("part.safetensors"));
  torch::manual_seed(96);
  MultiTaskModel b(tiny_config());
  auto before = state_of(*b);
  try {
    load_checkpoint(*b, path("bad_shape.safetensors"), false);
    FAIL();
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    for (const char* w : {"bad_shape.safetensors", "backbone.blocks.0.attn.qkv.weight", "[96, 16]", "[96, 32]"})
      EXPECT_NE(msg.find(w), std::string::npos) << msg;
  }
  try {
    load_checkpoint(*b, path("part.safetensors"), true);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("decoders.normals.conv_4.weight"), std::string::npos) << e.what();
  }
  for (const auto& [k, t] : state_of(*b)) EXPECT_TRUE(torch::equal(t, before.at(k))) << k;
  // Not strict: the rest loads and the gap is reported.
  LoadReport r = load_checkpoint(*b, path("part.safetensors"), false);
  EXPECT_EQ(r.missing, std::vector<std::string>{"decoders.normals.conv_4.weight"});
}

TEST_F(CheckpointTest, ResizePosEmbedMatchesTorchInterpolate) {
  // Same ATen bilinear kernel on both sides; 1e-6 allows for a different summation order only.
  auto check = [&](const std::string& src, int h, int w, const std::string& want) {
    torch::Tensor got = resize_pos_embed(expect_.at(src), h, w);
    ASSERT_EQ(got.sizes(), expect_.at(want).sizes()) << want;
    EXPECT_LE((got - expect_.at(want)).abs().max().item<float>(), 1e-6f) << want;
  };
  check("p197", 30, 40, "p197_30x40");
  check("p197", 32, 32, "p197_32x32");
  check("p578", 30, 40, "p578_30x40");  // distilled: cls + dist + 24x24, the dist row dropped
  EXPECT_THROW(resize_pos_embed(torch::zeros({1, 7, 4}), 2, 2), ShapeError);  // 1 + 6 rows: no square grid
  EXPECT_THROW(resize_pos_embed(torch::zeros({197, 4}), 2, 2), ShapeError);
}

TEST_F(CheckpointTest, DeitWeightsNestedUnderModel) {
  torch::manual_seed(95);
  MultiTaskModel m(tiny_config());
  auto before = state_of(*m);
  LoadReport r = load_deit(*m, fixture("deit.pth"), /*split_experts=*/false);
  std::map<std::string, torch::Tensor> deit;
  for (auto& [k, t] : read_pth_tensors(fixture("deit.pth"))) deit[k] = from_view(t);
  auto now = state_of(*m);
  EXPECT_TRUE(torch::equal(now.at("backbone.cls_token"), deit.at("model.cls_token")));
  EXPECT_LE((now.at("backbone.pos_embed") - expect_.at("pos")).abs().max().item<float>(), 1e-6f);
  for (const char* k : {"patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.mlp.fc1.weight",
                        "blocks.0.mlp.fc2.bias"})
    EXPECT_TRUE(torch::equal(now.at(std::string("backbone.") + k), deit.at(std::string("model.") + k))) << k;
  for (int i = 0; i < 2; ++i)
    for (const char* n : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                          "attn.proj.bias", "norm2.weight", "norm2.bias"}) {
      const std::string k = "blocks." + std::to_string(i) + "." + n;
      EXPECT_TRUE(torch::equal(now.at("backbone." + k), deit.at("model." + k))) << k;
    }
  // The MoE block's experts and every router and head keep their initialisation (utils/helpers.py:207-316).
  for (const auto& [k, t] : before) {
    if (k.find("mlp.experts") != std::string::npos || k.find("mlp.gate") != std::string::npos ||
        k.rfind("decoders.", 0) == 0) {
      EXPECT_TRUE(torch::equal(now.at(k), t)) << k;
    }
  }
  EXPECT_TRUE(has_entry(r.ignored, "model.head.weight"));
  EXPECT_TRUE(has_entry(r.ignored, "model.norm.bias"));
  EXPECT_TRUE(has_entry(r.ignored, "model.blocks.1.mlp.fc1.weight (dense MLP of a MoE block"));
  EXPECT_TRUE(has_entry(r.remapped, "model.pos_embed -> backbone.pos_embed: grid of [1, 197, 32] resized to 2x3"));
  EXPECT_TRUE(r.unexpected.empty());
  EXPECT_TRUE(has_entry(r.missing, "backbone.blocks.1.mlp.experts.htoh4.weight"));
  EXPECT_EQ(r.loaded.size(), 4u + 8u * 2u + 4u);  // cls, pos, patch w/b; 8 per block; dense block's fc1/fc2
}

TEST_F(CheckpointTest, DeitFlatWithLinearPatchEmbedAndDistToken) {
  MultiTaskModel m(tiny_config());
  LoadReport r = load_deit(*m, fixture("deit_flat.pth"), false);
  std::map<std::string, torch::Tensor> deit;
  for (auto& [k, t] : read_pth_tensors(fixture("deit.pth"))) deit[k] = from_view(t);
  EXPECT_TRUE(torch::equal(m->backbone->patch_embed->proj->weight, deit.at("model.patch_embed.proj.weight")));
  EXPECT_LE((m->backbone->pos_embed - expect_.at("pos_flat")).abs().max().item<float>(), 1e-6f);
  EXPECT_TRUE(has_entry(r.ignored, "dist_token"));
  EXPECT_TRUE(has_entry(r.ignored, "head_dist.weight"));
  EXPECT_TRUE(has_entry(r.remapped, "linear layout reshaped to conv [32, 3, 16, 16]"));
}

// split_experts: with k = E and equal router probabilities (zero router weights) the MoE layer
// equals (hid/H) * the dense MLP: 1/E of it for E = 4 (E*hid = H), 2/E for E = 8 (every hidden unit
// held by two experts). Oracle: the dense MLP evaluated by torch in Python.
TEST_F(CheckpointTest, DeitSplitExpertsReproducesTheDenseMlp) {
  for (int E : {4, 8}) {
    MultiTaskModel m(tiny_config(GateType::multi, E, /*top_k=*/E));
    LoadReport r = load_deit(*m, fixture("deit.pth"), /*split_experts=*/true);
    EXPECT_TRUE(has_entry(r.remapped, "split into " + std::to_string(E) + " experts of 32 units"));
    EXPECT_FALSE(has_entry(r.missing, "mlp.experts"));
    auto block = m->backbone->blocks->ptr<BlockImpl>(1);
    torch::NoGradGuard ng;
    for (auto& router : block->moe_mlp->routers()) router->w_gate.zero_();
    m->eval();
    torch::Tensor y = block->moe_mlp->forward(expect_.at("x").unsqueeze(0), 0, torch::Tensor()).squeeze(0);
    torch::Tensor want = expect_.at("dense1") * (32.0 / 128.0);
    // fp32 sums of 128 products in a different order: 1e-5 absolute on outputs of size ~1.
    EXPECT_LE((y - want).abs().max().item<float>(), 1e-5f) << "E=" << E;
  }
}

// Task-conditioned router: the pretrained d-row w_gate gets zero rows for the task embedding.
TEST_F(CheckpointTest, TaskCondRouterGetsZeroRows) {
  MultiTaskModel m(tiny_config(GateType::task_cond));
  torch::Tensor g = torch::randn({32, 4});
  std::map<std::string, torch::Tensor> src = {{"module.blocks.1.mlp.gate.w_gate", g}};
  LoadReport r = load_state(*m, m->config(), src, false, FilterOptions{}, "synthetic");
  torch::Tensor w = state_of(*m).at("backbone.blocks.1.mlp.gate.w_gate");
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{40, 4}));
  EXPECT_TRUE(torch::equal(w.narrow(0, 0, 32), g));
  EXPECT_TRUE(torch::equal(w.narrow(0, 32, 8), torch::zeros({8, 4})));
  EXPECT_TRUE(has_entry(r.remapped, "8 zero rows appended"));
  EXPECT_EQ(r.loaded, std::vector<std::string>{"backbone.blocks.1.mlp.gate.w_gate"});
}

}  // namespace
}  // namespace m3vit
