// A check of a MATLAB level-5 file's layout, run before libmatio reads it (data/mat_file.cpp).
//
// libmatio 1.5.23 trusts the byte counts and dimensions in a file's element tags: a tag that claims
// 1 GB inside a 1 kB file makes Mat_VarReadInfo allocate 1 GB before it notices the end of the file
// (found by fuzz/fuzz_mat.cpp; the input is in fuzz/regressions/mat/). This walk checks, without
// allocating anything the file does not hold:
//   - the 128-byte header says level 5 (version 0x0100; v7.3 HDF5 files are refused: scipy, which
//     the authors read PASCAL with, does not read them either);
//   - every data element (and every sub-element of a matrix) lies inside its container;
//   - a compressed element (miCOMPRESSED) inflates to at most kMaxMatInflatedBytes, and its content
//     passes the same walk;
//   - every matrix's dimensions multiply to at most kMaxMatElements (data/mat_file.h), and a struct
//     array's elements times its fields too; matrices nest at most 16 deep.
// Element layout: "MAT-File Format", MathWorks, the chapter on level-5 data elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace m3vit {

inline constexpr size_t kMaxMatInflatedBytes = size_t{1} << 28;  // 256 MiB of decompressed elements

// Throws FormatError "<what>: ..." naming the first element at fault.
void check_mat5_layout(const uint8_t* data, size_t size, const std::string& what);

}  // namespace m3vit
