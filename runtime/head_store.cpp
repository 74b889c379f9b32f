// Resident and streamed head convs (runtime/head_store.h).
#include "runtime/head_store.h"

#include <algorithm>

#include "common/errors.h"
#include "runtime/int8_format.h"
#include "runtime/model_file.h"

namespace m3vit::rt {

namespace {
using dnnl::memory;
std::string conv_key(int j) { return "conv_" + std::to_string(j) + "."; }
std::string bn_key(int j) { return "syncbn_fc_" + std::to_string(j) + "."; }
}  // namespace

size_t HeadStore::slot_bytes(const Plans& p) {
  size_t n = 0;
  for (int j = 0; j < 4; ++j) {
    size_t b = align64(p[j]->weights_desc().get_size()) + p[j]->cout() * 4;
    if (p[j]->precision() == Precision::int8) b = align64(b) + (p[j]->cout() + 1) * 4;  // the scales
    n = std::max(n, b);
  }
  return n;
}

size_t HeadStore::staging_bytes(const ModelConfig& c, Precision prec) {
  const size_t d = c.embed_dim, ch = c.head_channels;
  return std::max(ch * d * 9, ch * ch * 9) * file_weight_bytes(prec);
}

HeadStore::HeadStore(DnnlContext& ctx, const ModelFile& f, Residency residency, const Plans& plans, WeightStream* ring)
    : residency_(residency), ring_(ring), eng_(ctx.eng) {
  const ModelConfig& c = f.config();
  d_ = c.embed_dim;
  c_ = c.head_channels;

  if (residency == Residency::resident) {
    for (const TaskSpec& t : c.tasks) {
      auto key = [&](const std::string& rest) { return head_key(t.name, rest); };
      std::array<PackedConv, 4>& convs = packed_.emplace_back();
      for (int j = 0; j < 4; ++j) {
        const std::string cj = conv_key(j), bj = bn_key(j);
        const int cin = j == 0 ? d_ : c_;
        const std::string wk = key(cj + "weight");
        if (plans[j]->precision() == Precision::int8) {
          // BatchNorm folded into the per-channel scales and the bias; the s8 weights stay as stored.
          std::vector<float> sc(f.data(weight_scale_key(wk)), f.data(weight_scale_key(wk)) + c_);
          std::vector<float> bf(f.data(key(cj + "bias")), f.data(key(cj + "bias")) + c_);
          fold_batchnorm(sc.data(), 1, bf.data(), c_, f.data(key(bj + "weight")), f.data(key(bj + "bias")),
                         f.data(key(bj + "running_mean")), f.data(key(bj + "running_var")), kBnEps);
          convs[j] = plans[j]->pack_s8(f.data_s8(wk), sc.data(), bf.data(), f.data(input_scale_key(wk))[0]);
          f.release(wk);
          continue;
        }
        const float* w = f.data(wk);
        const float* b = f.data(key(cj + "bias"));
        std::vector<float> wf(w, w + static_cast<size_t>(c_) * cin * 9), bf(b, b + c_);
        fold_batchnorm(wf, bf, c_, f.data(key(bj + "weight")), f.data(key(bj + "bias")),
                       f.data(key(bj + "running_mean")), f.data(key(bj + "running_var")), kBnEps);
        convs[j] = plans[j]->pack(wf.data(), bf.data());
        if (ctx.calibration) convs[j].observe = ctx.calibration->slot(wk, 0, 1);
        f.release(key(cj + "weight"));
      }
    }
    return;
  }

  if (!ring_) throw Error("head conv streaming needs a weight ring");
  if (ring->slot_bytes() < slot_bytes(plans) || ring->staging_bytes() < staging_bytes(c, plans[0]->precision()))
    throw Error("weight ring slots are smaller than the largest head conv");
  int8_ = plans[0]->precision() == Precision::int8;
  for (int j = 0; j < 4; ++j) {
    plans_[j] = plans[j];
    packed_desc_[j] = plans[j]->weights_desc();
    bias_off_[j] = align64(packed_desc_[j].get_size());
    scale_off_[j] = align64(bias_off_[j] + c_ * 4);
  }
  // Where everything is; every streamed tensor checked for NaN/Inf once, by reading.
  auto where = [&](const std::string& key) {
    f.check_finite_by_reading(key);
    return f.file_offset(key);
  };
  for (const TaskSpec& t : c.tasks) {
    Source h;
    for (int j = 0; j < 4; ++j) {
      const std::string cj = conv_key(j), bj = bn_key(j);
      h.w[j] = where(head_key(t.name, cj + "weight"));
      h.b[j] = where(head_key(t.name, cj + "bias"));
      h.gamma[j] = where(head_key(t.name, bj + "weight"));
      h.beta[j] = where(head_key(t.name, bj + "bias"));
      h.mean[j] = where(head_key(t.name, bj + "running_mean"));
      h.var[j] = where(head_key(t.name, bj + "running_var"));
      if (int8_) {
        h.s[j] = f.file_offset(weight_scale_key(head_key(t.name, cj + "weight")));
        h.x[j] = f.file_offset(input_scale_key(head_key(t.name, cj + "weight")));
      }
    }
    src_.push_back(h);
    task_names_.push_back(t.name);
  }
  // Views of every slot, made once.
  view_.resize(ring->slots());
  for (int s = 0; s < ring->slots(); ++s) {
    uint8_t* base = ring->slot(s);
    for (int j = 0; j < 4; ++j) {
      view_[s][j].weights = memory(packed_desc_[j], eng_, base);
      if (!int8_) {
        view_[s][j].bias = memory({{c_}, memory::data_type::f32, memory::format_tag::a}, eng_, base + bias_off_[j]);
        continue;
      }
      // int8 plans take the bias and the scales as [1, c, 1, 1] post-op operands (runtime/ops/conv.cpp).
      view_[s][j].bias = memory({{1, c_, 1, 1}, memory::data_type::f32, memory::format_tag::nchw}, eng_, base + bias_off_[j]);
      view_[s][j].scale = memory({{1, c_, 1, 1}, memory::data_type::f32, memory::format_tag::nchw}, eng_, base + scale_off_[j]);
      view_[s][j].in_step = reinterpret_cast<const float*>(base + scale_off_[j]) + c_;
    }
  }
}

size_t HeadStore::resident_bytes() const {
  size_t n = 0;
  for (const auto& convs : packed_)
    for (const PackedConv& w : convs) n += w.bytes();
  return n;
}

void HeadStore::begin_image(int task) { task_ = task; }

void HeadStore::post() {
  if (residency_ == Residency::resident) return;
  const int task = task_;
  for (int j = 0; j < 4; ++j)
    ticket_[j] = ring_->post([this, task, j](uint8_t* slot, dnnl::stream& strm) { return load(task, j, slot, strm); });
}

const PackedConv& HeadStore::acquire(int j) {
  if (residency_ == Residency::resident) return packed_[task_][j];
  return view_[ring_->acquire(ticket_[j])][j];
}

void HeadStore::release(int j) {
  if (residency_ == Residency::stream) ring_->release(ticket_[j]);
}

int64_t HeadStore::load(int task, int j, uint8_t* slot, dnnl::stream& strm) const {
  const Source& h = src_[task];
  const std::string what = "conv_" + std::to_string(j) + " of the " + task_names_[task] + " head";
  const int cin = j == 0 ? d_ : c_;
  const size_t per_out = static_cast<size_t>(cin) * 9;
  float* staging = ring_->staging();
  const size_t wb = int8_ ? 1 : 4;
  ring_->read(staging, c_ * per_out * wb, h.w[j], what);
  float* bias = reinterpret_cast<float*>(slot + bias_off_[j]);
  ring_->read(bias, c_ * 4, h.b[j], what);
  std::vector<float> bn(4 * static_cast<size_t>(c_));  // γ, β, mean, var
  const size_t at[4] = {h.gamma[j], h.beta[j], h.mean[j], h.var[j]};
  for (int q = 0; q < 4; ++q) ring_->read(bn.data() + q * c_, c_ * 4, at[q], what);
  if (int8_) {
    // BatchNorm folded into the scales and the bias (as resident, runtime/head_store.cpp above),
    // then s_x·s_w[o]; the s8 weights are reordered as stored.
    float* s = reinterpret_cast<float*>(slot + scale_off_[j]);
    ring_->read(s, c_ * 4, h.s[j], what);
    ring_->read(s + c_, 4, h.x[j], what);
    fold_batchnorm(s, 1, bias, c_, bn.data(), bn.data() + c_, bn.data() + 2 * c_, bn.data() + 3 * c_, kBnEps);
    memory dst(packed_desc_[j], eng_, slot);
    plans_[j]->pack_s8_weights(reinterpret_cast<const int8_t*>(staging), s, dst, strm);
    for (int o = 0; o < c_; ++o) s[o] *= s[c_];
    return static_cast<int64_t>(c_ * per_out + (6 * c_ + 1) * 4);
  }
  fold_batchnorm(staging, per_out, bias, c_, bn.data(), bn.data() + c_, bn.data() + 2 * c_, bn.data() + 3 * c_, kBnEps);
  memory dst(packed_desc_[j], eng_, slot);
  plans_[j]->pack_weights(staging, dst, strm);  // a reorder, or the Winograd transform (ops/conv.h)
  return static_cast<int64_t>((c_ * per_out + 5 * c_) * 4);
}

}  // namespace m3vit::rt
