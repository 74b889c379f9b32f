#!/usr/bin/env python3
"""Runs every task of an exported M3ViT model on one picture and plots the picture beside each
task's prediction, into one PNG (docs/PYTHON.md).

    build/m3vit export --config configs/tiny_synthetic.yaml --out model.safetensors
    PYTHONPATH=build/python /usr/bin/python3 examples/python/plot_tasks.py \\
        model.safetensors assets/sample.png tasks.png

Without a display, set MPLBACKEND=Agg. A picture of another size than the model's needs --resize.
"""
import argparse
import os

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np

import m3vit


def read_rgb8(path):
    """The picture as uint8 [height, width, 3], the form Runtime.run takes for a picture.

    matplotlib reads a PNG as floats in [0, 1] (the 8-bit values divided by 255, so rounding gets
    them back exactly) and a JPEG as uint8.
    """
    img = matplotlib.image.imread(path)
    if img.dtype != np.uint8:
        img = (img * 255).round().astype(np.uint8)
    if img.ndim == 2:  # gray: the same value in R, G and B
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])  # without the alpha channel of an RGBA PNG


def show(ax, task, prediction):
    """One task's prediction (Runtime.predict) as a picture."""
    if prediction.dtype.kind == "i":  # class ids [H, W]: one colour per class
        ax.imshow(prediction, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
    elif prediction.ndim == 3:  # unit normals [3, H, W]: x, y, z from [-1, 1] to RGB
        ax.imshow(((prediction + 1) / 2).transpose(1, 2, 0).clip(0, 1))
    elif task == "depth":  # metres, no fixed range
        image = ax.imshow(prediction, cmap="viridis")
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    else:  # saliency and edge probabilities in [0, 1]
        ax.imshow(prediction, cmap="gray", vmin=0, vmax=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model export (.safetensors from `m3vit export`)")
    parser.add_argument("image", help="input picture (PNG or JPEG)")
    parser.add_argument("out", help="the plot, as PNG")
    parser.add_argument("--resize", action="store_true", help="scale a picture of another size to the model's")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    args = parser.parse_args()

    rt = m3vit.Runtime(args.model, threads=args.threads)
    picture = read_rgb8(args.image)

    fig, axes = plt.subplots(1, 1 + len(rt.tasks), figsize=(3 * (1 + len(rt.tasks)), 3.4))
    axes[0].imshow(picture)
    axes[0].set_title("input")
    for ax, task in zip(axes[1:], rt.tasks):
        show(ax, task, rt.predict(picture, task, resize=args.resize))
        ax.set_title(task)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{rt.config['name']}: every task on {os.path.basename(args.image)}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
