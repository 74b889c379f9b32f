// PASCAL-Context and NYUD loaders on small fixtures in the real on-disk formats (JPEG, gray/palette
// PNG, .mat v5 written by scipy and by libmatio, .npy), checked against values computed by hand or by
// the authors' reading logic in tests/data/make_fixtures.py; plus the bad-file and --skip-bad paths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/errors.h"
#include "common/fileutil.h"
#include "data/edge_maps.h"
#include "data/label_png.h"
#include "data/mat_file.h"
#include "data/nyud.h"
#include "data/pascal_context.h"
#include "data/rng.h"
#include "data/synthetic.h"
#include "io/npy.h"
#include "tests/data/test_util.h"

using namespace m3vit;
namespace fs = std::filesystem;

namespace {

constexpr int H = 8, W = 10;

ImageF random_rgb(int h, int w, uint64_t seed) {
  ImageF im(3, h, w);
  Rng rng(seed);
  for (float& v : im.data) v = static_cast<float>(rng.below(256));
  return im;
}

ImageF gray(int h, int w, const std::function<float(int, int)>& f) {
  ImageF im(1, h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) im.at(0, y, x) = f(y, x);
  return im;
}

std::vector<float> load_npy_f32(const std::string& path) {
  const OwnedTensor t = read_npy(path);
  std::vector<float> v(t.numel());
  std::memcpy(v.data(), t.bytes.data(), v.size() * 4);
  return v;
}

void write_garbage(const std::string& path) { write_file_atomic(path, std::string("this is not an image or a mat file")); }

template <class E>
void expect_throw_naming(const std::function<void()>& f, const std::string& name) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one naming " << name;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

// The LabelMap of fixture "a": classes 0 / 5 / 9 in three vertical bands.
std::vector<double> labelmap_a() {
  std::vector<double> lm(H * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) lm[y * W + x] = x < 3 ? 0 : x < 7 ? 5 : 9;
  return lm;
}

// The scipy-written PASCAL-Part struct and the authors' reading of it, made once per test process.
const std::string& parts_fixture() {
  static const std::string dir = [] {
    const std::string d = m3vit_test::scratch_dir("parts-fixture");
    EXPECT_EQ(m3vit_test::run_oracle("tests/data/make_fixtures.py", "parts " + d + "/a.mat " + d + "/parts_a.npy"), 0);
    return d;
  }();
  return dir;
}

// A PASCAL_MT tree with three ids: a (persons, VOC12 semseg), b (a dog only), c (a person of zero area).
std::string make_pascal_root(const std::string& name) {
  const std::string r = m3vit_test::scratch_dir(name);
  for (const char* d : {"JPEGImages", "semseg/VOC12", "semseg/pascal-context", "human_parts", "normals_distill",
                        "sal_distill", "pascal-context/trainval", "ImageSets/Context"})
    fs::create_directories(r + "/" + d);
  write_file_atomic(r + "/ImageSets/Context/val.txt", std::string("a\nb\r\n\n c \n"));
  write_file_atomic(r + "/normals_valid_classes.txt", std::string("# classes with normals\n5\n"));
  fs::copy_file(parts_fixture() + "/a.mat", r + "/human_parts/a.mat");
  fs::copy_file(parts_fixture() + "/parts_a.npy", r + "/parts_a.npy");
  for (const std::string id : {"a", "b", "c"}) {
    write_rgb_jpeg(r + "/JPEGImages/" + id + ".jpg", random_rgb(H, W, id[0]), 95);
    write_label_png(r + "/semseg/pascal-context/" + id + ".png", gray(H, W, [](int y, int x) { return (y * W + x) % 21; }));
    ImageF n(3, H, W);
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < H * W; ++k) n.data[c * H * W + k] = static_cast<float>((k * 7 + c * 50) % 256);
    write_rgb_png(r + "/normals_distill/" + id + ".png", n);
    write_label_png(r + "/sal_distill/" + id + ".png", gray(H, W, [](int y, int x) { return x < 5 ? 127.f : 128.f; }));
    write_mat_matrix_f64(r + "/pascal-context/trainval/" + id + ".mat", "LabelMap", H, W, labelmap_a());
  }
  write_label_png(r + "/semseg/VOC12/a.png", gray(H, W, [](int, int) { return 7.f; }));
  PartsAnnotation dog;
  dog.objects.push_back({"dog", 12, H, W, std::vector<uint8_t>(H * W, 1), {{"head", H, W, std::vector<uint8_t>(H * W, 1)}}});
  write_parts_annotation(r + "/human_parts/b.mat", dog);
  PartsAnnotation ghost;  // a person whose mask is empty: not a person for the authors (area > 0)
  ghost.objects.push_back({"person", 15, H, W, std::vector<uint8_t>(H * W, 0), {{"head", H, W, std::vector<uint8_t>(H * W, 1)}}});
  write_parts_annotation(r + "/human_parts/c.mat", ghost);
  return r;
}

}  // namespace

TEST(PascalLoader, ReadsEveryTaskAsTheAuthorsDo) {
  const std::string r = make_pascal_root("pascal-ok");
  PascalOptions o;
  o.root = r;
  PascalContextDataset ds(o);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.sample_id(2), "c");
  const Sample a = ds.get(0), b = ds.get(1);
  EXPECT_EQ(a.orig_h, H);
  EXPECT_EQ(a.orig_w, W);
  // semseg: VOC12 wins over pascal-context.
  for (float v : a.label("semseg").data) EXPECT_EQ(v, 7.f);
  for (int k = 0; k < H * W; ++k) EXPECT_EQ(b.label("semseg").data[k], static_cast<float>(k % 21));
  // human parts: the authors' positional reading of the scipy-written struct.
  EXPECT_EQ(a.label("human_parts").data, load_npy_f32(r + "/parts_a.npy"));
  for (float v : b.label("human_parts").data) EXPECT_EQ(v, 0.f);            // a dog's parts do not count
  const Sample c = ds.get(2);
  for (float v : c.label("human_parts").data) EXPECT_EQ(v, 0.f);  // zero-area person
  // saliency: v/255 > 0.5, so 127 -> 0 and 128 -> 1.
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) EXPECT_EQ(a.label("sal").at(0, y, x), x < 5 ? 0.f : 1.f);
  // normals: 2v/255 - 1 where the LabelMap class (5) is valid, 0 elsewhere.
  const auto lm = labelmap_a();
  const ImageF& n = a.label("normals");
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < H * W; ++k) {
      const float want = lm[k] == 5 ? 2.f * ((k * 7 + c * 50) % 256) / 255.f - 1.f : 0.f;
      EXPECT_FLOAT_EQ(n.data[c * H * W + k], want);
    }
  // edges from the LabelMap.
  EXPECT_EQ(a.label("edge").data, label_boundaries(lm, H, W));
}

TEST(PascalLoader, HumanPartsAloneKeepsOnlyImagesWithPersons) {
  const std::string r = make_pascal_root("pascal-parts");
  PascalOptions o;
  o.root = r;
  o.tasks = {"human_parts"};
  PascalContextDataset ds(o);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds.sample_id(0), "a");
}

TEST(PascalLoader, UnknownPartNameIsAFormatError) {
  PartsAnnotation a;
  a.objects.push_back({"person", 15, 2, 2, {1, 1, 1, 1}, {{"tail", 2, 2, {1, 0, 0, 0}}}});
  expect_throw_naming<FormatError>([&] { human_parts_map(a, 2, 2, "x.mat"); }, "tail");
}

TEST(PascalLoader, MissingFileFailsOrIsSkipped) {
  const std::string r = make_pascal_root("pascal-missing");
  fs::remove(r + "/sal_distill/b.png");
  PascalOptions o;
  o.root = r;
  expect_throw_naming<IoError>([&] { PascalContextDataset ds(o); }, "sal_distill/b.png");
  o.tasks = {"semseg"};  // files of tasks not asked for are not required
  EXPECT_EQ(PascalContextDataset(o).size(), 3u);
  o.tasks = {};
  o.skip_bad = true;
  PascalContextDataset ds(o);
  ASSERT_EQ(ds.size(), 2u);
  ASSERT_EQ(ds.skipped().size(), 1u);
  EXPECT_EQ(ds.skipped()[0].id, "b");
  EXPECT_NE(ds.skipped()[0].reason.find("sal_distill/b.png"), std::string::npos);
}

TEST(PascalLoader, MalformedFilesNameThemselves) {
  const std::string r = make_pascal_root("pascal-bad");
  write_garbage(r + "/JPEGImages/c.jpg");
  write_garbage(r + "/human_parts/b.mat");
  PascalOptions o;
  o.root = r;
  PascalContextDataset ds(o);  // files exist: construction succeeds
  expect_throw_naming<IoError>([&] { ds.get(2); }, "JPEGImages/c.jpg");
  expect_throw_naming<FormatError>([&] { ds.get(1); }, "human_parts/b.mat");
  o.skip_bad = true;
  PascalContextDataset skip(o);
  ASSERT_EQ(skip.size(), 1u);
  EXPECT_EQ(skip.sample_id(0), "a");
  EXPECT_EQ(skip.skipped().size(), 2u);
}

TEST(PascalLoader, NormalsClassListSources) {
  const std::string r = make_pascal_root("pascal-classes");
  fs::remove(r + "/normals_valid_classes.txt");
  PascalOptions o;
  o.root = r;
  expect_throw_naming<IoError>([&] { PascalContextDataset ds(o); }, "normals_valid_classes.txt");
  // The authors' rule on their json files: NYU names that are context classes, minus 'unknown', plus tvmonitor.
  fs::create_directories(r + "/db_info");
  write_file_atomic(r + "/db_info/nyu_classes.json", std::string(R"({"wall": 1, "unknown": 0, "chair": 5, "lamp": 7})"));
  write_file_atomic(r + "/db_info/context_classes.json",
                    std::string(R"({"wall": 42, "unknown": 3, "chair": 9, "tvmonitor": 77, "cat": 8})"));
  PascalContextDataset ds(o);
  EXPECT_EQ(ds.normals_valid_classes(), (std::vector<int>{9, 42, 77}));
  // An explicit list file wins; a bad token names the line.
  write_file_atomic(r + "/mine.txt", std::string("5 9\n"));
  o.normals_classes = r + "/mine.txt";
  EXPECT_EQ(PascalContextDataset(o).normals_valid_classes(), (std::vector<int>{5, 9}));
  write_file_atomic(r + "/mine.txt", std::string("5\nfive\n"));
  expect_throw_naming<FormatError>([&] { PascalContextDataset ds2(o); }, "mine.txt:2");
}

TEST(LabelPng, PaletteIndicesAndSixteenBitGray) {
  const std::string d = m3vit_test::scratch_dir("label-png");
  ASSERT_EQ(m3vit_test::run_oracle("tests/data/make_fixtures.py", "png " + d), 0);
  EXPECT_EQ(read_label_png(d + "/palette.png").data, load_npy_f32(d + "/palette.npy"));
  EXPECT_EQ(read_label_png(d + "/gray16.png").data, load_npy_f32(d + "/gray16.npy"));
  write_rgb_png(d + "/rgb.png", random_rgb(3, 4, 1));
  expect_throw_naming<FormatError>([&] { read_label_png(d + "/rgb.png"); }, "rgb.png");
  write_garbage(d + "/junk.png");
  expect_throw_naming<FormatError>([&] { read_label_png(d + "/junk.png"); }, "junk.png");
  expect_throw_naming<IoError>([&] { read_label_png(d + "/none.png"); }, "none.png");
}

TEST(LabelPng, HeaderSizeAgainstThePictureLimit) {
  // A gray label PNG whose IHDR claims 16384 x 16384 (2^28 pixels): refused before zlib is asked
  // for the rows (its first allocation would have been the rows' 268 MB).
  const std::string d = m3vit_test::scratch_dir("label-png-huge");
  std::string png = "\x89PNG\r\n\x1a\n";
  const auto be32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) png += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  be32(13);
  png += "IHDR";
  be32(16384);
  be32(16384);
  png += std::string("\x08\x00\x00\x00\x00", 5);
  be32(0);
  be32(4);
  png += "IDAT" + std::string(4, '\x01');
  be32(0);
  be32(0);
  png += "IEND";
  be32(0);
  write_file_atomic(d + "/huge.png", png);
  expect_throw_naming<FormatError>([&] { read_label_png(d + "/huge.png"); },
                                   "huge.png: 16384 x 16384 pixels is more than this reader's limit of 134217728");
}

TEST(NyudLoader, ReadsEveryTaskAndMapsSegmentation) {
  const std::string r = m3vit_test::scratch_dir("nyud");
  for (const char* d : {"images", "segmentation", "depth", "normals", "edge", "gt_sets"}) fs::create_directories(r + "/" + d);
  ASSERT_EQ(m3vit_test::run_oracle("tests/data/make_fixtures.py", "png " + r), 0);  // 6x7 palette PNG
  const int h = 6, w = 7;
  write_file_atomic(r + "/gt_sets/train.txt", std::string("n1\nn2\n"));
  std::vector<double> depth(h * w);
  std::vector<float> normals(h * w * 3);
  std::vector<uint8_t> edge(h * w);
  for (int k = 0; k < h * w; ++k) {
    depth[k] = k % 5 == 0 ? 0.0 : 0.5 + 0.1 * k;
    for (int c = 0; c < 3; ++c) normals[k * 3 + c] = static_cast<float>(c - 1) * 0.5f + 0.01f * k;
    edge[k] = k % 3 == 0;
  }
  for (const std::string id : {"n1", "n2"}) {
    write_rgb_jpeg(r + "/images/" + id + ".jpg", random_rgb(h, w, 9), 90);
    fs::copy_file(r + "/palette.png", r + "/segmentation/" + id + ".png");
    write_npy(r + "/depth/" + id + ".npy", DType::F64, {h, w}, depth.data());
    write_npy(r + "/normals/" + id + ".npy", DType::F32, {h, w, 3}, normals.data());
    write_npy(r + "/edge/" + id + ".npy", DType::U8, {h, w, 1}, edge.data());
  }
  NyudOptions o;
  o.root = r;
  o.split = "train";
  NyudDataset ds(o);
  ASSERT_EQ(ds.size(), 2u);
  const Sample s = ds.get(0);
  const auto idx = load_npy_f32(r + "/palette.npy");
  for (int k = 0; k < h * w; ++k) {
    EXPECT_EQ(s.label("semseg").data[k], idx[k] == 0 ? 255.f : idx[k] - 1) << k;  // 0 -> 255, v -> v - 1
    EXPECT_FLOAT_EQ(s.label("depth").data[k], static_cast<float>(depth[k]));
    EXPECT_EQ(s.label("edge").data[k], edge[k]);
    for (int c = 0; c < 3; ++c) EXPECT_EQ(s.label("normals").data[c * h * w + k], normals[k * 3 + c]);  // HWC -> CHW
  }
  // Bad files: a normals array of the wrong shape, a NaN depth.
  write_npy(r + "/normals/n2.npy", DType::F32, {h, w}, normals.data());
  expect_throw_naming<ShapeError>([&] { ds.get(1); }, "normals/n2.npy");
  depth[3] = NAN;
  write_npy(r + "/depth/n1.npy", DType::F64, {h, w}, depth.data());
  expect_throw_naming<NumericError>([&] { ds.get(0); }, "n1");
  o.skip_bad = true;
  EXPECT_THROW(NyudDataset{o}, FormatError);  // every sample bad
  fs::remove(r + "/depth/n1.npy");
  o.skip_bad = false;
  expect_throw_naming<IoError>([&] { NyudDataset ds2(o); }, "depth/n1.npy");
}

TEST(Datasets, SplitFileAndTaskErrors) {
  const std::string r = m3vit_test::scratch_dir("split");
  expect_throw_naming<IoError>([&] { read_split_file(r + "/nope.txt"); }, "nope.txt");
  write_file_atomic(r + "/empty.txt", std::string("\n \n"));
  expect_throw_naming<FormatError>([&] { read_split_file(r + "/empty.txt"); }, "empty.txt");
  NyudOptions o;
  o.root = r;
  o.tasks = {"human_parts"};
  expect_throw_naming<ConfigError>([&] { NyudDataset ds(o); }, "human_parts");
}
