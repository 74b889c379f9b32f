#include "serve/codec.h"

#include <cstring>

#include "common/errors.h"
#include "common/image_io.h"
#include "common/visualize.h"
#include "io/npy.h"
#include "runtime/image_input.h"

namespace m3vit::serve {

namespace {

// The .npy magic ("\x93NUMPY"): anything else is handed to the image decoder.
bool is_npy(const std::string& body) { return body.size() >= 6 && body.compare(0, 6, "\x93NUMPY") == 0; }

// As `m3vit run --input-npy` reads a file (runtime/image_input.h npy_to_input), naming the body.
std::vector<float> npy_input(const std::string& body, const ModelConfig& cfg) {
  return rt::npy_to_input(npy_from_bytes(body, kBodyName), cfg, kBodyName);  // FormatError naming the body
}

}  // namespace

std::vector<float> decode_input(const std::string& body, const ModelConfig& cfg, bool resize) {
  if (body.empty()) throw IoError(std::string(kBodyName) + " is empty: send a PNG/JPEG image or a .npy");
  if (is_npy(body)) return npy_input(body, cfg);
  const Image8 img = decode_image(body.data(), body.size(), kBodyName, 3);  // IoError naming the body
  return rt::image_to_input(img, cfg, resize, kBodyName, "add resize=1 to the URL to scale it");
}

std::string logits_npy(const float* logits, int channels, int height, int width) {
  return npy_to_bytes(DType::F32, {1, channels, height, width}, logits);
}

std::string picture_png(const std::string& task, const float* logits, int channels, int height, int width) {
  return encode_png(visualize_task(task, logits, channels, height, width));
}

std::string base64(const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {  // three bytes -> four characters of six bits
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8 |
                       static_cast<uint8_t>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  const size_t rest = bytes.size() - i;  // 0, 1 or 2 bytes left: padded with '='
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace m3vit::serve
