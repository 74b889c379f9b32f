#!/usr/bin/python3
"""Draws the bundled sample images assets/sample.png (96x96, the tiny_synthetic size) and
assets/sample_512.png (512x512, the PASCAL-Context size): a floor, a wall, a shaded sphere, a box and
a cone under one light, so every task head has edges, regions and smooth depth to respond to.

Only numpy; the PNG is written with zlib. Deterministic: the same bytes on every run.
Usage: /usr/bin/python3 scripts/make_sample_image.py [out_dir]   (default: assets/)
"""
import os
import struct
import sys
import zlib

import numpy as np


def write_png(path, rgb):
    """8-bit RGB PNG, filter type 0 on every row."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


def draw(size):
    """Scene in unit coordinates (x right, y down), rendered at size x size."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    x = (x + 0.5) / size
    y = (y + 0.5) / size
    img = np.zeros((size, size, 3))
    light = np.array([-0.5, -0.6, 0.62])
    light /= np.linalg.norm(light)

    # Wall: a vertical gradient; floor below the horizon at y = 0.55, darker towards the viewer.
    horizon = 0.55
    wall = np.stack([0.55 + 0.2 * y, 0.62 + 0.15 * y, 0.75 + 0.1 * y], axis=-1)
    floor_t = np.clip((y - horizon) / (1 - horizon), 0, 1)[..., None]
    floor = np.array([0.62, 0.5, 0.36]) * (1.0 - 0.45 * floor_t)
    # A checker pattern on the floor in perspective gives fine edges.
    u = (x - 0.5) / np.maximum(y - horizon + 0.05, 0.05)
    v = 1.0 / np.maximum(y - horizon + 0.05, 0.05)
    checker = ((np.floor(u * 2) + np.floor(v * 0.6)) % 2)[..., None]
    floor = floor * (0.85 + 0.15 * checker)
    img = np.where((y < horizon)[..., None], wall, floor)

    # Box: front face and top face, flat shaded.
    bx0, bx1, by0, by1 = 0.08, 0.36, 0.52, 0.82
    front = (x >= bx0) & (x <= bx1) & (y >= by0) & (y <= by1)
    top = (y >= by0 - 0.1) & (y < by0) & (x >= bx0 + (by0 - y)) & (x <= bx1 + (by0 - y))
    side = (x > bx1) & (x <= bx1 + 0.1) & (y >= by0 - (x - bx1)) & (y <= by1 - (x - bx1))
    img[front] = [0.2, 0.35, 0.75]
    img[top] = [0.45, 0.6, 0.95]
    img[side] = [0.12, 0.22, 0.5]

    # Sphere: Lambert shading plus a highlight.
    cx, cy, r = 0.64, 0.58, 0.2
    dx, dy = (x - cx) / r, (y - cy) / r
    inside = dx * dx + dy * dy < 1
    dz = np.sqrt(np.clip(1 - dx * dx - dy * dy, 0, 1))
    n = np.stack([dx, dy, dz], axis=-1)
    lam = np.clip(n @ light, 0, 1)[..., None]
    spec = (np.clip(n @ light, 0, 1) ** 30)[..., None]
    sphere = np.array([0.85, 0.2, 0.15]) * (0.25 + 0.75 * lam) + 0.6 * spec
    img = np.where(inside[..., None], sphere, img)

    # Cone: a triangle with horizontal shading.
    tx, ty, base, height = 0.86, 0.6, 0.12, 0.3
    cone = (y >= ty) & (y <= ty + height) & (np.abs(x - tx) <= base * (y - ty) / height)
    shade = 0.5 + 0.5 * np.clip(1 - (x - tx + base) / (2 * base), 0, 1)
    cone_rgb = np.stack([0.95 * shade, 0.8 * shade, 0.1 * shade], axis=-1)
    img = np.where(cone[..., None], cone_rgb, img)

    # Soft shadow of the sphere on the floor.
    sh = ((x - cx - 0.08) / (r * 1.1)) ** 2 + ((y - 0.8) / (r * 0.3)) ** 2 < 1
    img = np.where((sh & ~inside & ~cone & (y > horizon))[..., None], img * 0.6, img)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "assets")
    os.makedirs(out, exist_ok=True)
    write_png(os.path.join(out, "sample.png"), draw(96))
    write_png(os.path.join(out, "sample_512.png"), draw(512))


if __name__ == "__main__":
    main()
