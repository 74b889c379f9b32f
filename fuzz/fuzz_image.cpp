// Pictures (common/image_io.h decode_image: PNG and JPEG through our checks and stb_image, the path of
// `m3vit run --image`, `m3vit serve` uploads and the dataset loaders), asked for 1 or 3 channels.
#include "common/image_io.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vit::fuzz::Choices c(data, size);
  const int channels = (c.byte() & 1) ? 1 : 3;
  return m3vit::fuzz::expect_typed_errors([&] {
    const m3vit::Image8 img = m3vit::decode_image(c.rest(), c.rest_size(), "input.png", channels);
    if (img.pixels.size() != static_cast<size_t>(img.height) * img.width * img.channels) __builtin_trap();
  });
}
