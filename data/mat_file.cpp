// libmatio wrappers for LabelMap matrices and PASCAL-Part `anno` structs (data/mat_file.h).
#include "data/mat_file.h"

#include <matio.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "common/errors.h"
#include "common/fileutil.h"
#include "data/mat5_layout.h"
#include "io/mapped_file.h"

namespace m3vit {

namespace {

std::mutex g_mat_mutex;
thread_local std::string g_last_message;

// matio reports problems through a log hook; keep the last message for our error text instead of
// letting it print to stderr.
void quiet_log(int /*level*/, char* message) { g_last_message = message ? message : ""; }

void init_matio_log() {
  static std::once_flag once;
  std::call_once(once, [] { Mat_LogInitFunc("m3vit", quiet_log); });
}

std::string last_message() { return g_last_message.empty() ? "" : " (" + g_last_message + ")"; }

struct MatCloser {
  void operator()(mat_t* m) const {
    if (m) Mat_Close(m);
  }
};
struct VarFreer {
  void operator()(matvar_t* v) const {
    if (v) Mat_VarFree(v);
  }
};
using MatPtr = std::unique_ptr<mat_t, MatCloser>;
using VarPtr = std::unique_ptr<matvar_t, VarFreer>;

MatPtr open_for_read(const std::string& path) {
  if (!file_exists(path)) throw IoError(".mat file " + path + ": no such file");
  // libmatio trusts the sizes in the file (data/mat5_layout.h): its layout is checked first.
  // (Mapped, not copied: libmatio then reads the same pages from the page cache.)
  const MappedFile file(path);
  check_mat5_layout(file.data(), file.size(), ".mat file " + path);
  g_last_message.clear();
  MatPtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) throw FormatError(".mat file " + path + ": not a readable MATLAB file" + last_message());
  return mat;
}

// Elements of a variable; dims come from the file, so the product is checked (kMaxMatElements).
size_t numel(const matvar_t* v) {
  size_t n = 1;
  for (int i = 0; i < v->rank; ++i)
    if (__builtin_mul_overflow(n, v->dims[i], &n) || n > kMaxMatElements)
      throw FormatError(std::string("variable '") + (v->name ? v->name : "?") + "' declares more than " +
                        std::to_string(kMaxMatElements) + " elements");
  return n;
}

bool is_numeric(const matvar_t* v) {
  return v->class_type >= MAT_C_DOUBLE && v->class_type <= MAT_C_UINT64;
}

// Element i of a real numeric variable as double.
double element(const matvar_t* v, size_t i) {
  const void* d = v->data;
  switch (v->data_type) {
    case MAT_T_DOUBLE: return static_cast<const double*>(d)[i];
    case MAT_T_SINGLE: return static_cast<const float*>(d)[i];
    case MAT_T_INT8: return static_cast<const int8_t*>(d)[i];
    case MAT_T_UINT8: return static_cast<const uint8_t*>(d)[i];
    case MAT_T_INT16: return static_cast<const int16_t*>(d)[i];
    case MAT_T_UINT16: return static_cast<const uint16_t*>(d)[i];
    case MAT_T_INT32: return static_cast<const int32_t*>(d)[i];
    case MAT_T_UINT32: return static_cast<const uint32_t*>(d)[i];
    case MAT_T_INT64: return static_cast<double>(static_cast<const int64_t*>(d)[i]);
    case MAT_T_UINT64: return static_cast<double>(static_cast<const uint64_t*>(d)[i]);
    default: return 0.0;
  }
}

bool supported_numeric_type(const matvar_t* v) {
  switch (v->data_type) {
    case MAT_T_DOUBLE: case MAT_T_SINGLE: case MAT_T_INT8: case MAT_T_UINT8: case MAT_T_INT16:
    case MAT_T_UINT16: case MAT_T_INT32: case MAT_T_UINT32: case MAT_T_INT64: case MAT_T_UINT64:
      return true;
    default:
      return false;
  }
}

// A real 2-D numeric variable to row-major doubles.
MatMatrix to_matrix(const matvar_t* v, const std::string& what) {
  if (!is_numeric(v) || v->isComplex || !v->data || !supported_numeric_type(v))
    throw FormatError(what + " is not a real numeric matrix");
  if (v->rank != 2) throw FormatError(what + " has " + std::to_string(v->rank) + " dimensions, expected 2");
  MatMatrix m;
  const size_t n = numel(v);  // <= kMaxMatElements, so both sides fit an int
  if (n * Mat_SizeOf(v->data_type) > v->nbytes)
    throw FormatError(what + " holds " + std::to_string(v->nbytes) + " bytes, fewer than its " +
                      std::to_string(v->dims[0]) + "x" + std::to_string(v->dims[1]) + " elements need");
  m.h = static_cast<int>(v->dims[0]);
  m.w = static_cast<int>(v->dims[1]);
  m.v.resize(n);
  for (int x = 0; x < m.w; ++x)
    for (int y = 0; y < m.h; ++y) m.v[static_cast<size_t>(y) * m.w + x] = element(v, static_cast<size_t>(x) * m.h + y);
  return m;
}

std::vector<uint8_t> to_mask(const matvar_t* v, const std::string& what, int* h, int* w) {
  MatMatrix m = to_matrix(v, what);
  *h = m.h;
  *w = m.w;
  std::vector<uint8_t> out(m.v.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = m.v[i] != 0.0;
  return out;
}

std::string to_string_var(const matvar_t* v, const std::string& what) {
  if (v->class_type != MAT_C_CHAR) throw FormatError(what + " is not a char array");
  const size_t n = numel(v);
  std::string s;
  if (!v->data) return s;
  const bool wide = v->data_size == 2 || v->data_type == MAT_T_UINT16 || v->data_type == MAT_T_UTF16;
  if (n * (wide ? 2 : 1) > v->nbytes) throw FormatError(what + " is shorter than its dimensions");
  for (size_t i = 0; i < n; ++i) {
    unsigned code = 0;
    if (wide)
      code = static_cast<const uint16_t*>(v->data)[i];
    else
      code = static_cast<const uint8_t*>(v->data)[i];
    s.push_back(static_cast<char>(code < 128 ? code : '?'));
  }
  return s;
}

matvar_t* field(matvar_t* st, const char* name, size_t index, const std::string& what, bool required = true) {
  matvar_t* f = Mat_VarGetStructFieldByName(st, name, index);
  if (!f && required) throw FormatError(what + ": no field '" + name + "'");
  return f;
}

// --- writing ---

matvar_t* make_char(const char* name, const std::string& s) {
  size_t dims[2] = {1, s.size()};
  return Mat_VarCreate(name, MAT_C_CHAR, MAT_T_UINT8, 2, dims, const_cast<char*>(s.data()), 0);
}

matvar_t* make_double_scalar(const char* name, double v) {
  size_t dims[2] = {1, 1};
  return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &v, 0);
}

matvar_t* make_mask(const char* name, int h, int w, const std::vector<uint8_t>& rowmajor) {
  std::vector<uint8_t> col(rowmajor.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) col[static_cast<size_t>(x) * h + y] = rowmajor[static_cast<size_t>(y) * w + x] ? 1 : 0;
  size_t dims[2] = {static_cast<size_t>(h), static_cast<size_t>(w)};
  return Mat_VarCreate(name, MAT_C_UINT8, MAT_T_UINT8, 2, dims, col.data(), 0);
}

// Structs are written uncompressed: libmatio 1.5.23 writes zlib-compressed nested struct arrays
// that scipy reads but libmatio itself does not read back (the nested field comes back NULL).
void write_vars(const std::string& path, const std::vector<matvar_t*>& vars, matio_compression compression) {
  std::vector<VarPtr> owned;
  for (matvar_t* v : vars) owned.emplace_back(v);
  for (matvar_t* v : vars)
    if (!v) throw IoError("cannot build a MATLAB variable for " + path + last_message());
  write_atomic(path, [&](const std::string& tmp) {
    MatPtr mat(Mat_CreateVer(tmp.c_str(), nullptr, MAT_FT_MAT5));
    if (!mat) throw IoError("cannot create .mat file " + path + last_message());
    for (matvar_t* v : vars)
      if (Mat_VarWrite(mat.get(), v, compression) != 0)
        throw IoError("cannot write variable '" + std::string(v->name) + "' to " + path + last_message());
  });
}

template <class T>
void write_matrix(const std::string& path, const std::string& name, int h, int w, const std::vector<T>& rowmajor,
                  matio_classes cls, matio_types type) {
  if (rowmajor.size() != static_cast<size_t>(h) * w)
    throw ShapeError("write .mat " + path + ": " + std::to_string(rowmajor.size()) + " values for " +
                     std::to_string(h) + "x" + std::to_string(w));
  std::vector<T> col(rowmajor.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) col[static_cast<size_t>(x) * h + y] = rowmajor[static_cast<size_t>(y) * w + x];
  size_t dims[2] = {static_cast<size_t>(h), static_cast<size_t>(w)};
  std::lock_guard<std::mutex> lock(g_mat_mutex);
  init_matio_log();
  write_vars(path, {Mat_VarCreate(name.c_str(), cls, type, 2, dims, col.data(), 0)}, MAT_COMPRESSION_ZLIB);
}

}  // namespace

MatMatrix read_mat_matrix(const std::string& path, const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mat_mutex);
  init_matio_log();
  MatPtr mat = open_for_read(path);
  VarPtr var(Mat_VarRead(mat.get(), name.c_str()));
  if (!var) throw FormatError(".mat file " + path + ": no variable '" + name + "'" + last_message());
  return to_matrix(var.get(), ".mat file " + path + ": variable '" + name + "'");
}

void write_mat_matrix_u16(const std::string& path, const std::string& name, int h, int w,
                          const std::vector<uint16_t>& rowmajor) {
  write_matrix(path, name, h, w, rowmajor, MAT_C_UINT16, MAT_T_UINT16);
}

void write_mat_matrix_f64(const std::string& path, const std::string& name, int h, int w,
                          const std::vector<double>& rowmajor) {
  write_matrix(path, name, h, w, rowmajor, MAT_C_DOUBLE, MAT_T_DOUBLE);
}

PartsAnnotation read_parts_annotation(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mat_mutex);
  init_matio_log();
  MatPtr mat = open_for_read(path);
  const std::string where = ".mat file " + path + ": anno";
  VarPtr anno(Mat_VarRead(mat.get(), "anno"));
  if (!anno) throw FormatError(".mat file " + path + ": no variable 'anno'" + last_message());
  if (anno->class_type != MAT_C_STRUCT || numel(anno.get()) < 1) throw FormatError(where + " is not a struct");
  PartsAnnotation out;
  if (matvar_t* im = field(anno.get(), "imname", 0, where, false)) out.imname = to_string_var(im, where + ".imname");
  matvar_t* objects = field(anno.get(), "objects", 0, where);
  if (objects->class_type != MAT_C_STRUCT) {
    if (numel(objects) == 0) return out;  // `objects = []`: no objects
    throw FormatError(where + ".objects is not a struct array");
  }
  const size_t n = numel(objects);
  for (size_t i = 0; i < n; ++i) {
    const std::string ow = where + ".objects(" + std::to_string(i + 1) + ")";
    ObjectAnnotation obj;
    if (matvar_t* c = field(objects, "class", i, ow, false)) obj.class_name = to_string_var(c, ow + ".class");
    matvar_t* ci = field(objects, "class_ind", i, ow);
    if (!is_numeric(ci) || numel(ci) != 1 || !ci->data || !supported_numeric_type(ci) ||
        ci->nbytes < Mat_SizeOf(ci->data_type))
      throw FormatError(ow + ".class_ind is not a numeric scalar");
    const double class_ind = element(ci, 0);
    if (!(class_ind >= 0 && class_ind <= 1000)) throw FormatError(ow + ".class_ind is not a class index");
    obj.class_ind = static_cast<int>(class_ind);
    obj.mask = to_mask(field(objects, "mask", i, ow), ow + ".mask", &obj.h, &obj.w);
    matvar_t* parts = field(objects, "parts", i, ow, false);
    if (parts && parts->class_type == MAT_C_STRUCT) {
      const size_t np = numel(parts);
      for (size_t p = 0; p < np; ++p) {
        const std::string pw = ow + ".parts(" + std::to_string(p + 1) + ")";
        PartMask pm;
        pm.part_name = to_string_var(field(parts, "part_name", p, pw), pw + ".part_name");
        pm.mask = to_mask(field(parts, "mask", p, pw), pw + ".mask", &pm.h, &pm.w);
        obj.parts.push_back(std::move(pm));
      }
    } else if (parts && numel(parts) != 0) {
      throw FormatError(ow + ".parts is neither a struct array nor empty");
    }
    out.objects.push_back(std::move(obj));
  }
  return out;
}

void write_parts_annotation(const std::string& path, const PartsAnnotation& a) {
  std::lock_guard<std::mutex> lock(g_mat_mutex);
  init_matio_log();
  const char* anno_fields[] = {"imname", "objects"};
  const char* obj_fields[] = {"class", "class_ind", "mask", "parts"};
  const char* part_fields[] = {"part_name", "mask"};
  size_t one[2] = {1, 1};
  matvar_t* anno = Mat_VarCreateStruct("anno", 2, one, anno_fields, 2);
  if (!anno) throw IoError("cannot build the anno struct for " + path);
  VarPtr guard(anno);
  Mat_VarSetStructFieldByName(anno, "imname", 0, make_char("imname", a.imname));
  size_t odims[2] = {a.objects.empty() ? 0u : 1u, a.objects.size()};
  matvar_t* objs = Mat_VarCreateStruct("objects", 2, odims, obj_fields, 4);
  Mat_VarSetStructFieldByName(anno, "objects", 0, objs);
  for (size_t i = 0; i < a.objects.size(); ++i) {
    const ObjectAnnotation& o = a.objects[i];
    if (o.mask.size() != static_cast<size_t>(o.h) * o.w)
      throw ShapeError("write anno " + path + ": object " + std::to_string(i) + " mask does not match its size");
    Mat_VarSetStructFieldByName(objs, "class", i, make_char("class", o.class_name));
    Mat_VarSetStructFieldByName(objs, "class_ind", i, make_double_scalar("class_ind", o.class_ind));
    Mat_VarSetStructFieldByName(objs, "mask", i, make_mask("mask", o.h, o.w, o.mask));
    size_t pdims[2] = {o.parts.empty() ? 0u : 1u, o.parts.size()};
    matvar_t* parts = Mat_VarCreateStruct("parts", 2, pdims, part_fields, 2);
    Mat_VarSetStructFieldByName(objs, "parts", i, parts);
    for (size_t p = 0; p < o.parts.size(); ++p) {
      const PartMask& pm = o.parts[p];
      if (pm.mask.size() != static_cast<size_t>(pm.h) * pm.w)
        throw ShapeError("write anno " + path + ": part mask does not match its size");
      Mat_VarSetStructFieldByName(parts, "part_name", p, make_char("part_name", pm.part_name));
      Mat_VarSetStructFieldByName(parts, "mask", p, make_mask("mask", pm.h, pm.w, pm.mask));
    }
  }
  guard.release();
  write_vars(path, {anno}, MAT_COMPRESSION_NONE);
}

}  // namespace m3vit
