// fuzz_make_seeds SOURCE_DIR OUT_DIR: the seed corpora, one folder per harness, written with the
// project's own writers from the test fixtures and shipped configs (nothing binary is kept in git).
// A seed is a small valid input, so that the fuzzer starts from files that pass the first checks.
// The .pth seeds need torch.save and come from fuzz/make_pth_seeds.py (scripts/fuzz.sh runs both).
#include <stb_image_write.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/image_io.h"
#include "core/config_yaml.h"
#include "core/shipped_configs.h"
#include "data/label_png.h"
#include "data/mat_file.h"
#include "hw/cost/expert_trace.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "runtime/synthetic_export.h"

namespace fs = std::filesystem;
using namespace m3vit;

namespace {

std::string g_out;

std::string seed_path(const std::string& harness, const std::string& name) {
  fs::create_directories(g_out + "/" + harness);
  return g_out + "/" + harness + "/" + name;
}

void write_bytes(const std::string& path, const std::string& prefix, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << prefix << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The smallest model that validates and runs: 8x12 input, 4x4 patches (6 tokens), width 16, one
// MoE block, two tasks. Its export is a few kB, small enough for the fuzzer to mutate quickly.
const char* kMicroModel = R"(model:
  name: micro
  img_size: [8, 12]
  patch_size: 4
  in_chans: 3
  embed_dim: 16
  depth: 2
  num_heads: 2
  mlp_ratio: 1.0
  moe_blocks: odd
  moe_experts: 4
  moe_top_k: 2
  moe_mlp_ratio: 1.0
  gate: multi
  head_channels: 4
  tasks: [semseg, depth]
  tam: false
data:
  dataset: synthetic
)";

void image_seeds() {
  Image8 rgb{6, 4, 3, {}}, gray{5, 3, 1, {}};
  for (int i = 0; i < 6 * 4 * 3; ++i) rgb.pixels.push_back(static_cast<uint8_t>(i * 37));
  for (int i = 0; i < 5 * 3; ++i) gray.pixels.push_back(static_cast<uint8_t>(i * 11));
  // The first byte is the harness's channel choice (fuzz/fuzz_image.cpp).
  write_bytes(seed_path("image", "rgb.png"), std::string(1, '\0'), encode_png(rgb));
  write_bytes(seed_path("image", "gray.png"), std::string(1, '\1'), encode_png(gray));
  std::string jpg;
  stbi_write_jpg_to_func([](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), n); },
                         &jpg, rgb.width, rgb.height, 3, rgb.pixels.data(), 90);
  write_bytes(seed_path("image", "rgb.jpg"), std::string(1, '\0'), jpg);
}

void tensor_seeds() {
  const std::vector<float> f = {1.f, -2.f, 3.5f, 0.f, 1e-3f, 7.f};
  const std::vector<int64_t> l = {1, 2, 3, 4};
  SafeTensorsWriter w;
  w.add("weight", DType::F32, {2, 3}, f.data(), f.size() * 4);
  w.add("index", DType::I64, {4}, l.data(), l.size() * 8);
  w.add("empty", DType::F32, {0, 3}, nullptr, 0);
  w.set_metadata("format", "pt");
  w.write(seed_path("safetensors", "three.safetensors"));
  write_npy(seed_path("npy", "f32.npy"), DType::F32, {2, 3}, f.data());
  write_npy(seed_path("npy", "i64.npy"), DType::I64, {4}, l.data());
  const std::vector<uint8_t> u = {0, 1, 255};
  write_npy(seed_path("npy", "u8.npy"), DType::U8, {3}, u.data());
}

void config_seeds(const std::string& src) {
  for (const std::string& f : shipped_files("configs/")) {
    const std::string name = fs::path(f).filename().string();
    if (f.rfind("configs/hw/", 0) == 0)
      write_bytes(seed_path("accel_preset", name), "", *shipped_file(f));
    else
      write_bytes(seed_path("config_yaml", name), "", *shipped_file(f));
  }
  write_bytes(seed_path("config_yaml", "micro.yaml"), "", kMicroModel);
  // The first byte is the harness's override choice: 0 = none, 0x03 = --moe_experts/--moe_top_k.
  for (const auto& e : fs::directory_iterator(src + "/tests/fixtures/configs")) {
    if (e.path().extension() != ".yml") continue;
    write_bytes(seed_path("authors_yaml", e.path().filename().string()), std::string(1, '\0'), read_bytes(e.path()));
    write_bytes(seed_path("authors_yaml", "moe8k2_" + e.path().filename().string()), std::string("\x03\x0a\x04", 3),
                read_bytes(e.path()));
  }
}

void model_seeds() {
  const ModelConfig micro = load_config_text(kMicroModel, "micro.yaml").model;
  rt::write_synthetic_export(micro, seed_path("model_file", "micro.safetensors"), 1);
  hw::SyntheticTraceSpec spec;
  spec.images = 2;
  spec.task = "semseg";
  hw::write_trace(hw::synthetic_trace(micro, spec), seed_path("trace", "uniform.safetensors"));
  spec.kind = "skewed";
  spec.correlation = 0.5;
  hw::write_trace(hw::synthetic_trace(micro, spec), seed_path("trace", "skewed.safetensors"));
}

void mat_seeds() {
  write_mat_matrix_u16(seed_path("mat", "labelmap.mat"), "LabelMap", 3, 4, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  PartsAnnotation a;
  a.imname = "2008_000001";
  ObjectAnnotation person{"person", 15, 3, 4, std::vector<uint8_t>(12, 1), {}};
  person.parts.push_back({"head", 3, 4, {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0}});
  a.objects.push_back(person);
  a.objects.push_back({"dog", 12, 3, 4, std::vector<uint8_t>(12, 0), {}});
  write_parts_annotation(seed_path("mat", "parts.mat"), a);
}

// A PNG of the given IHDR fields and already-filtered rows (each row's filter byte first), for the
// label reader's forms that write_label_png does not write: palette at 1, 2 and 4 bits, 16-bit gray.
// CRCs are left 0 (neither reader checks them).
std::string png_file(int w, int h, int depth, int ctype, const std::string& rows, const std::string& plte) {
  const auto be32 = [](uint32_t v) {
    std::string s;
    for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
  };
  const auto chunk = [&](const std::string& type, const std::string& data) {
    return be32(static_cast<uint32_t>(data.size())) + type + data + be32(0);
  };
  uLongf zlen = compressBound(rows.size());
  std::string idat(zlen, '\0');
  compress(reinterpret_cast<Bytef*>(idat.data()), &zlen, reinterpret_cast<const Bytef*>(rows.data()), rows.size());
  idat.resize(zlen);
  std::string ihdr = be32(w) + be32(h);
  ihdr += {static_cast<char>(depth), static_cast<char>(ctype), 0, 0, 0};
  std::string out = "\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr);
  if (!plte.empty()) out += chunk("PLTE", plte);
  return out + chunk("IDAT", idat) + chunk("IEND", "");
}

void label_png_seeds() {
  ImageF labels(1, 3, 5);
  for (size_t i = 0; i < labels.data.size(); ++i) labels.data[i] = static_cast<float>(i * 13 % 256);
  write_label_png(seed_path("label_png", "gray8.png"), labels);
  const std::string plte(16 * 3, '\x40');
  // 6 x 2 pixels: palette at 4 bits (3 bytes a row) with Sub and Up filters, at 2 and 1 bits (2 and 1
  // bytes a row) with Average and Paeth; 16-bit gray (12 bytes a row) with None and Sub.
  write_bytes(seed_path("label_png", "palette4.png"), "",
              png_file(6, 2, 4, 3, std::string("\x01\x12\x34\x05\x02\x01\x01\x01", 8), plte));
  write_bytes(seed_path("label_png", "palette2.png"), "",
              png_file(6, 2, 2, 3, std::string("\x03\x1b\xe0\x04\x01\x02", 6), plte));
  write_bytes(seed_path("label_png", "palette1.png"), "", png_file(6, 2, 1, 3, std::string("\x00\xa4\x04\x10", 4), plte));
  std::string gray16(1 + 12, '\x01');
  gray16[0] = 0;
  gray16 += std::string(1, '\x01') + std::string(12, '\x02');
  write_bytes(seed_path("label_png", "gray16.png"), "", png_file(6, 2, 16, 0, gray16, ""));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_make_seeds SOURCE_DIR OUT_DIR\n");
    return 2;
  }
  g_out = argv[2];
  try {
    image_seeds();
    tensor_seeds();
    config_seeds(argv[1]);
    model_seeds();
    mat_seeds();
    label_png_seeds();
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
    return 2;
  }
  return 0;
}
