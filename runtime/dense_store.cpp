// Resident and streamed dense layers (runtime/dense_store.h).
#include "runtime/dense_store.h"

#include <algorithm>
#include <string>

#include "common/errors.h"
#include "runtime/int8_format.h"
#include "runtime/model_file.h"

namespace m3vit::rt {

namespace {
using dnnl::memory;
const char* kKey[DenseStore::kKinds] = {"attn.qkv.", "attn.proj.", "mlp.fc1.", "mlp.fc2."};
const char* kName[DenseStore::kKinds] = {"qkv", "proj", "fc1", "fc2"};
}  // namespace

size_t DenseStore::slot_bytes(const Plans& p) {
  size_t n = 0;
  for (int k = 0; k < kKinds; ++k) {
    size_t b = align64(p[k]->weights_desc().get_size()) + p[k]->out() * 4;
    if (p[k]->precision() == Precision::int8) b = align64(b) + (p[k]->out() + 1) * 4;  // the scales
    n = std::max(n, b);
  }
  return n;
}

size_t DenseStore::staging_bytes(const ModelConfig& c, Precision prec) {
  const size_t d = c.embed_dim, mh = c.mlp_hidden();
  return std::max(3 * d * d, mh * d) * file_weight_bytes(prec);
}

DenseStore::DenseStore(DnnlContext& ctx, const ModelFile& f, Residency residency, const Plans& plans,
                       WeightStream* ring)
    : residency_(residency), ring_(ring), eng_(ctx.eng) {
  const ModelConfig& c = f.config();
  for (int k = 0; k < kKinds; ++k) has_bias_[k] = k != kQkv || c.qkv_bias;
  // A block's dense layers: attention always, the MLP only in a block without MoE.
  auto has = [&](int block, int k) { return !((k == kFc1 || k == kFc2) && c.is_moe_block(block)); };

  if (residency == Residency::resident) {
    packed_.resize(c.depth);
    for (int i = 0; i < c.depth; ++i)
      for (int k = 0; k < kKinds; ++k) {
        if (!has(i, k)) continue;
        const std::string w = block_key(i, std::string(kKey[k]) + "weight");
        const float* b = has_bias_[k] ? f.data(block_key(i, std::string(kKey[k]) + "bias")) : nullptr;
        if (plans[k]->precision() == Precision::int8) {
          packed_[i][k] = plans[k]->pack_s8(f.data_s8(w), f.data(weight_scale_key(w)), b, f.data(input_scale_key(w))[0]);
        } else {
          packed_[i][k] = plans[k]->pack(f.data(w), b);
          if (ctx.calibration) packed_[i][k].observe = ctx.calibration->slot(w, 0, 1);
        }
        f.release(w);
      }
    return;
  }

  if (!ring_) throw Error("dense layer streaming needs a weight ring");
  if (ring->slot_bytes() < slot_bytes(plans) || ring->staging_bytes() < staging_bytes(c, plans[kQkv]->precision()))
    throw Error("weight ring slots are smaller than the largest dense layer");
  int8_ = plans[kQkv]->precision() == Precision::int8;
  for (int k = 0; k < kKinds; ++k) {
    in_[k] = plans[k]->in();
    out_[k] = plans[k]->out();
    packed_desc_[k] = plans[k]->weights_desc();
    bias_off_[k] = align64(packed_desc_[k].get_size());
    scale_off_[k] = align64(bias_off_[k] + out_[k] * 4);
    // The file's [out, in] rows are format "ba" of the matmul's [in, out] operand (s8 in int8 mode).
    const memory::desc plain({in_[k], out_[k]}, int8_ ? memory::data_type::s8 : memory::data_type::f32,
                             memory::format_tag::ba);
    pack_[k] = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain, eng_, packed_desc_[k]));
  }

  // Where everything is; every streamed tensor checked for NaN/Inf once, by reading.
  auto where = [&](const std::string& key) {
    f.check_finite_by_reading(key);
    return f.file_offset(key);
  };
  src_.resize(c.depth);
  std::vector<Item> seg;
  for (int i = 0; i < c.depth; ++i) {
    for (int k = 0; k < kKinds; ++k) {
      if (!has(i, k)) continue;
      const std::string wk = block_key(i, std::string(kKey[k]) + "weight");
      src_[i].w[k] = where(wk);
      if (has_bias_[k]) src_[i].b[k] = where(block_key(i, std::string(kKey[k]) + "bias"));
      if (int8_) {  // the scales were checked (finite, > 0) when the file was opened
        src_[i].s[k] = f.file_offset(weight_scale_key(wk));
        src_[i].x[k] = f.file_offset(input_scale_key(wk));
      }
    }
    seg.push_back({i, kQkv});
    seg.push_back({i, kProj});
    if (c.is_moe_block(i)) {
      segments_.push_back(seg);  // ends at the MoE block's attention
      seg.clear();
    } else {
      seg.push_back({i, kFc1});
      seg.push_back({i, kFc2});
    }
  }
  segments_.push_back(seg);  // the last one; the head follows it

  // Views of every slot, made once.
  view_.resize(ring->slots());
  for (int s = 0; s < ring->slots(); ++s) {
    uint8_t* base = ring->slot(s);
    for (int k = 0; k < kKinds; ++k) {
      view_[s][k].weights = memory(packed_desc_[k], eng_, base);
      if (has_bias_[k])
        view_[s][k].bias = memory({{1, out_[k]}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + bias_off_[k]);
      if (int8_) {
        view_[s][k].scale = memory({{1, out_[k]}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + scale_off_[k]);
        view_[s][k].in_step = reinterpret_cast<const float*>(base + scale_off_[k]) + out_[k];
      }
    }
  }
  ticket_.assign(c.depth, {});
}

size_t DenseStore::resident_bytes() const {
  size_t n = 0;
  for (const auto& block : packed_)
    for (const PackedWeights& w : block) n += w.bytes();
  return n;
}

void DenseStore::post(size_t segment) {
  for (const Item& it : segments_[segment])
    ticket_[it.block][it.kind] =
        ring_->post([this, it](uint8_t* slot, dnnl::stream& strm) { return load(it.block, it.kind, slot, strm); });
  if (segment + 1 == segments_.size() && after_last_) after_last_();
}

void DenseStore::begin_image(bool skip_first_segment) {
  if (residency_ == Residency::resident) {
    if (after_last_) after_last_();  // nothing to load: the head's loads may go first
  } else if (!skip_first_segment) {
    post(0);
  }
}

void DenseStore::after_moe_layer(int layer) {
  const size_t next = static_cast<size_t>(layer) + 1;
  if (residency_ == Residency::stream && next < segments_.size()) post(next);
}

const PackedWeights& DenseStore::acquire(int block, Kind kind) {
  if (residency_ == Residency::resident) return packed_[block][kind];
  return view_[ring_->acquire(ticket_[block][kind])][kind];
}

void DenseStore::release(int block, Kind kind) {
  if (residency_ == Residency::stream) ring_->release(ticket_[block][kind]);
}

int64_t DenseStore::load(int block, int kind, uint8_t* slot, dnnl::stream& strm) const {
  const std::string what = std::string("the ") + kName[kind] + " weights of block " + std::to_string(block);
  const size_t n = static_cast<size_t>(in_[kind]) * out_[kind];
  float* staging = ring_->staging();
  const size_t wb = int8_ ? 1 : 4;
  ring_->read(staging, n * wb, src_[block].w[kind], what);
  memory plain({{in_[kind], out_[kind]}, int8_ ? memory::data_type::s8 : memory::data_type::f32,
                memory::format_tag::ba},
               eng_, staging);
  memory dst(packed_desc_[kind], eng_, slot);
  pack_[kind].execute(strm, plain, dst);
  strm.wait();
  int64_t bytes = static_cast<int64_t>(n * wb);
  if (int8_) {  // s_w[n] and s_x, then s_x·s_w[n]
    float* s = reinterpret_cast<float*>(slot + scale_off_[kind]);
    ring_->read(s, out_[kind] * 4, src_[block].s[kind], what);
    ring_->read(s + out_[kind], 4, src_[block].x[kind], what);
    for (int o = 0; o < out_[kind]; ++o) s[o] *= s[out_[kind]];
    bytes += (out_[kind] + 1) * 4;
  }
  if (has_bias_[kind]) {
    ring_->read(slot + bias_off_[kind], out_[kind] * 4, src_[block].b[kind], what);
    if (int8_)
      bias_in_sum_units(reinterpret_cast<float*>(slot + bias_off_[kind]),
                        reinterpret_cast<const float*>(slot + scale_off_[kind]), out_[kind]);
    bytes += out_[kind] * 4;
  }
  return bytes;
}

}  // namespace m3vit::rt
