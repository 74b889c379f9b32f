// Run-time choice of the fixed-point encoder (hw/fx/fx_select.h).
#include "hw/fx/fx_select.h"

#include <memory>

namespace m3vit::hw {

namespace {

template <Ovf O, FxFormat Fm>
FxSelected build(const EncoderWeights& w, int task, const FxOptions& o) {
  auto fw = std::make_shared<const FxWeights<O, Fm>>(convert_weights<O, Fm>(w, task, o.round_weights));
  auto enc = std::make_shared<FxEncoder<O, Fm>>(o.arith);
  FxSelected s;
  s.conversion_overflows = fw->conversion_overflows;
  s.overflow_by_tensor = fw->overflow_by_tensor;
  s.run = [fw, enc](const uint8_t* image, FxRunInfo* info) { return enc->run(*fw, image, info); };
  return s;
}

template <Ovf O>
FxSelected build_format(const EncoderWeights& w, int task, const FxOptions& o) {
  switch (o.format) {
    case FxFormat::a32w16: return build<O, FxFormat::a32w16>(w, task, o);
    case FxFormat::a32w8: return build<O, FxFormat::a32w8>(w, task, o);
    case FxFormat::a16w16: return build<O, FxFormat::a16w16>(w, task, o);
    case FxFormat::a16w8: return build<O, FxFormat::a16w8>(w, task, o);
  }
  return build<O, FxFormat::a32w16>(w, task, o);
}

}  // namespace

FxSelected select_fx_encoder(const EncoderWeights& w, int task, const FxOptions& o) {
  return o.saturate ? build_format<Ovf::saturate>(w, task, o) : build_format<Ovf::wrap>(w, task, o);
}

}  // namespace m3vit::hw
