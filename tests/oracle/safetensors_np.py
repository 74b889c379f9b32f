"""A small safetensors reader and writer on json + struct + numpy, for the parity oracle.

Format (https://github.com/huggingface/safetensors, the same one io/safetensors.h reads and writes):
8-byte little-endian header length N, N bytes of UTF-8 JSON
{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian, C-contiguous tensor data; offsets are relative to the end of the header.
The reader checks what the C++ reader checks (offsets inside the file, sizes matching shapes), so a
file this module accepts is one the C++ side accepts too.
"""

import json
import os
import struct

import numpy as np

# safetensors dtype name -> numpy dtype (little-endian). BF16 has no numpy type: it is read as raw
# uint16 and widened to float32 (the upper half of an IEEE float32).
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {
    np.dtype("<f8"): "F64",
    np.dtype("<f4"): "F32",
    np.dtype("<f2"): "F16",
    np.dtype("<i8"): "I64",
    np.dtype("<i4"): "I32",
    np.dtype("<i2"): "I16",
    np.dtype("i1"): "I8",
    np.dtype("u1"): "U8",
    np.dtype("?"): "BOOL",
}
_ALIGN = 8  # header padded with spaces so the data starts 8-byte aligned


class SafeTensorsError(ValueError):
    """A malformed safetensors file; the message names the file and the tensor."""


def _bf16_to_f32(raw):
    return (raw.astype(np.uint32) << 16).view(np.float32)


def load(path):
    """Returns (tensors, metadata): {name: np.ndarray} (copies, writable) and {str: str}."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafeTensorsError(f"{path}: {len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise SafeTensorsError(f"{path}: header length {n} runs past the end of the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafeTensorsError(f"{path}: header is not valid JSON: {e}") from e
    if not isinstance(header, dict):
        raise SafeTensorsError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(blob)[8 + n :]
    tensors = {}
    for name, info in header.items():
        try:
            dt = info["dtype"]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise SafeTensorsError(f"{path}: tensor '{name}' has a malformed header entry {info!r}") from e
        if dt not in _DTYPES:
            raise SafeTensorsError(f"{path}: tensor '{name}' has unknown dtype {dt}")
        npdt = _DTYPES[dt]
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(data)):
            raise SafeTensorsError(
                f"{path}: tensor '{name}' data [{begin}, {end}) outside the data ({len(data)} bytes)")
        if end - begin != numel * npdt.itemsize:
            raise SafeTensorsError(
                f"{path}: tensor '{name}' {dt} {shape} needs {numel * npdt.itemsize} bytes, has {end - begin}")
        arr = np.frombuffer(data[begin:end], dtype=npdt).reshape(shape).copy()
        if dt == "BF16":
            arr = _bf16_to_f32(arr)
        tensors[name] = arr
    return tensors, dict(meta)


def save(path, tensors, metadata=None):
    """Writes {name: np.ndarray} in insertion order, atomically; metadata values must be strings."""
    header = {}
    chunks = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")  # (np.ascontiguousarray would turn a 0-d scalar into shape [1])
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        key = np.dtype(arr.dtype.str.replace("=", "<")) if arr.dtype.itemsize > 1 else arr.dtype
        if key not in _NAMES:
            raise SafeTensorsError(f"{path}: tensor '{name}' has unsupported numpy dtype {arr.dtype}")
        raw = arr.tobytes()
        header[name] = {"dtype": _NAMES[key], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise SafeTensorsError(f"{path}: metadata '{k}' is not a string")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % _ALIGN)
    # Written to a temporary name and renamed, so a reader never sees half a file.
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)
