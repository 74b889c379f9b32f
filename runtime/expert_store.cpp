// Resident and streamed expert weights (runtime/expert_store.h).
#include "runtime/expert_store.h"

#include <string>

#include "common/errors.h"
#include "runtime/int8_format.h"
#include "runtime/model_file.h"

namespace m3vit::rt {

size_t ExpertStore::slot_bytes(const MatmulBank& fc1, const MatmulBank& fc2) {
  // int8: each matmul's scales (out values and the input step) follow its bias.
  const bool q = fc1.precision() == Precision::int8;
  return align64(fc1.weights_desc().get_size()) + align64(fc1.out() * sizeof(float)) +
         (q ? align64((fc1.out() + 1) * sizeof(float)) : 0) + align64(fc2.weights_desc().get_size()) +
         align64(fc2.out() * sizeof(float)) + (q ? align64((fc2.out() + 1) * sizeof(float)) : 0);
}

size_t ExpertStore::staging_bytes(const MatmulBank& fc1) {
  return static_cast<size_t>(fc1.in()) * fc1.out() * file_weight_bytes(fc1.precision());
}

ExpertStore::ExpertStore(DnnlContext& ctx, const ModelFile& file, Residency residency, const MatmulBank& fc1,
                         const MatmulBank& fc2, WeightStream* ring)
    : residency_(residency), ring_(ring), eng_(ctx.eng) {
  const ModelConfig& c = file.config();
  d_ = c.embed_dim;
  hid_ = c.moe_hidden();
  E_ = c.moe_experts;
  std::vector<int> moe_blocks;
  for (int i = 0; i < c.depth; ++i)
    if (c.is_moe_block(i)) moe_blocks.push_back(i);
  if (moe_blocks.empty()) return;
  const size_t w1 = static_cast<size_t>(hid_) * d_;

  if (residency == Residency::resident) {
    fc1_.resize(moe_blocks.size());
    fc2_.resize(moe_blocks.size());
    resident_.resize(moe_blocks.size());
    for (size_t l = 0; l < moe_blocks.size(); ++l) {
      const int b = moe_blocks[l];
      const std::string k1 = block_key(b, "mlp.experts.htoh4."), k2 = block_key(b, "mlp.experts.h4toh.");
      const float* B1 = file.data(k1 + "bias");  // [E, hid]
      const float* B2 = file.data(k2 + "bias");  // [E, d]
      // The stacks W1 [E, hid, d] and W2 [E, d, hid] are mapped, checked and released one expert at
      // a time: the file pages held while packing are one expert's, not the layer's (151 MB of a
      // pascal layer at E = 128), which would otherwise sit on top of the packed copies.
      if (fc1.precision() == Precision::int8) {
        // s8 stacks with per-expert scales (runtime/int8_format.h); a quarter of the fp32 bytes.
        const std::string n1 = k1 + "weight", n2 = k2 + "weight";
        const float* S1 = file.data(weight_scale_key(n1));  // [E, hid]
        const float* S2 = file.data(weight_scale_key(n2));  // [E, d]
        const float* X1 = file.data(input_scale_key(n1));   // [E]
        const float* X2 = file.data(input_scale_key(n2));   // [E]
        for (int e = 0; e < E_; ++e) {
          const int64_t at = e * static_cast<int64_t>(w1);
          fc1_[l].push_back(fc1.pack_s8(file.data_s8(n1, at, w1), S1 + static_cast<size_t>(e) * hid_,
                                        B1 + static_cast<size_t>(e) * hid_, X1[e]));
          fc2_[l].push_back(fc2.pack_s8(file.data_s8(n2, at, w1), S2 + static_cast<size_t>(e) * d_,
                                        B2 + static_cast<size_t>(e) * d_, X2[e]));
          file.release(n1, e * w1, (e + 1) * w1);
          file.release(n2, e * w1, (e + 1) * w1);
        }
      }
      for (int e = 0; e < E_ && fc1.precision() != Precision::int8; ++e) {
        const float* W1 = file.data(k1 + "weight", e * static_cast<int64_t>(w1), static_cast<int64_t>(w1));
        const float* W2 = file.data(k2 + "weight", e * static_cast<int64_t>(w1), static_cast<int64_t>(w1));
        fc1_[l].push_back(fc1.pack(W1, B1 + static_cast<size_t>(e) * hid_));
        fc2_[l].push_back(fc2.pack(W2, B2 + static_cast<size_t>(e) * d_));
        if (ctx.calibration) {  // m3vit calibrate: each expert's inputs observed on their own
          fc1_[l].back().observe = ctx.calibration->slot(k1 + "weight", e, E_);
          fc2_[l].back().observe = ctx.calibration->slot(k2 + "weight", e, E_);
        }
        file.release(k1 + "weight", e * w1 * 4, (e + 1) * w1 * 4);
        file.release(k2 + "weight", e * w1 * 4, (e + 1) * w1 * 4);
      }
      for (const char* n : {"weight", "bias"}) {
        file.release(k1 + n);
        file.release(k2 + n);
      }
      for (int e = 0; e < E_; ++e) resident_[l].push_back({&fc1_[l][e], &fc2_[l][e]});
    }
    return;
  }

  // Streamed: check every expert tensor once (by reading, not mapping), remember where they are.
  if (!ring_) throw Error("expert streaming needs a weight ring");
  for (int b : moe_blocks) {
    const std::string k1 = block_key(b, "mlp.experts.htoh4."), k2 = block_key(b, "mlp.experts.h4toh.");
    for (const std::string& k : {k1 + "weight", k1 + "bias", k2 + "weight", k2 + "bias"}) file.check_finite_by_reading(k);
    src_.push_back({file.file_offset(k1 + "weight"), file.file_offset(k1 + "bias"), file.file_offset(k2 + "weight"),
                    file.file_offset(k2 + "bias")});
    if (file.int8()) {
      LayerSource& ls = src_.back();
      ls.s1 = file.file_offset(weight_scale_key(k1 + "weight"));
      ls.x1 = file.file_offset(input_scale_key(k1 + "weight"));
      ls.s2 = file.file_offset(weight_scale_key(k2 + "weight"));
      ls.x2 = file.file_offset(input_scale_key(k2 + "weight"));
    }
  }
  int8_ = fc1.precision() == Precision::int8;
  if (ring_->slot_bytes() < slot_bytes(fc1, fc2) || ring_->staging_bytes() < staging_bytes(fc1))
    throw Error("weight ring slots are smaller than one expert");
  using dnnl::memory;
  packed1_ = fc1.weights_desc();
  packed2_ = fc2.weights_desc();
  off_b1_ = align64(packed1_.get_size());
  off_s1_ = off_b1_ + align64(hid_ * sizeof(float));
  off_w2_ = off_s1_ + (int8_ ? align64((hid_ + 1) * sizeof(float)) : 0);
  off_b2_ = off_w2_ + align64(packed2_.get_size());
  off_s2_ = off_b2_ + align64(d_ * sizeof(float));
  // Views of every slot, made once: an acquired expert is a pointer to its slot's view.
  slot_fc1_.resize(ring_->slots());
  slot_fc2_.resize(ring_->slots());
  for (int s = 0; s < ring_->slots(); ++s) {
    uint8_t* base = ring_->slot(s);
    slot_fc1_[s].weights = memory(packed1_, eng_, base);
    slot_fc1_[s].bias = memory({{1, hid_}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + off_b1_);
    slot_fc2_[s].weights = memory(packed2_, eng_, base + off_w2_);
    slot_fc2_[s].bias = memory({{1, d_}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + off_b2_);
    if (int8_) {
      slot_fc1_[s].scale = memory({{1, hid_}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + off_s1_);
      slot_fc1_[s].in_step = reinterpret_cast<const float*>(base + off_s1_) + hid_;
      slot_fc2_[s].scale = memory({{1, d_}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + off_s2_);
      slot_fc2_[s].in_step = reinterpret_cast<const float*>(base + off_s2_) + d_;
    }
  }
  for (int s = 0; s < ring_->slots(); ++s) slot_view_.push_back({&slot_fc1_[s], &slot_fc2_[s]});
  // The file's [out, in] rows are format "ba" of the matmul's [in, out] operand.
  // (int8: the s8 rows, reordered into the layout that carries oneDNN's s8-input compensation.)
  const auto wt = int8_ ? memory::data_type::s8 : memory::data_type::f32;
  plain1_ = memory::desc({d_, hid_}, wt, memory::format_tag::ba);
  plain2_ = memory::desc({hid_, d_}, wt, memory::format_tag::ba);
  pack1_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain1_, eng_, packed1_));
  pack2_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain2_, eng_, packed2_));
}

size_t ExpertStore::resident_bytes() const {
  size_t n = 0;
  for (size_t l = 0; l < fc1_.size(); ++l)
    for (size_t e = 0; e < fc1_[l].size(); ++e) n += fc1_[l][e].bytes() + fc2_[l][e].bytes();
  return n;
}

void ExpertStore::begin_layer(int moe_layer) {
  layer_ = moe_layer;
  // Resident experts post nothing: what follows them in the forward pass may be posted now.
  if (residency_ == Residency::resident && after_layer_) after_layer_(moe_layer);
}

void ExpertStore::schedule(const std::vector<int32_t>& active) {
  active_ = &active;
  if (residency_ == Residency::resident) return;
  const int layer = layer_;
  for (size_t i = 0; i < active.size(); ++i) {
    const int e = active[i];
    const int t = ring_->post([this, layer, e](uint8_t* slot, dnnl::stream& strm) { return load(layer, e, slot, strm); });
    if (i == 0) base_ = t;
  }
  if (after_layer_) after_layer_(layer);
}

const ExpertWeights& ExpertStore::acquire(int i) {
  if (residency_ == Residency::resident) return resident_[layer_][(*active_)[i]];
  return slot_view_[ring_->acquire(base_ + i)];
}

void ExpertStore::release(int i) {
  if (residency_ == Residency::stream) ring_->release(base_ + i);
}

void ExpertStore::abort() {
  if (residency_ == Residency::stream) ring_->abort();
}

int64_t ExpertStore::load(int layer, int expert, uint8_t* slot, dnnl::stream& strm) const {
  const LayerSource& src = src_[layer];
  const size_t w = static_cast<size_t>(hid_) * d_;
  const std::string what = "expert " + std::to_string(expert) + " of MoE layer " + std::to_string(layer);
  using dnnl::memory;
  float* staging = ring_->staging();
  const size_t wb = int8_ ? 1 : 4;  // bytes per weight in the file
  // int8: s_w[n] of the expert's rows and its input step s_x into the slot, then s_x·s_w[n].
  auto scales = [&](size_t at_scale, size_t at_step, int out, size_t off) {
    float* s = reinterpret_cast<float*>(slot + off);
    ring_->read(s, out * 4, at_scale + static_cast<size_t>(expert) * out * 4, what);
    ring_->read(s + out, 4, at_step + static_cast<size_t>(expert) * 4, what);
    for (int n = 0; n < out; ++n) s[n] *= s[out];
  };
  // int8: the bias at off_b in units of the s32 sums (runtime/ops/matmul.h), once its scales are in.
  auto bias_units = [&](size_t off_b, size_t off_s, int out) {
    if (int8_) bias_in_sum_units(reinterpret_cast<float*>(slot + off_b), reinterpret_cast<const float*>(slot + off_s), out);
  };
  // htoh4[e] [hid, d] -> packed fc1; h4toh[e] [d, hid] -> packed fc2; biases as they are.
  ring_->read(staging, w * wb, src.w1 + expert * w * wb, what);
  memory plain1(plain1_, eng_, staging), dst1(packed1_, eng_, slot);
  pack1_.execute(strm, plain1, dst1);
  strm.wait();
  ring_->read(slot + off_b1_, hid_ * 4, src.b1 + static_cast<size_t>(expert) * hid_ * 4, what);
  if (int8_) scales(src.s1, src.x1, hid_, off_s1_);
  bias_units(off_b1_, off_s1_, hid_);
  ring_->read(staging, w * wb, src.w2 + expert * w * wb, what);
  memory plain2(plain2_, eng_, staging), dst2(packed2_, eng_, slot + off_w2_);
  pack2_.execute(strm, plain2, dst2);
  strm.wait();
  ring_->read(slot + off_b2_, d_ * 4, src.b2 + static_cast<size_t>(expert) * d_ * 4, what);
  if (int8_) scales(src.s2, src.x2, d_, off_s2_);
  bias_units(off_b2_, off_s2_, d_);
  return static_cast<int64_t>(2 * w * wb + (hid_ + d_) * 4 + (int8_ ? (hid_ + d_ + 2) * 4 : 0));
}

}  // namespace m3vit::rt
