// The installed library's API (include/m3vit/m3vit.h and m3vit.hpp), linked as the shared library a
// user gets (libm3vit.so). Oracles, computed once per build by the command line (fixture below):
// `m3vit run --save-logits/--out` for the logits and the picture (bit for bit: the library must be
// the runtime, not a copy of it), and `m3vit trace`, the libtorch model, for the routing.
// Every error path returns its status with a one-line message naming the fault, and leaves the
// handle usable.
#include <gtest/gtest.h>

#include <m3vit/m3vit.h>
#include <m3vit/m3vit.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "common/image_io.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "tests/core/io_test_util.h"

namespace {

namespace fs = std::filesystem;
using m3vit::test_io::read_bytes;
using m3vit::test_io::run_command;

const char* const kTasks[] = {"semseg", "human_parts", "sal", "normals", "edge", "depth"};

bool cpu_flag(const std::string& flag) {
  std::ifstream cpu("/proc/cpuinfo");
  const std::string info((std::istreambuf_iterator<char>(cpu)), std::istreambuf_iterator<char>());
  return info.find(" " + flag) != std::string::npos;
}

// One tiny_synthetic export (seed 5) and what the command line makes of assets/sample.png with it.
// ctest runs each case in its own process: the directory is built once per build of the `m3vit`
// binary (its name carries the binary's time stamp, so a rebuilt binary never meets an old oracle;
// older ones are removed), in a temp dir renamed into place (a concurrent builder losing is fine).
const std::string& fixture() {
  static const std::string dir = [] {
    const std::string bin = M3VIT_BINARY_DIR, src = M3VIT_SOURCE_DIR;
    const auto stamp = static_cast<uint64_t>(fs::last_write_time(bin + "/m3vit").time_since_epoch().count());
    const std::string final_dir = bin + "/tmp-api-fixture-" + std::to_string(stamp);
    if (fs::exists(final_dir + "/ok")) return final_dir;
    // Older oracles: "tmp-api-fixture-" and digits only (not another process's scratch folder).
    for (const auto& e : fs::directory_iterator(bin)) {
      const std::string name = e.path().filename().string(), prefix = "tmp-api-fixture-";
      const bool old_oracle = name.size() > prefix.size() && name.rfind(prefix, 0) == 0 &&
                              name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
      std::error_code ignore;
      if (old_oracle && e.path() != final_dir) fs::remove_all(e.path(), ignore);
    }
    const std::string tmp = m3vit::test_io::make_scratch_dir("api-fixture-build");
    const std::string m3vit = bin + "/m3vit", model = tmp + "/model.safetensors", img = src + "/assets/sample.png";
    std::string cmd = m3vit + " export --config " + src + "/configs/tiny_synthetic.yaml --seed 5 --out " + model;
    for (const char* t : {"semseg", "normals"})
      cmd += " && " + m3vit + " run --model " + model + " --task " + t + " --image " + img + " --threads 2 --save-logits " +
             tmp + "/" + t + ".npy --out " + tmp + "/" + t + ".png";
    cmd += " && mkdir " + tmp + "/images && cp " + img + " " + tmp + "/images/ && " + m3vit + " trace --config " + src +
           "/configs/tiny_synthetic.yaml --weights " + model + " --task semseg --images " + tmp + "/images --out " + tmp +
           "/trace.safetensors";
    if (cpu_flag("avx512_vnni"))  // the int8 file of `m3vit calibrate` and its semseg logits
      cmd += " && " + m3vit + " calibrate --model " + model + " --synthetic 2 --threads 2 --out " + tmp +
             "/int8.safetensors && " + m3vit + " run --model " + tmp + "/int8.safetensors --precision int8 --task semseg " +
             "--image " + img + " --threads 2 --save-logits " + tmp + "/int8_semseg.npy";
    cmd += " && touch " + tmp + "/ok";
    const auto r = run_command(cmd);
    EXPECT_EQ(r.status, 0) << r.output;
    std::error_code ec;
    fs::rename(tmp, final_dir, ec);
    if (ec) fs::remove_all(tmp);
    return final_dir;
  }();
  return dir;
}
std::string model_path() { return fixture() + "/model.safetensors"; }
std::string sample_png() { return std::string(M3VIT_SOURCE_DIR) + "/assets/sample.png"; }

// Opens with the given options; the test fails on an error.
m3vit_model* open_model(const m3vit_options* o = nullptr) {
  m3vit_model* m = nullptr;
  EXPECT_EQ(m3vit_open(model_path().c_str(), o, &m), M3VIT_OK) << m3vit_last_error();
  return m;
}

struct Sizes {
  size_t in = 0, out = 0;
};
Sizes sizes(m3vit_model* m, int task) {
  int c = 0, h = 0, w = 0, k = 0;
  EXPECT_EQ(m3vit_input_size(m, &c, &h, &w), M3VIT_OK);
  EXPECT_EQ(m3vit_output_channels(m, task, &k), M3VIT_OK);
  return {static_cast<size_t>(c) * h * w, static_cast<size_t>(k) * h * w};
}

std::vector<float> sample_input(m3vit_model* m) {
  std::vector<float> x(sizes(m, 0).in);
  EXPECT_EQ(m3vit_load_image(m, sample_png().c_str(), 0, x.data(), x.size()), M3VIT_OK) << m3vit_last_error();
  return x;
}

std::vector<float> run_task(m3vit_model* m, int task, const std::vector<float>& x) {
  std::vector<float> y(sizes(m, task).out);
  EXPECT_EQ(m3vit_run(m, task, x.data(), x.size(), y.data(), y.size()), M3VIT_OK) << m3vit_last_error();
  return y;
}

// The status and that the calling thread's message is one line holding every part.
void expect_status(m3vit_status got, m3vit_status want, const std::vector<std::string>& parts) {
  EXPECT_EQ(got, want) << m3vit_status_name(got) << ": " << m3vit_last_error();
  const std::string msg = m3vit_last_error();
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(CApi, LogitsAndPicturesEqualTheCommandLineBitForBit) {
  m3vit_model* m = open_model();
  const std::vector<float> x = sample_input(m);
  for (const char* name : {"semseg", "normals"}) {
    int task = -1;
    ASSERT_EQ(m3vit_task_index(m, name, &task), M3VIT_OK);
    const std::vector<float> y = run_task(m, task, x);
    const m3vit::OwnedTensor want = m3vit::read_npy(fixture() + "/" + name + ".npy");  // [1, C, H, W]
    ASSERT_EQ(static_cast<size_t>(want.numel()), y.size()) << name;
    EXPECT_EQ(std::memcmp(want.bytes.data(), y.data(), y.size() * sizeof(float)), 0) << name << ": logits differ";
    const std::string png = m3vit::test_io::make_scratch_dir("api-picture") + "/" + name + ".png";
    ASSERT_EQ(m3vit_write_picture(m, task, y.data(), y.size(), png.c_str()), M3VIT_OK) << m3vit_last_error();
    EXPECT_EQ(read_bytes(png), read_bytes(fixture() + "/" + name + ".png")) << name << ": picture differs";
  }
  m3vit_close(m);
}

// M3VIT_INT8 runs the calibrated file as `m3vit run --precision int8` does; a precision that does not
// match the file is refused, naming it (on a CPU without VNNI, int8 itself is).
TEST(CApi, Int8EqualsTheCommandLineBitForBit) {
  const std::string q8 = fixture() + "/int8.safetensors";
  m3vit_options o;
  m3vit_options_init(&o);
  o.precision = M3VIT_INT8;
  o.threads = 2;
  m3vit_model* m = nullptr;
  if (!cpu_flag("avx512_vnni")) {
    expect_status(m3vit_open(model_path().c_str(), &o, &m), M3VIT_ERROR_CONFIG, {"int8", "AVX512-VNNI"});
    return;
  }
  ASSERT_EQ(m3vit_open(q8.c_str(), &o, &m), M3VIT_OK) << m3vit_last_error();
  int task = -1;
  ASSERT_EQ(m3vit_task_index(m, "semseg", &task), M3VIT_OK);
  const std::vector<float> y = run_task(m, task, sample_input(m));
  const m3vit::OwnedTensor want = m3vit::read_npy(fixture() + "/int8_semseg.npy");
  ASSERT_EQ(static_cast<size_t>(want.numel()), y.size());
  EXPECT_EQ(std::memcmp(want.bytes.data(), y.data(), y.size() * sizeof(float)), 0) << "int8 logits differ";
  m3vit_close(m);
  m = nullptr;
  expect_status(m3vit_open(model_path().c_str(), &o, &m), M3VIT_ERROR_CONFIG, {"model.safetensors", "m3vit calibrate"});
  EXPECT_EQ(m, nullptr);
  o.precision = M3VIT_FP32;
  expect_status(m3vit_open(q8.c_str(), &o, &m), M3VIT_ERROR_CONFIG, {"int8.safetensors", "--precision int8"});
  EXPECT_EQ(m, nullptr);
}

TEST(CApi, ModelQueries) {
  m3vit_model* m = open_model();
  int c = 0, h = 0, w = 0;
  ASSERT_EQ(m3vit_input_size(m, &c, &h, &w), M3VIT_OK);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(h, 96);  // configs/tiny_synthetic.yaml
  EXPECT_EQ(w, 96);
  ASSERT_EQ(m3vit_task_count(m), 6);
  for (int t = 0; t < 6; ++t) EXPECT_STREQ(m3vit_task_name(m, t), kTasks[t]);
  EXPECT_EQ(m3vit_task_name(m, 6), nullptr);
  EXPECT_EQ(m3vit_task_name(m, -1), nullptr);
  int k = 0;
  ASSERT_EQ(m3vit_output_channels(m, 0, &k), M3VIT_OK);
  EXPECT_EQ(k, 8);  // synthetic semseg: 8 classes
  ASSERT_EQ(m3vit_output_channels(m, 3, &k), M3VIT_OK);
  EXPECT_EQ(k, 3);  // normals
  const std::string js = m3vit_config_json(m);
  EXPECT_NE(js.find("\"moe_experts\""), std::string::npos) << js;
  m3vit_close(m);
}

// The libtorch model's routing of the same image (`m3vit trace`) is the oracle. Near-ties between the
// k-th and the next expert may flip under fp32 rounding; none occur on this image, so every token
// must agree.
// The prediction maps against loops written here over the command line's logits.
TEST(CApi, PredictionMaps) {
  m3vit_model* m = open_model();
  const int plane = 96 * 96;
  const m3vit::OwnedTensor seg = m3vit::read_npy(fixture() + "/semseg.npy");  // [1, 8, 96, 96]
  const auto* l = reinterpret_cast<const float*>(seg.bytes.data());
  int c = 0;
  ASSERT_EQ(m3vit_prediction_channels(m, 0, &c), M3VIT_OK);
  EXPECT_EQ(c, 1);
  std::vector<float> ids(plane);
  ASSERT_EQ(m3vit_predict(m, 0, l, seg.numel(), ids.data(), ids.size()), M3VIT_OK) << m3vit_last_error();
  int wrong = 0;
  for (int p = 0; p < plane; ++p) {
    int best = 0;
    for (int k = 1; k < 8; ++k) best = l[k * plane + p] > l[best * plane + p] ? k : best;
    wrong += ids[p] != best;
  }
  EXPECT_EQ(wrong, 0);
  const m3vit::OwnedTensor nrm = m3vit::read_npy(fixture() + "/normals.npy");  // [1, 3, 96, 96]
  std::vector<float> n(3 * plane);
  ASSERT_EQ(m3vit_prediction_channels(m, 3, &c), M3VIT_OK);
  EXPECT_EQ(c, 3);
  ASSERT_EQ(m3vit_predict(m, 3, reinterpret_cast<const float*>(nrm.bytes.data()), nrm.numel(), n.data(), n.size()),
            M3VIT_OK);
  double worst = 0;
  for (int p = 0; p < plane; ++p)
    worst = std::max(worst, std::abs(std::hypot(n[p], n[plane + p], n[2 * plane + p]) - 1.0));
  EXPECT_LT(worst, 1e-6) << "normals are not unit vectors";
  expect_status(m3vit_predict(m, 3, reinterpret_cast<const float*>(nrm.bytes.data()), nrm.numel(), n.data(), plane),
                M3VIT_ERROR_ARGUMENT, {"prediction holds", "[3, 96, 96] for task normals"});
  m3vit_close(m);
}

// A picture in memory gives the input m3vit_load_image makes from the file.
TEST(CApi, ImageInMemory) {
  m3vit_model* m = open_model();
  const m3vit::Image8 img = m3vit::read_image(sample_png(), 3);
  std::vector<float> x(sizes(m, 0).in);
  ASSERT_EQ(m3vit_image_to_input(m, img.pixels.data(), img.height, img.width, 0, x.data(), x.size()), M3VIT_OK)
      << m3vit_last_error();
  EXPECT_EQ(x, sample_input(m));
  const std::vector<uint8_t> small(32 * 48 * 3, 200);
  expect_status(m3vit_image_to_input(m, small.data(), 32, 48, 0, x.data(), x.size()), M3VIT_ERROR_SHAPE,
                {"is 48x32 but model tiny_synthetic takes 96x96", "resize = 1"});
  EXPECT_EQ(m3vit_image_to_input(m, small.data(), 32, 48, 1, x.data(), x.size()), M3VIT_OK);
  expect_status(m3vit_image_to_input(m, small.data(), 0, 48, 1, x.data(), x.size()), M3VIT_ERROR_ARGUMENT,
                {"out of range"});
  m3vit_close(m);
}

TEST(CApi, RoutingMatchesTheLibtorchModel) {
  m3vit_model* m = open_model();
  int layers = 0, tokens = 0, k = 0;
  ASSERT_EQ(m3vit_routing_shape(m, &layers, &tokens, &k), M3VIT_OK);
  std::vector<int32_t> ids(static_cast<size_t>(layers) * tokens * k);
  expect_status(m3vit_last_routing(m, ids.data(), ids.size()), M3VIT_ERROR_ARGUMENT, {"no run"});
  run_task(m, 0, sample_input(m));
  ASSERT_EQ(m3vit_last_routing(m, ids.data(), ids.size()), M3VIT_OK) << m3vit_last_error();
  const m3vit::SafeTensorsFile trace(fixture() + "/trace.safetensors");
  const m3vit::TensorView& want = trace.get("topk_idx");  // [images, layers, tokens, k]
  ASSERT_EQ(want.shape, (std::vector<int64_t>{1, layers, tokens, k}));
  EXPECT_EQ(tokens, 1 + 6 * 6);  // cls + the 96/16 x 96/16 grid
  const auto* w = static_cast<const int32_t*>(want.data);
  int differ = 0;
  for (size_t i = 0; i < ids.size(); i += k) differ += std::memcmp(w + i, ids.data() + i, k * sizeof(int32_t)) != 0;
  EXPECT_EQ(differ, 0) << "tokens routed differently from the libtorch model";
  expect_status(m3vit_last_routing(m, ids.data(), ids.size() - 1), M3VIT_ERROR_ARGUMENT,
                {"expert_ids holds", std::to_string(ids.size())});
  m3vit_close(m);
}

TEST(CApi, TimingsOfTheLastRunAndStreaming) {
  m3vit_timings t;
  m3vit_timings_init(&t);
  m3vit_model* m = open_model();
  expect_status(m3vit_last_timings(m, &t), M3VIT_ERROR_ARGUMENT, {"no run on this model yet"});
  const std::vector<float> x = sample_input(m), resident = run_task(m, 0, x);
  ASSERT_EQ(m3vit_last_timings(m, &t), M3VIT_OK);
  EXPECT_GT(t.total_ms, 0);
  const double stages = t.embed_ms + t.attention_ms + t.mlp_ms + t.moe_ms + t.head_ms;
  EXPECT_GT(stages, 0);
  EXPECT_LE(stages, t.total_ms * 1.001 + 0.01);
  EXPECT_GT(t.experts_computed, 0);
  EXPECT_EQ(t.stream_loads, 0);
  m3vit_close(m);

  m3vit_options o;
  m3vit_options_init(&o);
  o.experts = M3VIT_STREAM;
  o.layers = M3VIT_STREAM;
  m = open_model(&o);
  EXPECT_EQ(run_task(m, 0, x), resident) << "streamed weights must give the resident logits bit for bit";
  ASSERT_EQ(m3vit_last_timings(m, &t), M3VIT_OK);
  EXPECT_GT(t.stream_loads, 0);
  EXPECT_GT(t.stream_bytes_read, 0);
  m3vit_close(m);
}

TEST(CApi, OptionsStructsOfOtherVersions) {
  // A newer caller's struct is longer: the fields this version knows are read, the rest ignored.
  struct Longer {
    m3vit_options o;
    char appended[16];
  } longer;
  m3vit_options_init(&longer.o);
  longer.o.struct_size = sizeof longer;
  longer.o.threads = 1;
  m3vit_model* m = open_model(&longer.o);
  ASSERT_NE(m, nullptr);
  m3vit_close(m);
  m3vit_options o;
  m3vit_options_init(&o);
  o.struct_size = 8;
  m = reinterpret_cast<m3vit_model*>(1);
  expect_status(m3vit_open(model_path().c_str(), &o, &m), M3VIT_ERROR_ARGUMENT, {"options.struct_size is 8"});
  EXPECT_EQ(m, nullptr) << "a failed open leaves no handle";
}

TEST(CApi, EveryErrorNamesTheFaultAndKeepsTheHandleUsable) {
  const std::string dir = m3vit::test_io::make_scratch_dir("api-errors");
  m3vit_model* bad = nullptr;
  expect_status(m3vit_open((dir + "/nope.safetensors").c_str(), nullptr, &bad), M3VIT_ERROR_IO, {"nope.safetensors"});
  expect_status(m3vit_open(nullptr, nullptr, &bad), M3VIT_ERROR_ARGUMENT, {"path is NULL"});
  expect_status(m3vit_open(model_path().c_str(), nullptr, nullptr), M3VIT_ERROR_ARGUMENT, {"model is NULL"});
  std::vector<uint8_t> bytes = read_bytes(model_path());
  bytes.resize(bytes.size() / 2);
  m3vit::test_io::write_bytes(dir + "/cut.safetensors", bytes);
  expect_status(m3vit_open((dir + "/cut.safetensors").c_str(), nullptr, &bad), M3VIT_ERROR_FORMAT, {"cut.safetensors"});
  m3vit_options o;
  m3vit_options_init(&o);
  o.experts = static_cast<m3vit_residency>(7);
  expect_status(m3vit_open(model_path().c_str(), &o, &bad), M3VIT_ERROR_ARGUMENT, {"options.experts is 7"});
  m3vit_options_init(&o);
  o.threads = -2;
  expect_status(m3vit_open(model_path().c_str(), &o, &bad), M3VIT_ERROR_ARGUMENT, {"options.threads is -2"});
  EXPECT_EQ(bad, nullptr);

  m3vit_model* m = open_model();
  const std::vector<float> x = sample_input(m);
  std::vector<float> y(sizes(m, 0).out);
  int task = 0;
  expect_status(m3vit_task_index(m, "segm", &task), M3VIT_ERROR_CONFIG, {"unknown task 'segm'", "semseg"});
  expect_status(m3vit_run(m, 6, x.data(), x.size(), y.data(), y.size()), M3VIT_ERROR_ARGUMENT,
                {"task index 6 is out of range", "6 tasks"});
  expect_status(m3vit_run(m, 0, x.data(), x.size() - 1, y.data(), y.size()), M3VIT_ERROR_ARGUMENT,
                {"image holds 27647 floats", "27648", "[3, 96, 96]"});
  expect_status(m3vit_run(m, 0, x.data(), x.size(), y.data(), y.size() + 1), M3VIT_ERROR_ARGUMENT,
                {"logits holds", "[8, 96, 96] for task semseg"});
  expect_status(m3vit_run(m, 0, nullptr, x.size(), y.data(), y.size()), M3VIT_ERROR_ARGUMENT, {"image is NULL"});
  std::vector<float> nan_x = x;
  nan_x[5] = std::numeric_limits<float>::quiet_NaN();
  expect_status(m3vit_run(m, 0, nan_x.data(), nan_x.size(), y.data(), y.size()), M3VIT_ERROR_NUMERIC, {"input image"});
  std::vector<float> img(x.size());
  expect_status(m3vit_load_image(m, (dir + "/none.png").c_str(), 0, img.data(), img.size()), M3VIT_ERROR_IO,
                {"none.png"});
  // A 48x32 picture: the wrong size for this 96x96 model unless resized.
  const std::string small_png = dir + "/small.png";
  m3vit::write_png(small_png, {48, 32, 3, std::vector<uint8_t>(48 * 32 * 3, 128)});
  expect_status(m3vit_load_image(m, small_png.c_str(), 0, img.data(), img.size()), M3VIT_ERROR_SHAPE,
                {"is 48x32 but model tiny_synthetic takes 96x96"});
  EXPECT_EQ(m3vit_load_image(m, small_png.c_str(), 1, img.data(), img.size()), M3VIT_OK) << m3vit_last_error();
  expect_status(m3vit_write_picture(m, 0, y.data(), y.size(), (dir + "/no/such/dir/p.png").c_str()), M3VIT_ERROR_IO,
                {"p.png"});
  // After all that, the handle still runs and gives the command line's logits.
  const std::vector<float> again = run_task(m, 0, x);
  const m3vit::OwnedTensor want = m3vit::read_npy(fixture() + "/semseg.npy");
  EXPECT_EQ(std::memcmp(want.bytes.data(), again.data(), again.size() * sizeof(float)), 0);
  m3vit_close(m);
  m3vit_close(nullptr);  // ignored
  fs::remove_all(dir);
}

TEST(CApi, LastErrorIsPerThread) {
  m3vit_model* bad = nullptr;
  ASSERT_NE(m3vit_open("/nonexistent/a.safetensors", nullptr, &bad), M3VIT_OK);
  std::string other = "unset";
  std::thread([&] {
    other = m3vit_last_error();
    m3vit_open("/nonexistent/b.safetensors", nullptr, &bad);
  }).join();
  EXPECT_EQ(other, "") << "a new thread starts with no error";
  EXPECT_NE(std::string(m3vit_last_error()).find("a.safetensors"), std::string::npos) << m3vit_last_error();
}

// Runs on one handle from two threads take turns and each gets the serial result.
TEST(CApi, OneHandleFromTwoThreads) {
  m3vit_options o;
  m3vit_options_init(&o);
  o.threads = 1;
  m3vit_model* m = open_model(&o);
  const std::vector<float> x = sample_input(m);
  const std::vector<float> semseg = run_task(m, 0, x), normals = run_task(m, 3, x);
  int wrong = 0;
  auto worker = [&](int task, const std::vector<float>& want) {
    for (int i = 0; i < 6; ++i) {
      std::vector<float> y(want.size());
      if (m3vit_run(m, task, x.data(), x.size(), y.data(), y.size()) != M3VIT_OK || y != want) ++wrong;
    }
  };
  std::thread a(worker, 0, std::cref(semseg)), b(worker, 3, std::cref(normals));
  a.join();
  b.join();
  EXPECT_EQ(wrong, 0);
  m3vit_close(m);
}

TEST(CApi, VersionAndFeatures) {
  EXPECT_STREQ(m3vit_version(), M3VIT_VERSION_STRING);  // the library is the one the header describes
  EXPECT_EQ(m3vit_version_number(), M3VIT_VERSION_NUMBER);
  EXPECT_EQ(m3vit_export_format_version(), M3VIT_EXPORT_FORMAT_VERSION);
  const std::string f = std::string(" ") + m3vit_features() + " ";
  EXPECT_NE(f.find(" fp32 "), std::string::npos) << f;
  std::ifstream cpu("/proc/cpuinfo");
  const std::string info((std::istreambuf_iterator<char>(cpu)), std::istreambuf_iterator<char>());
  EXPECT_EQ(f.find(" bf16 ") != std::string::npos, info.find("avx512_bf16") != std::string::npos) << f;
  EXPECT_EQ(f.find(" avx512 ") != std::string::npos, info.find("avx512f") != std::string::npos) << f;
  EXPECT_EQ(f.find(" int8 ") != std::string::npos, info.find("avx512_vnni") != std::string::npos) << f;
  EXPECT_STREQ(m3vit_status_name(M3VIT_ERROR_SHAPE), "shape");
}

TEST(CppApi, WrapsTheCApi) {
  m3vit::api::Model model(model_path());
  EXPECT_EQ(model.tasks(), std::vector<std::string>(std::begin(kTasks), std::end(kTasks)));
  EXPECT_EQ(model.height(), 96);
  EXPECT_EQ(model.output_channels(model.task("normals")), 3);
  const std::vector<float> x = model.load_image(sample_png());
  const std::vector<float> y = model.run(model.task("semseg"), x);
  const m3vit::OwnedTensor want = m3vit::read_npy(fixture() + "/semseg.npy");
  ASSERT_EQ(y.size() * sizeof(float), want.bytes.size());
  EXPECT_EQ(std::memcmp(want.bytes.data(), y.data(), want.bytes.size()), 0);
  EXPECT_GT(model.last_timings().total_ms, 0);
  const m3vit::api::Routing r = model.last_routing();
  EXPECT_EQ(r.ids.size(), static_cast<size_t>(r.moe_layers) * r.tokens * r.k);
  EXPECT_GE(r.expert(0, 0, 0), 0);
  try {
    model.task("segm");
    ADD_FAILURE() << "no error for an unknown task";
  } catch (const m3vit::api::Error& e) {
    EXPECT_EQ(e.status(), M3VIT_ERROR_CONFIG);
    EXPECT_NE(std::string(e.what()).find("unknown task 'segm'"), std::string::npos) << e.what();
  }
  m3vit::api::Model moved = std::move(model);
  EXPECT_EQ(moved.run(0, x), y);
  EXPECT_THROW(m3vit::api::Model("/nonexistent.safetensors"), m3vit::api::Error);
}

}  // namespace
