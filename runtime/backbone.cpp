// Backbone forward (runtime/backbone.h).
#include "runtime/backbone.h"

#include <algorithm>
#include <stdexcept>
#include <initializer_list>
#include <utility>
#include <chrono>

#include "runtime/dense_store.h"
#include "runtime/expert_store.h"
#include "runtime/model_file.h"
#include "runtime/ops/layernorm.h"
#include "runtime/task_switch.h"

namespace m3vit::rt {

namespace {
using clock_type = std::chrono::steady_clock;
double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}
}  // namespace

Backbone::Backbone(DnnlContext& ctx, const ModelFile& f, Precision prec)
    : cfg_(f.config()), n_(cfg_.num_tokens()), d_(cfg_.embed_dim) {
  const ModelConfig& c = cfg_;
  const int hw = c.num_patches(), pp = c.in_chans * c.patch * c.patch, mh = c.mlp_hidden();
  // int8 mode: the patch embedding stays fp32 (its input is the image, 0.4% of the multiply-adds), and
  // the attention core quantises q, k and v as it goes (runtime/ops/attention.h: no calibrated steps,
  // they have no weights to quantise ahead of time; as in bf16 mode where the s8 kernels cannot run).
  const Precision attn_prec = prec;
  patch_ = MatmulPlan(ctx, pp, d_, true, hw, Epilogue::none, prec == Precision::int8 ? Precision::fp32 : prec);
  qkv_plan_ = MatmulPlan(ctx, d_, 3 * d_, c.qkv_bias, n_, Epilogue::none, prec);
  proj_ = MatmulPlan(ctx, d_, d_, true, n_, Epilogue::residual, prec);
  fc1_ = MatmulPlan(ctx, d_, mh, true, n_, Epilogue::gelu, prec);
  fc2_ = MatmulPlan(ctx, mh, d_, true, n_, Epilogue::residual, prec);
  attn_ = AttentionPlan(n_, c.num_heads, c.head_dim(), attn_prec);
  if (!c.moe_blocks.empty()) moe_ = MoeLayer(ctx, n_, d_, c.moe_hidden(), c.moe_experts, c.moe_top_k, prec);

  // Patch embedding: conv weight [d, 3, p, p] flattened = a Linear [d, 3·p·p] over patch vectors
  // ordered (channel, row, column), which is how patchify() lays them out.
  patch_w_ = patch_.pack(f.data("backbone.patch_embed.proj.weight"), f.data("backbone.patch_embed.proj.bias"));
  const float* cls = f.data("backbone.cls_token");
  const float* pos = f.data("backbone.pos_embed");
  cls_.assign(cls, cls + d_);
  pos_.assign(pos, pos + static_cast<size_t>(n_) * d_);
  int moe_layer = 0;
  for (int i = 0; i < c.depth; ++i) {
    Block b;
    auto vec = [&](const std::string& k) {
      const float* p = f.data(block_key(i, k));
      return std::vector<float>(p, p + d_);
    };
    b.n1w = vec("norm1.weight");
    b.n1b = vec("norm1.bias");
    b.n2w = vec("norm2.weight");
    b.n2b = vec("norm2.bias");
    if (c.is_moe_block(i)) b.moe_layer = moe_layer++;
    blocks_.push_back(std::move(b));
  }
  x_.assign(static_cast<size_t>(n_) * d_, 0.f);
  const size_t nd = static_cast<size_t>(n_) * d_;
  xn_ = layout_.add(nd);
  // The buffers of one step (embedding, attention, dense MLP, MoE) all start after xn.
  const size_t step = layout_.floats;
  auto region = [&](std::initializer_list<std::pair<size_t*, size_t>> bufs) {
    layout_.floats = step;
    for (const auto& [offset, floats] : bufs) *offset = layout_.add(floats);
    return layout_.floats;
  };
  layout_.floats = std::max({region({{&patches_, static_cast<size_t>(hw) * pp}}),
                             region({{&qkv_, 3 * nd}, {&att_, nd}, {&attn_work_, attn_.work_floats()}}),
                             region({{&hid_, static_cast<size_t>(n_) * mh}})});
}

size_t Backbone::bytes() const {
  size_t n = patch_w_.bytes() + (cls_.size() + pos_.size()) * 4;
  for (const auto& b : blocks_) {
    n += (b.n1w.size() * 4) * 4;
  }
  return n;
}

void Backbone::patchify(const float* image, float* patches) const {
  // image [C, H, W] -> patches [gh·gw, C·p·p]; patch (gy, gx) is token 1 + gy·gw + gx (row-major grid).
  const int C = cfg_.in_chans, p = cfg_.patch, gh = cfg_.grid_h(), gw = cfg_.grid_w(), W = cfg_.img_w, H = cfg_.img_h;
  const int pp = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
  for (int gy = 0; gy < gh; ++gy)
    for (int gx = 0; gx < gw; ++gx) {
      float* dst = patches + static_cast<int64_t>(gy * gw + gx) * pp;
      for (int ch = 0; ch < C; ++ch)
        for (int ky = 0; ky < p; ++ky) {
          const float* src = image + (static_cast<int64_t>(ch) * H + gy * p + ky) * W + gx * p;
          std::copy(src, src + p, dst + (ch * p + ky) * p);
        }
    }
}

const float* Backbone::forward(const ImagePass& pass) {
  const ModelConfig& c = cfg_;
  RunTimes& times = pass.times;
  RunTrace* trace = pass.trace;
  if (pass.routing) pass.routing->clear();
  DenseStore& dense = pass.dense;
  float* work = pass.work;
  float* xn = work + xn_;
  float* qkv = work + qkv_;
  float* att = work + att_;
  float* hid = work + hid_;
  // The first MoE block: where a resumed pass starts and a saving pass saves (its MLP is the first
  // thing that depends on the task's routers).
  int first_moe = -1;
  for (int i = 0; i < c.depth && first_moe < 0; ++i)
    if (blocks_[i].moe_layer >= 0) first_moe = i;
  if (pass.prefix != Prefix::none && (first_moe < 0 || !pass.prefix_tokens))
    throw std::logic_error("Backbone::forward: a shared prefix needs a MoE block and a token buffer");
  int start = 0;
  auto t0 = clock_type::now();
  if (pass.prefix == Prefix::resume) {
    x_ = *pass.prefix_tokens;
    start = first_moe;
  } else {
    patchify(pass.image, work + patches_);
    patch_.run(work + patches_, patch_w_, x_.data() + d_);  // tokens 1..N-1
    std::copy(cls_.begin(), cls_.end(), x_.begin());       // token 0: cls
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < static_cast<int64_t>(x_.size()); ++i) x_[i] += pos_[i];
  }
  times.embed += ms_since(t0);

  for (int i = start; i < c.depth; ++i) {
    const Block& b = blocks_[i];
    // A resumed pass starts after the first MoE block's attention: it is in the saved tokens.
    if (!(pass.prefix == Prefix::resume && i == start)) {
      t0 = clock_type::now();
      // x += proj(attention(LN1(x))). Each dense layer's weights come from the store (streamed: waits
      // for the load) and are released right after their matmul (streamed: frees the buffer).
      layer_norm(x_.data(), xn, n_, d_, b.n1w.data(), b.n1b.data(), c.ln_eps);
      qkv_plan_.run(xn, dense.acquire(i, DenseStore::kQkv), qkv);  // [N, 3d]
      dense.release(i, DenseStore::kQkv);
      attn_.run(qkv, att, work + attn_work_);                         // [N, d]
      proj_.run(att, dense.acquire(i, DenseStore::kProj), x_.data());  // residual add fused
      dense.release(i, DenseStore::kProj);
      times.attention += ms_since(t0);
      if (pass.prefix == Prefix::save && i == first_moe) *pass.prefix_tokens = x_;
    }

    t0 = clock_type::now();
    layer_norm(x_.data(), xn, n_, d_, b.n2w.data(), b.n2b.data(), c.ln_eps);
    if (b.moe_layer < 0) {
      fc1_.run(xn, dense.acquire(i, DenseStore::kFc1), hid);  // [N, 4d], GELU fused
      dense.release(i, DenseStore::kFc1);
      fc2_.run(hid, dense.acquire(i, DenseStore::kFc2), x_.data());  // residual add fused
      dense.release(i, DenseStore::kFc2);
      times.mlp += ms_since(t0);
    } else {
      if (trace) trace->moe_in.emplace_back(xn, xn + static_cast<size_t>(n_) * d_);
      moe_.forward(xn, x_.data(), pass.tasks.router(pass.task, b.moe_layer), pass.experts, b.moe_layer);
      times.moe += ms_since(t0);
      times.experts_computed += moe_.experts_used();
      if (pass.routing) pass.routing->insert(pass.routing->end(), moe_.topk_idx().begin(), moe_.topk_idx().end());
      if (trace) {
        trace->topk_idx.push_back(moe_.topk_idx());
        trace->topk_w.push_back(moe_.topk_w());
        trace->queue_len.push_back(moe_.queue_lengths());
      }
    }
    if (trace) trace->block_out.push_back(x_);
  }
  return x_.data();
}

}  // namespace m3vit::rt
