// PUP head on oneDNN, banded (runtime/pup_head.h).
#include "runtime/pup_head.h"

#include <algorithm>

#include "common/errors.h"
#include "runtime/head_store.h"
#include "runtime/model_file.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/resize.h"

namespace m3vit::rt {

namespace {
// Largest divisor of rows whose band keeps at most `pixels` output pixels (at least one row), so
// every band has the same height and one conv primitive serves them all.
int band_rows(int rows, int width, int pixels) {
  const int cap = std::max(1, pixels / std::max(1, width));
  for (int r = std::min(rows, cap); r > 1; --r)
    if (rows % r == 0) return r;
  return 1;
}
}  // namespace

size_t HeadWeights::bytes() const {
  return (norm_w.size() + norm_b.size()) * 4 + conv4.bytes();
}

PupHead::PupHead(DnnlContext& ctx, const ModelConfig& cfg, Precision prec, bool winograd, int winograd_tile)
    : ctx_(&ctx), prec_(prec), h_(cfg.grid_h()), w_(cfg.grid_w()), d_(cfg.embed_dim), c_(cfg.head_channels),
      img_h_(cfg.img_h), img_w_(cfg.img_w), ln_eps_(cfg.ln_eps) {
  using dnnl::memory;
  conv0_ = ConvPlan(ctx, 3, d_, c_, h_, w_, 1, 1, /*relu=*/true, prec, winograd, /*input_nonneg=*/false, winograd_tile);
  size_t pad = conv0_.scratchpad_bytes();
  size_t band_in = 0, band_out = 0;
  for (int s = 0; s < 3; ++s) {
    UpStage& st = up_[s];
    st.in_h = h_ << s;
    st.in_w = w_ << s;
    st.band = band_rows(2 * st.in_h, 2 * st.in_w, prec == Precision::int8 ? kBandPixelsInt8 : kBandPixels);
    // The band buffer carries its halo rows (zeros at the map's top and bottom), so no vertical padding.
    // Their input is a ReLU output upsampled: ≥ 0, so u8 in int8 mode.
    st.plan = ConvPlan(ctx, 3, c_, c_, st.band + 2, 2 * st.in_w, 0, 0, /*relu=*/true, prec, winograd,
                       /*input_nonneg=*/true, winograd_tile);
    pad = std::max(pad, st.plan.scratchpad_bytes());
    band_in = std::max(band_in, blocked_floats(c_, st.band + 2, 2 * st.in_w) * st.plan.src_elem_bytes());
    band_out = std::max(band_out, blocked_floats(c_, st.band, 2 * st.in_w));
    // int8 mode keeps the ×2-upsampled stages' maps (conv_1's and conv_2's outputs, 4 and 16 MiB in
    // fp32 at 512×512) in bf16: the int8 convs that read them quantise to 8 bits anyway.
    const size_t floats = blocked_floats(c_, h_ << s, w_ << s);
    map_[s] = layout_.add(map_bf16(s) ? (floats + 1) / 2 : floats);
  }
  band_in_ = layout_.add((band_in + 3) / 4);
  band_out_ = layout_.add(band_out);
  ln_ = layout_.add(static_cast<size_t>(h_) * w_ * d_);
  ln_blocked_ = layout_.add((blocked_floats(d_, h_, w_) * conv0_.src_elem_bytes() + 3) / 4);
  ln_md_ = memory::desc({1, d_, h_, w_}, memory::data_type::f32, memory::format_tag::nhwc);
  ln_blocked_md_ = memory::desc({1, d_, h_, w_}, conv0_.src_type(), memory::format_tag::nChw16c);
  to_blocked_ = dnnl::reorder(dnnl::reorder::primitive_desc(ctx.eng, ln_md_, ctx.eng, ln_blocked_md_));
  int cmax = 1;
  for (const auto& t : cfg.tasks) {
    cmax = std::max(cmax, t.out_channels);
    conv4_plan(t.out_channels);
  }
  c4_band_ = layout_.add(blocked_floats(cmax, up_[2].band, 2 * up_[2].in_w));
  resize_ = 16 * h_ != img_h_ || 16 * w_ != img_w_;
  if (resize_) {
    c4_ = layout_.add(blocked_floats(cmax, 8 * h_, 8 * w_));
    resized_ = layout_.add(static_cast<size_t>(cmax) * (16 * h_) * (16 * w_));
  } else {
    c4_ = layout_.add(blocked_floats(cmax, up_[2].band + 1, 2 * up_[2].in_w));  // one band + the row above
  }
  for (const auto& [c, plan] : conv4_) pad = std::max(pad, plan.scratchpad_bytes());
  conv_pad_ = layout_.add((pad + 3) / 4);
}

ConvPlan& PupHead::conv4_plan(int out_channels) {
  auto it = conv4_.find(out_channels);
  if (it == conv4_.end()) {
    // 1×1 conv over one conv_3 band. In bf16 and int8 mode with the Winograd head convs, conv_3
    // writes its band in bf16 and conv_4 runs as oneDNN's bf16 1×1 conv: half the time of fp32 (2.4
    // against 4.7 ms per 512×512 image, measured). Otherwise (fp32, direct head convs) it reads
    // conv_3's fp32 output and stays fp32 (1.3% of the head's multiply-adds).
    it = conv4_.emplace(out_channels, ConvPlan(*ctx_, 1, c_, out_channels, up_[2].band, 2 * up_[2].in_w, 0, 0,
                                               /*relu=*/false, conv4_bf16() ? Precision::bf16 : Precision::fp32))
             .first;
  }
  return it->second;
}

HeadWeights PupHead::pack(const ModelFile& f, const std::string& task, int out_channels) {
  HeadWeights hw;
  hw.out_channels = out_channels;
  auto key = [&](const std::string& rest) { return head_key(task, rest); };
  const float* nw = f.data(key("norm.weight"));
  const float* nb = f.data(key("norm.bias"));
  hw.norm_w.assign(nw, nw + d_);
  hw.norm_b.assign(nb, nb + d_);
  hw.conv4 = conv4_plan(out_channels).pack(f.data(key("conv_4.weight")), f.data(key("conv_4.bias")));
  return hw;
}

void PupHead::forward(const float* tokens, const HeadWeights& w, HeadStore& convs, float* out, float* work) {
  const int C = w.out_channels;
  float* ln = work + ln_;
  void* ln_blocked = work + ln_blocked_;
  float* map[3] = {work + map_[0], work + map_[1], work + map_[2]};  // map[1], map[2]: bf16 bits when map_bf16
  void* band_in = work + band_in_;
  float* band_out = work + band_out_;
  float* c4band = work + c4_band_;
  float* c4o = work + c4_;
  // Drop cls (quirk Q15 aside, vit_up_head.py:153-154), LayerNorm: [h·w, d] = channels-last [h, w, d].
  layer_norm(tokens + d_, ln, static_cast<int64_t>(h_) * w_, d_, w.norm_w.data(), w.norm_b.data(), ln_eps_);
  {
    dnnl::memory src(ln_md_, ctx_->eng, ln), dst(ln_blocked_md_, ctx_->eng, ln_blocked);
    to_blocked_.execute(ctx_->strm, src, dst);  // to nChw16c (and bf16 for a bf16 direct conv_0)
    ctx_->strm.wait();
  }
  void* pad = work + conv_pad_;
  // Each 3×3 conv's weights come from the store (streamed: waits for the load) and are released once
  // the conv has run over the whole map (streamed: frees the buffer).
  conv0_.run(ln_blocked, convs.acquire(0), map[0], pad);  // [c, h, w]
  convs.release(0);
  ConvPlan& c4 = conv4_plan(C);
  const int H4 = 8 * h_, W4 = 8 * w_;  // conv_4's output [C, H4, W4]
  const ResizeAxis final_rows = resize_axis(H4, 2 * H4);
  int final_y = 0;  // without resize_: output rows [0, final_y) are written
  for (int s = 0; s < 3; ++s) {
    const UpStage& st = up_[s];
    const int H = 2 * st.in_h, W = 2 * st.in_w;
    const PackedConv& cw = convs.acquire(s + 1);
    for (int r0 = 0; r0 < H; r0 += st.band) {
      // Rows r0-1 .. r0+band of the ×2 map (zeros outside it): the band's 3×3 input with halo.
      // In the plan's input type: bf16 for oneDNN's bf16 direct conv, fp32 otherwise (the bf16
      // Winograd rounds after its transform).
      const int y0 = r0 - 1, y1 = r0 + st.band + 1;
      if (map_bf16(s))
        upsample2x_rows_blocked(reinterpret_cast<const uint16_t*>(map[s]), st.in_h, st.in_w, c_, y0, y1,
                                static_cast<float*>(band_in));
      else if (st.plan.src_type() == dnnl::memory::data_type::bf16)
        upsample2x_rows_blocked(map[s], st.in_h, st.in_w, c_, y0, y1, static_cast<uint16_t*>(band_in));
      else
        upsample2x_rows_blocked(map[s], st.in_h, st.in_w, c_, y0, y1, static_cast<float*>(band_in));
      if (s < 2) {  // into rows r0.. of the next map: straight from the conv where it can write bf16
        if (map_bf16(s + 1) && st.plan.writes_bf16_maps()) {
          st.plan.run_into_map(band_in, cw, reinterpret_cast<uint16_t*>(map[s + 1]), H, r0, pad);
          continue;
        }
        st.plan.run(band_in, cw, band_out, pad);  // [c, band, W]
        if (map_bf16(s + 1))
          copy_rows_blocked(band_out, c_, st.band, W, reinterpret_cast<uint16_t*>(map[s + 1]), H, r0);
        else
          copy_rows_blocked(band_out, c_, st.band, W, map[s + 1], H, r0);
        continue;
      }
      if (conv4_bf16())  // [c, band, W], bf16 (conv4_bf16)
        st.plan.run_into_map(band_in, cw, reinterpret_cast<uint16_t*>(band_out), st.band, 0, pad);
      else
        st.plan.run(band_in, cw, band_out, pad);  // [c, band, W]
      c4.run(band_out, w.conv4, c4band, pad);  // [C, band, W]
      if (resize_) {
        copy_rows_blocked(c4band, C, st.band, W, c4o, H, r0);
        continue;
      }
      // conv_4's output is never stored whole (8 MiB at 512×512): c4o holds rows r0-1 .. r0+band-1
      // (the previous band's last row, then this band), and every output row of the final ×2 that
      // samples only those rows is written now.
      if (r0 > 0)
        for (int cb = 0; cb < (C + 15) / 16; ++cb) {
          float* plane = c4o + static_cast<int64_t>(cb) * (st.band + 1) * W * 16;
          std::copy(plane + static_cast<int64_t>(st.band) * W * 16, plane + static_cast<int64_t>(st.band + 1) * W * 16,
                    plane);
        }
      copy_rows_blocked(c4band, C, st.band, W, c4o, st.band + 1, 1);
      int y_end = final_y;
      while (y_end < 2 * H4 && final_rows.i1[y_end] <= r0 + st.band - 1) ++y_end;
      resize_blocked_rows_to_chw(c4o, C, r0 - 1, st.band + 1, H4, W4, out, 2 * H4, 2 * W4, final_y, y_end);
      final_y = y_end;
    }
    convs.release(s + 1);
  }
  if (resize_) {
    // conv_4 output [C, 8h, 8w] -> ×2 -> [C, 16h, 16w] -> input size.
    resize_blocked_to_chw(c4o, C, H4, W4, work + resized_, 2 * H4, 2 * W4);
    resize_chw(work + resized_, C, 2 * H4, 2 * W4, out, img_h_, img_w_);
  }
}

bool PupHead::winograd() const {
  bool all = conv0_.winograd();
  for (const auto& st : up_) all = all && st.plan.winograd();
  return all;
}

}  // namespace m3vit::rt
