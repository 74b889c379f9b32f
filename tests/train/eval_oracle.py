"""Oracle for tests/train/test_evaluate.cpp: the authors' evaluation from raw network outputs to
metrics, written with numpy from the authors' evaluation/*.py (not from the C++ code):
  post-processing (utils/utils.py:60-78), OpenCV-style resizing to the original size (nearest:
  src = floor(dst * in / out); bilinear: half-pixel centres, replicated border), uint8 truncation,
  images whose transformed label is all 255 skipped, dataset-level mIoU (eval_semseg.py), human parts
  skipping a ground truth of one value 0 or 255 (eval_human_parts.py), saliency max-over-thresholds IoU
  and maxF (eval_sal.py + jaccard.py), pooled normal angles (eval_normals.py), Δm.

usage: eval_oracle.py inputs.safetensors outputs.safetensors
inputs:  n_images; per image i and task t: out/<t>/<i> [C,h,w] logits, gt/<t>/<i> raw label at the
         original size, ign/<t>/<i> (1 when the transformed label is all 255)
         classes/<t> (number of classes); refs/<t> Δm references
outputs: <task>.<metric> scalars and delta_m (percent)
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import safetensors_np  # noqa: E402


def resize_nearest(m, H, W):
    c, h, w = m.shape
    ys = np.minimum(np.floor(np.arange(H) * (h / H)).astype(int), h - 1)
    xs = np.minimum(np.floor(np.arange(W) * (w / W)).astype(int), w - 1)
    return m[:, ys][:, :, xs]


def resize_linear(m, H, W):
    c, h, w = m.shape

    def taps(n_out, n_in):
        s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        i0 = np.floor(s).astype(int)
        f = s - i0
        lo = np.clip(i0, 0, n_in - 1)
        hi = np.clip(i0 + 1, 0, n_in - 1)
        # OpenCV clamps a coordinate left of the first centre to the first pixel
        f = np.where(i0 < 0, 0.0, f)
        f = np.where(i0 >= n_in - 1, 0.0, f)
        return lo, hi, f

    y0, y1, fy = taps(H, h)
    x0, x1, fx = taps(W, w)
    rows = m[:, y0] * (1 - fy)[None, :, None] + m[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :] + rows[:, :, x1] * fx[None, None, :]


def stored(task, out, H, W):
    if task in ("semseg", "human_parts"):
        return resize_nearest(np.argmax(out, axis=0)[None].astype(np.float64), H, W)
    if task == "depth":
        return resize_linear(out.astype(np.float64), H, W)
    if task == "normals":
        n = out / np.maximum(np.linalg.norm(out, axis=0, keepdims=True), 1e-12)
        v = (n + 1) * 255 / 2
    else:
        v = 255 / (1 + np.exp(-out.astype(np.float64)))
    return np.trunc(np.clip(resize_linear(v, H, W), 0, 255))


def miou(preds, gts, n, skip_single):
    tp = np.zeros(n)
    fp = np.zeros(n)
    fn = np.zeros(n)
    for p, g in zip(preds, gts):
        if skip_single and len(np.unique(g)) == 1 and np.unique(g)[0] in (0, 255):
            continue
        valid = g != 255
        for c in range(n):
            tp[c] += np.sum((g == c) & (p == c) & valid)
            fp[c] += np.sum((g != c) & (p == c) & valid)
            fn[c] += np.sum((g == c) & (p != c) & valid)
    return np.mean(tp / np.maximum(tp + fp + fn, 1e-8))


def saliency(preds, gts):
    taus = np.linspace(0.2, 0.9, 15)
    ious, ps, rs = [], [], []
    for t in taus:
        iou_t, p_t, r_t = [], [], []
        for p, g in zip(preds, gts):
            b = (p / 255.0) > t
            gt = g > 0.5
            inter = np.sum(b & gt)
            union = np.sum(b | gt)
            iou_t.append(1.0 if union == 0 else inter / union)
            tp = inter
            p_t.append(tp / (np.sum(b) + 1e-12))
            r_t.append(tp / (np.sum(gt) + 1e-12))
        ious.append(np.mean(iou_t))
        ps.append(np.mean(p_t))
        rs.append(np.mean(r_t))
    ps, rs = np.array(ps), np.array(rs)
    f = 2 * ps * rs / (ps + rs + 1e-12)
    return max(ious), max(f)


def normals(preds, gts):
    angles = []
    for p, g in zip(preds, gts):
        if not np.any(g):
            continue
        n = 2 * p / 255 - 1
        n = n / (np.linalg.norm(n, axis=0, keepdims=True) + 1e-12)
        gn = np.linalg.norm(g, axis=0)
        valid = gn != 0
        gu = g / np.where(gn == 0, 1, gn)
        dot = np.clip(np.sum(n * gu, axis=0), -1, 1)
        angles.append(np.degrees(np.arccos(dot[valid])))
    a = np.concatenate(angles)
    return np.mean(a), np.median(a), np.sqrt(np.mean(a ** 2))


def main():
    inp, _ = safetensors_np.load(sys.argv[1])
    n_images = int(inp["n_images"])
    tasks = sorted({k.split("/")[1] for k in inp if k.startswith("out/")})
    out = {}
    scores = {}
    for t in tasks:
        preds, gts = [], []
        for i in range(n_images):
            if int(inp[f"ign/{t}/{i}"]):
                continue
            g = inp[f"gt/{t}/{i}"].astype(np.float64)
            preds.append(stored(t, inp[f"out/{t}/{i}"], g.shape[1], g.shape[2]))
            gts.append(g)
        if t in ("semseg", "human_parts"):
            v = miou([p[0] for p in preds], [g[0] for g in gts], int(inp[f"classes/{t}"]), t == "human_parts")
            out[f"{t}.mIoU"] = v
            scores[t] = v
        elif t == "sal":
            m, f = saliency([p[0] for p in preds], [g[0] for g in gts])
            out["sal.mIoU"], out["sal.maxF"] = m, f
            scores[t] = m
        elif t == "normals":
            mean, median, rmse = normals(preds, gts)
            out["normals.mean"], out["normals.median"], out["normals.rmse"] = mean, median, rmse
            scores[t] = mean
    dm = []
    for t, s in scores.items():
        if f"refs/{t}" in inp:
            ref = float(inp[f"refs/{t}"])
            sign = -1 if t in ("normals", "depth") else 1
            dm.append(sign * (s - ref) / ref)
    out["delta_m"] = 100 * np.mean(dm)
    safetensors_np.save(sys.argv[2], {k: np.array(v, dtype=np.float64) for k, v in out.items()})


if __name__ == "__main__":
    main()
