"""Writes small fixtures in the real on-disk formats with scipy / zlib, plus the values the authors'
code would read from them, for tests/data/test_loaders.cpp.

  make_fixtures.py parts <out.mat> <expected.npy>
      A PASCAL-Part `anno` struct (zlib-compressed, as MATLAB writes them) with two persons, a dog with
      parts and a person without parts; expected.npy is the human_parts map computed the way the
      authors' _load_human_parts does (positional field access, 6-part mapping).
  make_fixtures.py png <dir>
      palette.png (8-bit palette) and gray16.png (16-bit gray) with the index / value arrays they hold
      (palette.npy, gray16.npy), written by hand with zlib (no PIL here).
"""
import struct
import sys
import zlib

import numpy as np
import scipy.io as sio

# PASCAL-Part names -> the 6-part ids of pascal_context.py:38-54 (head, torso, upper/lower arm, upper/lower leg).
SIX = {}
for n in ["hair", "head", "lear", "rear", "lebrow", "rebrow", "leye", "reye", "mouth", "nose"]:
    SIX[n] = 1
for n in ["torso", "neck"]:
    SIX[n] = 2
for n in ["luarm", "ruarm"]:
    SIX[n] = 3
for n in ["llarm", "rlarm", "lhand", "rhand"]:
    SIX[n] = 4
for n in ["luleg", "ruleg"]:
    SIX[n] = 5
for n in ["llleg", "rlleg", "lfoot", "rfoot"]:
    SIX[n] = 6

H, W = 8, 10


def rect(y0, y1, x0, x1):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def parts_array(entries):
    a = np.empty((1, len(entries)), dtype=[("part_name", "O"), ("mask", "O")])
    for i, (name, mask) in enumerate(entries):
        a[0, i] = (name, mask)
    return a


def write_parts(out_mat, out_npy):
    person1 = parts_array([("hair", rect(0, 2, 2, 5)), ("head", rect(1, 3, 2, 5)), ("neck", rect(3, 4, 3, 4)),
                           ("torso", rect(3, 6, 2, 5)), ("ruarm", rect(3, 5, 1, 2)), ("llarm", rect(5, 7, 5, 6)),
                           ("lhand", rect(7, 8, 5, 6)), ("luleg", rect(6, 7, 2, 3)), ("rlleg", rect(7, 8, 2, 3)),
                           ("rfoot", rect(7, 8, 3, 4))])
    dog = parts_array([("head", rect(0, 2, 7, 9))])
    person2 = parts_array([("lebrow", rect(2, 3, 8, 9)), ("ruleg", rect(4, 6, 8, 10))])
    no_parts = np.zeros((0, 0))
    objs = np.empty((1, 4), dtype=[("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")])
    objs[0, 0] = ("person", np.array([[15.0]]), rect(0, 8, 1, 6), person1)
    objs[0, 1] = ("dog", np.array([[12.0]]), rect(0, 3, 6, 10), dog)
    objs[0, 2] = ("person", np.array([[15.0]]), rect(2, 6, 8, 10), person2)
    objs[0, 3] = ("person", np.array([[15.0]]), rect(6, 8, 6, 8), no_parts)
    anno = np.empty((1, 1), dtype=[("imname", "O"), ("objects", "O")])
    anno[0, 0] = ("2008_000001", objs)
    sio.savemat(out_mat, {"anno": anno}, do_compression=True)

    # The authors' reading, positional: anno[0][0][1][0] = objects, obj[1] class_ind, obj[3] parts.
    part_mat = sio.loadmat(out_mat)["anno"][0][0][1][0]
    target = None
    for obj in part_mat:
        if obj[1][0][0] == 15 and len(obj[3]) != 0:
            if target is None:
                target = np.zeros(obj[2].shape)
            for part in obj[3][0]:
                target[part[1].astype(bool)] = SIX[str(part[0][0])]
    np.save(out_npy, target.astype(np.float32))


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_png(path, width, height, bit_depth, color_type, rows, palette=None):
    raw = b""
    for r in rows:
        raw += bytes([0]) + r  # filter type 0 (None)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += png_chunk(b"PLTE", palette)
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    out += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def sub_filter(row, bpp):
    """PNG 'Sub' filter of one row (exercises the decoder's filter handling)."""
    out = bytearray(row)
    for i in range(len(row) - 1, bpp - 1, -1):
        out[i] = (row[i] - row[i - bpp]) & 255
    return bytes(out)


def write_pngs(d):
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 41, size=(6, 7)).astype(np.uint8)
    idx[0, 0] = 0
    idx[1, 1] = 255  # an index beyond the palette size is still just an index to PIL
    palette = bytes(rng.integers(0, 256, size=256 * 3).astype(np.uint8))
    write_png(d + "/palette.png", 7, 6, 8, 3, [r.tobytes() for r in idx], palette)
    np.save(d + "/palette.npy", idx.astype(np.float32))
    g16 = rng.integers(0, 65536, size=(5, 4)).astype(np.uint16)
    rows = [g16[i].astype(">u2").tobytes() for i in range(5)]
    # Rows alternate between filter None and Sub.
    raw = b""
    for i, r in enumerate(rows):
        raw += (bytes([1]) + sub_filter(r, 2)) if i % 2 else (bytes([0]) + r)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 5, 16, 0, 0, 0, 0))
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    out += png_chunk(b"IEND", b"")
    with open(d + "/gray16.png", "wb") as f:
        f.write(out)
    np.save(d + "/gray16.npy", g16.astype(np.float32))


if __name__ == "__main__":
    if sys.argv[1] == "parts":
        write_parts(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "png":
        write_pngs(sys.argv[2])
    else:
        sys.exit("unknown fixture " + sys.argv[1])
