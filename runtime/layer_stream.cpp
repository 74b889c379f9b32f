// Streamed dense layers and head convs (runtime/layer_stream.h).
#include "runtime/layer_stream.h"

#include <algorithm>

#include "common/errors.h"
#include "runtime/model_file.h"
#include "runtime/pup_head.h"

namespace m3vit::rt {

namespace {
using dnnl::memory;
size_t align64(size_t n) { return (n + 63) / 64 * 64; }
const char* kDenseKey[LayerStream::kKinds] = {"attn.qkv.", "attn.proj.", "mlp.fc1.", "mlp.fc2."};
const char* kDenseName[LayerStream::kKinds] = {"qkv", "proj", "fc1", "fc2"};
}  // namespace

size_t LayerStream::slot_bytes(const Plans& p) {
  size_t n = 0;
  for (int k = 0; k < kKinds; ++k) n = std::max(n, align64(p.dense[k]->weights_desc().get_size()) + p.dense[k]->out() * 4);
  for (int j = 0; j < 4; ++j) n = std::max(n, align64(p.conv[j]->weights_desc().get_size()) + p.conv[j]->cout() * 4);
  return n;
}

size_t LayerStream::staging_floats(const ModelConfig& c) {
  const size_t d = c.embed_dim, mh = c.mlp_hidden(), ch = c.head_channels;
  return std::max({3 * d * d, mh * d, ch * d * 9, ch * ch * 9});
}

LayerStream::LayerStream(DnnlContext& ctx, const ModelFile& f, const Plans& plans, WeightStream& ring)
    : ring_(ring), eng_(ctx.eng) {
  const ModelConfig& c = f.config();
  d_ = c.embed_dim;
  c_ = c.head_channels;
  if (ring.slot_bytes() < slot_bytes(plans) || ring.staging_floats() < staging_floats(c))
    throw Error("weight ring slots are smaller than the largest dense layer or head conv");
  for (int k = 0; k < kKinds; ++k) {
    in_[k] = plans.dense[k]->in();
    out_[k] = plans.dense[k]->out();
    has_bias_[k] = k != kQkv || c.qkv_bias;
    packed_dense_[k] = plans.dense[k]->weights_desc();
    dense_bias_off_[k] = align64(packed_dense_[k].get_size());
    // The file's [out, in] rows are format "ba" of the matmul's [in, out] operand.
    const memory::desc plain({in_[k], out_[k]}, memory::data_type::f32, memory::format_tag::ba);
    pack_dense_[k] = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain, eng_, packed_dense_[k]));
  }
  for (int j = 0; j < 4; ++j) {
    const ConvPlan& p = *plans.conv[j];
    packed_conv_[j] = p.weights_desc();
    conv_bias_off_[j] = align64(packed_conv_[j].get_size());
    const memory::desc plain({p.cout(), p.cin(), p.kernel(), p.kernel()}, memory::data_type::f32,
                             memory::format_tag::oihw);
    pack_conv_[j] = dnnl::reorder(dnnl::reorder::primitive_desc(eng_, plain, eng_, packed_conv_[j]));
  }

  // Where everything is; every streamed tensor checked for NaN/Inf once, by reading.
  auto where = [&](const std::string& key) {
    f.check_finite_by_reading(key);
    return f.file_offset(key);
  };
  dense_src_.resize(c.depth);
  std::vector<Item> seg;
  for (int i = 0; i < c.depth; ++i) {
    for (int k = 0; k < kKinds; ++k) {
      if ((k == kFc1 || k == kFc2) && c.is_moe_block(i)) continue;
      dense_src_[i].w[k] = where(block_key(i, std::string(kDenseKey[k]) + "weight"));
      if (has_bias_[k]) dense_src_[i].b[k] = where(block_key(i, std::string(kDenseKey[k]) + "bias"));
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
  for (const TaskSpec& t : c.tasks) {
    HeadSource h;
    for (int j = 0; j < 4; ++j) {
      const std::string cj = "conv_" + std::to_string(j) + ".", bj = "syncbn_fc_" + std::to_string(j) + ".";
      h.w[j] = where(head_key(t.name, cj + "weight"));
      h.b[j] = where(head_key(t.name, cj + "bias"));
      h.gamma[j] = where(head_key(t.name, bj + "weight"));
      h.beta[j] = where(head_key(t.name, bj + "bias"));
      h.mean[j] = where(head_key(t.name, bj + "running_mean"));
      h.var[j] = where(head_key(t.name, bj + "running_var"));
    }
    head_src_.push_back(h);
    task_names_.push_back(t.name);
  }

  // Views of every slot, made once.
  dense_view_.resize(ring.slots());
  conv_view_.resize(ring.slots());
  for (int s = 0; s < ring.slots(); ++s) {
    uint8_t* base = ring.slot(s);
    for (int k = 0; k < kKinds; ++k) {
      dense_view_[s][k].weights = memory(packed_dense_[k], eng_, base);
      if (has_bias_[k])
        dense_view_[s][k].bias =
            memory({{1, out_[k]}, memory::data_type::f32, memory::format_tag::ab}, eng_, base + dense_bias_off_[k]);
    }
    for (int j = 0; j < 4; ++j) {
      conv_view_[s][j].weights = memory(packed_conv_[j], eng_, base);
      conv_view_[s][j].bias = memory({{c_}, memory::data_type::f32, memory::format_tag::a}, eng_, base + conv_bias_off_[j]);
    }
  }
  dense_ticket_.assign(c.depth, {});
}

void LayerStream::post(const std::vector<Item>& segment, bool with_head) {
  for (const Item& it : segment)
    dense_ticket_[it.block][it.kind] = ring_.post(
        [this, it](uint8_t* slot, dnnl::stream& strm) { return load_dense(it.block, it.kind, slot, strm); });
  if (!with_head) return;
  const int task = task_;
  for (int j = 0; j < 4; ++j)
    conv_ticket_[j] = ring_.post([this, task, j](uint8_t* slot, dnnl::stream& strm) { return load_conv(task, j, slot, strm); });
}

void LayerStream::begin_image(int task) {
  task_ = task;
  post(segments_[0], segments_.size() == 1);
}

void LayerStream::after_moe_layer(int layer) {
  const size_t next = static_cast<size_t>(layer) + 1;
  if (next < segments_.size()) post(segments_[next], next + 1 == segments_.size());
}

const PackedWeights& LayerStream::dense(int block, Kind kind) {
  return dense_view_[ring_.acquire(dense_ticket_[block][kind])][kind];
}
void LayerStream::done(int block, Kind kind) { ring_.release(dense_ticket_[block][kind]); }
const PackedConv& LayerStream::head_conv(int j) { return conv_view_[ring_.acquire(conv_ticket_[j])][j]; }
void LayerStream::head_done(int j) { ring_.release(conv_ticket_[j]); }

int64_t LayerStream::load_dense(int block, int kind, uint8_t* slot, dnnl::stream& strm) const {
  const std::string what = std::string("the ") + kDenseName[kind] + " weights of block " + std::to_string(block);
  const size_t n = static_cast<size_t>(in_[kind]) * out_[kind];
  float* staging = ring_.staging();
  ring_.read(staging, n * 4, dense_src_[block].w[kind], what);
  memory plain({{in_[kind], out_[kind]}, memory::data_type::f32, memory::format_tag::ba}, eng_, staging);
  memory dst(packed_dense_[kind], eng_, slot);
  pack_dense_[kind].execute(strm, plain, dst);
  strm.wait();
  int64_t bytes = static_cast<int64_t>(n) * 4;
  if (has_bias_[kind]) {
    ring_.read(slot + dense_bias_off_[kind], out_[kind] * 4, dense_src_[block].b[kind], what);
    bytes += out_[kind] * 4;
  }
  return bytes;
}

int64_t LayerStream::load_conv(int task, int j, uint8_t* slot, dnnl::stream& strm) const {
  const HeadSource& h = head_src_[task];
  const std::string what = "conv_" + std::to_string(j) + " of the " + task_names_[task] + " head";
  const int cin = j == 0 ? d_ : c_;
  const size_t per_out = static_cast<size_t>(cin) * 9;
  float* staging = ring_.staging();
  ring_.read(staging, c_ * per_out * 4, h.w[j], what);
  float* bias = reinterpret_cast<float*>(slot + conv_bias_off_[j]);
  ring_.read(bias, c_ * 4, h.b[j], what);
  std::vector<float> bn(4 * static_cast<size_t>(c_));  // γ, β, mean, var
  const size_t at[4] = {h.gamma[j], h.beta[j], h.mean[j], h.var[j]};
  for (int q = 0; q < 4; ++q) ring_.read(bn.data() + q * c_, c_ * 4, at[q], what);
  fold_batchnorm(staging, per_out, bias, c_, bn.data(), bn.data() + c_, bn.data() + 2 * c_, bn.data() + 3 * c_,
                 PupHead::kBnEps);
  memory plain({{c_, cin, 3, 3}, memory::data_type::f32, memory::format_tag::oihw}, eng_, staging);
  memory dst(packed_conv_[j], eng_, slot);
  pack_conv_[j].execute(strm, plain, dst);
  strm.wait();
  return static_cast<int64_t>((c_ * per_out + 5 * c_) * 4);
}

}  // namespace m3vit::rt
