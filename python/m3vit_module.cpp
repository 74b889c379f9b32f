// The Python module `m3vit` (docs/PYTHON.md): the runtime's C API (include/m3vit/m3vit.h) as one
// class, Runtime, with numpy arrays in and out. The module only translates: Python arguments into
// the C API's options, indices and buffers; its statuses into Python exceptions. Every number comes
// from libm3vit, so `rt.run` gives the logits `m3vit run --save-logits` writes, bit for bit.
//
// Threads: the GIL is released while the library works (opening, image conversion, runs,
// predictions), so Runtimes in several Python threads compute at the same time. Runs on one Runtime
// take turns inside the library (a lock per handle).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <m3vit/m3vit.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

// ---------------------------------------------------------------------------------------------
// Errors: a failed C call becomes a Python exception carrying the library's one-line message.

// The exception class for a status. The C API's IO status covers "missing", "unreadable" and
// "unwritable"; Python code expects FileNotFoundError for the first, so a missing `path` (the file
// the call read) picks it. The caller's data at fault (a shape, a task name, a NaN, a malformed
// file) is a ValueError, as a Python function would raise it; the rest is the library's own trouble.
PyObject* exception_for(m3vit_status status, const std::string* path) {
  switch (status) {
    case M3VIT_ERROR_IO: {
      std::error_code ec;
      return path && !std::filesystem::exists(*path, ec) ? PyExc_FileNotFoundError : PyExc_OSError;
    }
    case M3VIT_ERROR_ARGUMENT:
    case M3VIT_ERROR_SHAPE:
    case M3VIT_ERROR_CONFIG:
    case M3VIT_ERROR_FORMAT:
    case M3VIT_ERROR_NUMERIC:
      return PyExc_ValueError;
    default:
      return PyExc_RuntimeError;
  }
}

// Raises for a failed status; call it with the GIL held. m3vit_last_error() is per thread and the
// C call ran on this same thread (releasing the GIL does not move it), so it is this call's message.
void check(m3vit_status status, const std::string* path = nullptr) {
  if (status == M3VIT_OK) return;
  PyErr_SetString(exception_for(status, path), m3vit_last_error());
  throw py::error_already_set();
}

std::string type_name(py::handle h) { return py::str(py::type::handle_of(h).attr("__name__")); }

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// operator.index(v): a Python int from an int or anything with __index__ (numpy.int64, ...).
py::int_ as_index(py::handle v) {
  PyObject* n = PyNumber_Index(v.ptr());
  if (!n) throw py::error_already_set();  // its __index__ raised
  return py::reinterpret_steal<py::int_>(n);
}

// ---------------------------------------------------------------------------------------------
// Options: the keyword arguments of Runtime(...) as an m3vit_options.

m3vit_residency residency(const std::string& word, const char* arg) {
  if (word == "resident") return M3VIT_RESIDENT;
  if (word == "stream") return M3VIT_STREAM;
  throw py::value_error(std::string(arg) + "='" + word + "': use 'resident' or 'stream'");
}

m3vit_precision precision(const std::string& word) {
  if (word == "fp32") return M3VIT_FP32;
  if (word == "bf16") return M3VIT_BF16;
  if (word == "int8") return M3VIT_INT8;
  throw py::value_error("precision='" + word + "': use 'fp32', 'bf16' or 'int8'");
}

// threads= and memory_budget=: None means the library's default (the C API's 0); otherwise a whole
// number from 1 to `max`. Python's convention: the wrong type is a TypeError, a bad value a ValueError.
long long count_or_default(py::handle v, const char* arg, long long max, const char* none_means) {
  if (v.is_none()) return 0;
  if (py::isinstance<py::bool_>(v) || !PyIndex_Check(v.ptr()))
    throw py::type_error(std::string(arg) + " must be an int or None, not " + type_name(v));
  const py::int_ n = as_index(v);
  // Compared as Python ints, before the cast: a huge value must not wrap around.
  if (n < py::int_(1))
    throw py::value_error(std::string(arg) + "=" + std::string(py::repr(n)) + ": use None (" + none_means +
                          ") or a number >= 1");
  if (n > py::int_(max))
    throw py::value_error(std::string(arg) + "=" + std::string(py::repr(n)) + " is too large (at most " +
                          std::to_string(max) + ")");
  return n.cast<long long>();
}

// ---------------------------------------------------------------------------------------------
// Runtime: one opened model (an m3vit_model handle) and what the C API does with it.

class Runtime {
 public:
  Runtime(const py::object& path, const std::string& experts, const std::string& layers, const std::string& prec,
          const py::object& threads, const py::object& memory_budget) {
    // os.fspath: a str, bytes or pathlib.Path, as open() takes it.
    const std::string file = py::module_::import("os").attr("fspath")(path).cast<std::string>();
    m3vit_options o;
    m3vit_options_init(&o);
    o.experts = residency(experts, "experts");
    o.layers = residency(layers, "layers");
    o.precision = precision(prec);
    o.threads = static_cast<int>(count_or_default(threads, "threads", INT_MAX, "all cores"));
    o.memory_budget = static_cast<size_t>(count_or_default(memory_budget, "memory_budget", LLONG_MAX, "the default"));
    m3vit_status s;
    {
      py::gil_scoped_release nogil;  // opening checks and packs every weight: seconds for a large model
      s = m3vit_open(file.c_str(), &o, &model_);
    }
    check(s, &file);
    path_ = file;
    // A constructor that throws runs no destructor: close the handle before raising.
    s = m3vit_input_size(model_, &channels_, &height_, &width_);
    if (s != M3VIT_OK) m3vit_close(std::exchange(model_, nullptr));
    check(s);
  }
  ~Runtime() { m3vit_close(model_); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  std::vector<std::string> tasks() const {
    std::vector<std::string> names;
    for (int t = 0; t < m3vit_task_count(model_); ++t) names.emplace_back(m3vit_task_name(model_, t));
    return names;
  }

  // A new dict on each access, so a caller who edits it changes nothing here.
  py::dict config() const { return py::module_::import("json").attr("loads")(m3vit_config_json(model_)); }

  py::tuple input_size() const { return py::make_tuple(height_, width_); }

  py::array_t<float> run(const py::object& x, const py::object& task, bool resize) {
    return run_task(task_index(task), x, resize);
  }

  // The task's map: int64 class ids [H, W] for the tasks with class logits (semseg, human_parts),
  // float32 unit normals [3, H, W], float32 probabilities or depth [H, W] for the one-channel tasks.
  py::array predict(const py::object& x, const py::object& task, bool resize) {
    const int t = task_index(task);
    const py::array_t<float> logits = run_task(t, x, resize);
    int map_channels = 0;
    check(m3vit_prediction_channels(model_, t, &map_channels));
    std::vector<py::ssize_t> shape{height_, width_};
    if (map_channels > 1) shape.insert(shape.begin(), map_channels);
    py::array_t<float> map(shape);
    float* out = map.mutable_data();
    m3vit_status s;
    {
      py::gil_scoped_release nogil;
      s = m3vit_predict(model_, t, logits.data(), logits.size(), out, map.size());
    }
    check(s);
    // The C API returns class ids as floats (one buffer type for every task); they are ids in
    // Python. A task has class ids when several logit channels become one map channel (the argmax).
    if (logits.shape(0) > 1 && map_channels == 1) return map.attr("astype")(py::dtype::of<int64_t>());
    return map;
  }

  // [moe_layers, tokens, k] int32: the experts each token went to in the last run, best first.
  py::array_t<int32_t> last_routing() const {
    int layers = 0, tokens = 0, k = 0;
    check(m3vit_routing_shape(model_, &layers, &tokens, &k));
    py::array_t<int32_t> ids({layers, tokens, k});
    check(m3vit_last_routing(model_, ids.mutable_data(), ids.size()));
    return ids;
  }

  py::dict last_timings() const {
    m3vit_timings t;
    m3vit_timings_init(&t);
    check(m3vit_last_timings(model_, &t));
    py::dict d;
    d["embed_ms"] = t.embed_ms;
    d["attention_ms"] = t.attention_ms;
    d["mlp_ms"] = t.mlp_ms;
    d["moe_ms"] = t.moe_ms;
    d["head_ms"] = t.head_ms;
    d["total_ms"] = t.total_ms;
    d["experts_computed"] = t.experts_computed;
    d["stream_loads"] = t.stream_loads;
    d["stream_bytes_read"] = t.stream_bytes_read;
    d["stream_wait_ms"] = t.stream_wait_ms;
    return d;
  }

  std::string repr() const {
    return "<m3vit.Runtime '" + path_ + "' " + std::to_string(height_) + "x" + std::to_string(width_) + ", tasks: " +
           task_list() + ">";
  }

 private:
  std::string task_list() const {
    std::string names;
    for (const auto& t : tasks()) names += (names.empty() ? "" : ", ") + t;
    return names;
  }

  // A task name (str) or index (int, or anything with __index__ such as numpy.int64).
  int task_index(const py::object& task) const {
    if (py::isinstance<py::str>(task)) {
      int t = -1;
      check(m3vit_task_index(model_, task.cast<std::string>().c_str(), &t));  // names the known tasks
      return t;
    }
    if (py::isinstance<py::bool_>(task) || !PyIndex_Check(task.ptr()))
      throw py::type_error("task must be a task name (str) or an index (int), not " + type_name(task));
    const py::int_ n = as_index(task);
    const int count = m3vit_task_count(model_);
    if (n < py::int_(0) || n >= py::int_(count))
      throw py::value_error("task=" + std::string(py::repr(n)) + " is out of range: the model has " +
                            std::to_string(count) + " tasks (" + task_list() + ")");
    return n.cast<int>();
  }

  py::array_t<float> run_task(int task, const py::object& x, bool resize) {
    const py::array_t<float> image = input(x, resize);
    int classes = 0;
    check(m3vit_output_channels(model_, task, &classes));
    py::array_t<float> logits({classes, height_, width_});
    float* out = logits.mutable_data();
    m3vit_status s;
    {
      py::gil_scoped_release nogil;  // `image` and `logits` are held by this frame until the run ends
      s = m3vit_run(model_, task, image.data(), image.size(), out, logits.size());
    }
    check(s);
    return logits;
  }

  // The model's input [3, H, W] float32, normalised, from what the caller passed:
  //   uint8 [H, W, 3]            an RGB picture: m3vit_image_to_input scales and normalises it as
  //                              `m3vit run --image` does (another size: only with resize=True)
  //   floating [3, H, W] or [1, 3, H, W]
  //                              the normalised tensor itself. float32 and C-contiguous is used in
  //                              place (no copy); other float types and strided views are copied
  //                              into a float32 C-contiguous array first.
  // Anything numpy.asarray takes is accepted (a CPU torch tensor too, though `t.numpy()` is plainer).
  py::array_t<float> input(const py::object& x, bool resize) const {
    const py::array a = py::array::ensure(x);
    if (!a) throw py::type_error("x must be a numpy array (or array-like), not " + type_name(x));
    const char kind = a.dtype().kind();
    if (kind == 'u' && a.itemsize() == 1) return image_input(a, resize);
    if (kind != 'f')
      throw py::value_error("x has dtype " + std::string(py::str(a.dtype())) +
                            ": pass a uint8 RGB image [H, W, 3] or a normalised float tensor [3, H, W]");
    if (resize)
      throw py::value_error("resize=True scales a uint8 image; a float tensor x must already be [3, " +
                            std::to_string(height_) + ", " + std::to_string(width_) + "]");
    const bool batch_of_one = a.ndim() == 4 && a.shape(0) == 1;
    const py::ssize_t first = batch_of_one ? 1 : 0;
    if ((a.ndim() != 3 && !batch_of_one) || a.shape(first) != channels_ || a.shape(first + 1) != height_ ||
        a.shape(first + 2) != width_)
      throw py::value_error("x has shape " + shape_str(a) + "; a float tensor must be [" + std::to_string(channels_) +
                            ", " + std::to_string(height_) + ", " + std::to_string(width_) + "] or [1, " +
                            std::to_string(channels_) + ", " + std::to_string(height_) + ", " +
                            std::to_string(width_) + "] (normalised)");
    // No copy when `a` already is float32 and C-contiguous (numpy returns the same array).
    return py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  }

  py::array_t<float> image_input(const py::array& a, bool resize) const {
    if (a.ndim() != 3 || a.shape(2) != 3)
      throw py::value_error("x has shape " + shape_str(a) + "; a uint8 image must be [height, width, 3] (RGB)");
    if (a.shape(0) > INT_MAX || a.shape(1) > INT_MAX)
      throw py::value_error("x has shape " + shape_str(a) + ": too large for an image");
    const auto rgb = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
    const int h = static_cast<int>(a.shape(0)), w = static_cast<int>(a.shape(1));
    py::array_t<float> image({channels_, height_, width_});
    float* out = image.mutable_data();
    m3vit_status s;
    {
      py::gil_scoped_release nogil;  // a bilinear resize of a large photo takes a while
      s = m3vit_image_to_input(model_, rgb.data(), h, w, resize ? 1 : 0, out, image.size());
    }
    check(s);
    return image;
  }

  m3vit_model* model_ = nullptr;
  int channels_ = 0, height_ = 0, width_ = 0;
  std::string path_;
};

// "fp32 bf16 avx512" -> ("fp32", "bf16", "avx512"): `"bf16" in m3vit.features` tests a whole word.
py::tuple feature_words() {
  std::istringstream in(m3vit_features());
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return py::cast(words).cast<py::tuple>();
}

}  // namespace

PYBIND11_MODULE(m3vit, m) {
  m.doc() =
      "M3ViT mixture-of-experts vision transformer: the libm3vit inference runtime (CPU, no libtorch).\n\n"
      "    rt = m3vit.Runtime('model.safetensors')\n"
      "    logits = rt.run(image, 'semseg')     # image: uint8 [H, W, 3] or normalised float32 [3, H, W]\n"
      "    classes = rt.predict(image, 'semseg')\n\n"
      "See docs/PYTHON.md.";
  m.attr("__version__") = m3vit_version();
  m.attr("features") = feature_words();

  py::class_<Runtime>(m, "Runtime",
                      "An exported model (`m3vit export`), opened once and run many times. Runs on one Runtime\n"
                      "take turns; open one Runtime per thread to run in parallel.")
      .def(py::init<const py::object&, const std::string&, const std::string&, const std::string&, const py::object&,
                    const py::object&>(),
           py::arg("path"), py::kw_only(), py::arg("experts") = "resident", py::arg("layers") = "resident",
           py::arg("precision") = "fp32", py::arg("threads") = py::none(), py::arg("memory_budget") = py::none(),
           "Opens the export at `path`.\n\n"
           "experts, layers: 'resident' (packed in RAM) or 'stream' (read from the file as needed).\n"
           "precision: 'fp32', 'bf16' (needs AVX512-BF16) or 'int8' (AVX512-VNNI; the file of `m3vit calibrate`).\n"
           "threads: None for all cores, or a number >= 1.\n"
           "memory_budget: bytes for the stream buffers; None for two of the largest load.")
      .def_property_readonly("tasks", &Runtime::tasks, "The model's task names, in index order.")
      .def_property_readonly("config", &Runtime::config, "The model's configuration (a new dict each time).")
      .def_property_readonly("input_size", &Runtime::input_size, "(height, width) of the model's input.")
      .def("run", &Runtime::run, py::arg("x"), py::arg("task"), py::kw_only(), py::arg("resize") = false,
           "Logits [C, H, W] float32 of `task` (a name or an index) for `x`: a uint8 RGB image [H, W, 3]\n"
           "(resize=True scales another size bilinearly) or a normalised float tensor [3, H, W] or\n"
           "[1, 3, H, W] (float32 C-contiguous is read in place; other floats and views are copied).")
      .def("predict", &Runtime::predict, py::arg("x"), py::arg("task"), py::kw_only(), py::arg("resize") = false,
           "The task's prediction for `x` (as run): int64 class ids [H, W] (semseg, human_parts),\n"
           "float32 unit normals [3, H, W], float32 probabilities [H, W] (sal, edge), float32 depth [H, W].")
      .def("last_routing", &Runtime::last_routing,
           "int32 [moe_layers, tokens, k]: the experts each token (cls first) went to in the last run.")
      .def("last_timings", &Runtime::last_timings, "Milliseconds per stage of the last run, and streaming counts.")
      .def("__repr__", &Runtime::repr);
}
