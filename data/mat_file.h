// MATLAB .mat files through libmatio, for the PASCAL_MT ground truth the authors read with
// scipy.io.loadmat (data/pascal_context.py:290-295, :298-331):
//   pascal-context/trainval/<id>.mat   variable `LabelMap`  [H, W], 459-class PASCAL-Context labels
//   human_parts/<id>.mat               variable `anno`, the PASCAL-Part struct:
//       anno.imname            char
//       anno.objects(1, N)     struct: class (char), class_ind (double), mask (uint8 [H,W]),
//                              parts(1, P) struct: part_name (char), mask (uint8 [H,W])
// The authors index these fields by position (anno[0][0][1], obj[1..3], part[0..1]); we read them by
// name, which gives the same result on the PASCAL-Part files and fails clearly on anything else.
// MATLAB stores matrices column-major; everything here is converted to row-major [H, W].
// libmatio is not documented as thread-safe (v7.3 files go through HDF5), so every call here holds one
// process-wide lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace m3vit {

// The most elements one variable may declare (2^26: 8192 x 8192; PASCAL's are about 500 x 375),
// checked from its header before libmatio allocates it.
inline constexpr size_t kMaxMatElements = size_t{1} << 26;

struct MatMatrix {
  int h = 0, w = 0;
  std::vector<double> v;  // row-major [h, w]
};

// Reads the real 2-D numeric variable `name`. Throws IoError (missing/unreadable file) or FormatError
// (no such variable, not numeric, not 2-D), naming the file and the variable.
MatMatrix read_mat_matrix(const std::string& path, const std::string& name);

// Writes one uint16 [h, w] matrix (row-major input) as a MAT5 file, atomically.
void write_mat_matrix_u16(const std::string& path, const std::string& name, int h, int w,
                          const std::vector<uint16_t>& rowmajor);

// Writes one double [h, w] matrix as a MAT5 file, atomically (prediction dumps, test fixtures).
void write_mat_matrix_f64(const std::string& path, const std::string& name, int h, int w,
                          const std::vector<double>& rowmajor);

struct PartMask {
  std::string part_name;  // PASCAL-Part name: head, hair, torso, luarm, rlleg, ...
  int h = 0, w = 0;
  std::vector<uint8_t> mask;  // row-major [h, w], non-zero = part
};

struct ObjectAnnotation {
  std::string class_name;
  int class_ind = 0;  // VOC class, 15 = person
  int h = 0, w = 0;
  std::vector<uint8_t> mask;  // row-major [h, w]
  std::vector<PartMask> parts;
};

struct PartsAnnotation {
  std::string imname;
  std::vector<ObjectAnnotation> objects;
};

// Reads the `anno` struct of a PASCAL-Part file. Throws IoError / FormatError naming the file and field.
PartsAnnotation read_parts_annotation(const std::string& path);
// Writes `anno` with the field order of PASCAL-Part (so positional readers work too), atomically.
void write_parts_annotation(const std::string& path, const PartsAnnotation& anno);

}  // namespace m3vit
