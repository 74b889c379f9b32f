"""numpy / scipy oracle for the metrics of eval/ (tests/eval/test_metrics.cpp).

Each subcommand reads stacked arrays from .npy files and writes the metric values as JSON, computed
the way the authors' evaluation/*.py scripts do (re-written here in plain numpy):
  seg <n_classes> <skip_bg 0|1> <pred.npy> <gt.npy> <out.json>    pred/gt [N,H,W]
  sal <pred.npy> <gt.npy> <out.json>                              pred uint8 values [N,H,W], gt {0,1}
  normals <pred.npy> <gt.npy> <out.json>                          pred uint8 RGB [N,3,H,W], gt [N,3,H,W]
  depth <pred.npy> <gt.npy> <out.json>                            metres [N,H,W]
  match <pred.npy> <gt.npy> <max_dist> <out.json>                 binary [N,H,W]: maximum matching sizes
  edge <pred.npy> <gt.npy> <ratio> <out.json>                     pred uint8 [N,H,W], gt {0,1}: ODS/OIS/AP
"""
import json
import sys

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching


def seg(n, skip, pred, gt):
    tp = np.zeros(n, np.int64)
    fp = np.zeros(n, np.int64)
    fn = np.zeros(n, np.int64)
    for p, g in zip(pred, gt):
        u = np.unique(g)
        if skip and len(u) == 1 and (u[0] == 255 or u[0] == 0):
            continue
        valid = g != 255
        for c in range(n):
            tg, tpd = g == c, p == c
            tp[c] += np.sum(tg & tpd & valid)
            fp[c] += np.sum(~tg & tpd & valid)
            fn[c] += np.sum(tg & ~tpd & valid)
    iou = [float(tp[c]) / max(float(tp[c] + fp[c] + fn[c]), 1e-8) for c in range(n)]
    return {"miou": float(np.mean(iou)), "iou": iou}


def sal(pred, gt):
    thr = np.linspace(0.2, 0.9, 15)
    n = len(pred)
    jac = np.zeros((n, 15))
    prec = np.zeros((n, 15))
    rec = np.zeros((n, 15))
    for i in range(n):
        mask = pred[i].astype(np.float32) / 255.0
        g = gt[i].astype(bool)
        for j, t in enumerate(thr):
            m = mask > t
            if np.sum(g) == 0 and np.sum(m) == 0:
                jac[i, j] = 1
            else:
                jac[i, j] = np.sum(g & m) / np.sum(g | m, dtype=np.float32)
            tp = np.sum(m & g)
            prec[i, j] = tp / (tp + np.sum(m & ~g) + 1e-12)
            rec[i, j] = tp / (tp + np.sum(~m & g) + 1e-12)
    mi, mp, mr = jac.mean(0), prec.mean(0), rec.mean(0)
    f = 2 * mp * mr / (mp + mr + 1e-12)
    return {"miou": float(mi.max()), "maxf": float(f.max()), "mean_iou": mi.tolist(), "f": f.tolist()}


def normals(pred, gt):
    angles = []
    for p, g in zip(pred, gt):
        p = np.transpose(p, (1, 2, 0)).astype(np.float32)
        g = np.transpose(g, (1, 2, 0)).astype(np.float64)
        p = 2.0 * p / 255.0 - 1
        p = p / (np.linalg.norm(p, ord=2, axis=2)[..., None] + 1e-12)
        valid = np.linalg.norm(g, ord=2, axis=2) != 0
        p[~valid, :] = 0
        g[~valid, :] = 0
        g = g / (np.linalg.norm(g, ord=2, axis=2)[..., None] + 1e-12)
        d = np.rad2deg(np.arccos(np.clip(np.sum(p * g, axis=2), -1, 1)))
        angles.extend(d[valid])
    a = np.array(angles)
    return {"mean": float(a.mean()), "median": float(np.median(a)), "rmse": float(np.mean(a ** 2) ** 0.5),
            "11.25": float(np.mean(a < 11.25) * 100), "22.5": float(np.mean(a < 22.5) * 100),
            "30": float(np.mean(a < 30) * 100), "n": int(a.size)}


def depth(pred, gt):
    se = lse = 0.0
    n = 0
    for p, g in zip(pred, gt):
        p = p.astype(np.float32).copy()
        g = g.astype(np.float32).copy()
        valid = g != 0
        n += np.sum(valid)
        g[g == 0] = 1e-9
        p[p <= 0] = 1e-9
        lse += np.sum((np.log(g[valid]) - np.log(p[valid])) ** 2)
        se += np.sum((g[valid] - p[valid]) ** 2)
    return {"rmse": float(np.sqrt(se / n)), "log_rmse": float(np.sqrt(lse / n))}


def matching(p, g, max_dist):
    """Maximum matching between boundary pixels within max_dist (Euclidean), via scipy."""
    pu = np.argwhere(p)
    gv = np.argwhere(g)
    if len(pu) == 0 or len(gv) == 0:
        return 0, len(pu), len(gv)
    d2 = ((pu[:, None, :] - gv[None, :, :]) ** 2).sum(-1)
    rows, cols = np.nonzero(d2 <= max_dist * max_dist)
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(pu), len(gv)))
    m = maximum_bipartite_matching(graph, perm_type="column")
    return int(np.sum(m >= 0)), len(pu), len(gv)


def thin(mask):
    # Guo-Hall two-subiteration thinning as scikit-image states it (see tests/data/oracle_edges.py).
    sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/data")
    from oracle_edges import thin as thin_impl
    return thin_impl(mask)


def prf(c):
    m, sp, sg = c
    p = m / (sp + (sp == 0))
    r = m / (sg + (sg == 0))
    f = 2 * p * r / (p + r + ((p + r) == 0))
    return p, r, f


def edge(pred, gt, ratio):
    thr = np.arange(1, 100) / 100.0
    total = np.zeros((99, 3))
    ois = np.zeros(3)
    for p, g in zip(pred, gt):
        h, w = g.shape
        md = ratio * np.sqrt(h * h + w * w)
        counts = []
        for t in thr:
            b = thin(p.astype(np.float64) / 255.0 >= t)
            counts.append(matching(b, g >= 0.5, md))
        counts = np.array(counts, dtype=np.float64)
        total += counts
        fs = [prf(c)[2] for c in counts]
        ois += counts[int(np.argmax(fs))]
    P, R, F = zip(*[prf(c) for c in total])
    k = int(np.argmax(F))
    # AP as BSDS collect_eval_bdry: unique recalls (last occurrence), interp1 at 0:0.01:1, NaN dropped.
    R = np.array(R)
    P = np.array(P)
    uniq = {}
    for i in range(99):
        uniq[R[i]] = P[i]
    rs = np.array(sorted(uniq))
    ps = np.array([uniq[r] for r in rs])
    ap = 0.0
    if len(rs) > 1:
        grid = np.arange(0, 101) / 100.0
        inside = (grid >= rs[0]) & (grid <= rs[-1])
        ap = float(np.sum(np.interp(grid[inside], rs, ps)) / 100)
    op, orr, of = prf(ois)
    return {"ods_f": float(F[k]), "ods_threshold": float(thr[k]), "ois_f": float(of), "ap": ap,
            "f": [float(x) for x in F]}


def main():
    cmd = sys.argv[1]
    a = sys.argv[2:]
    if cmd == "seg":
        out = seg(int(a[0]), a[1] == "1", np.load(a[2]), np.load(a[3]))
    elif cmd == "sal":
        out = sal(np.load(a[0]), np.load(a[1]))
    elif cmd == "normals":
        out = normals(np.load(a[0]), np.load(a[1]))
    elif cmd == "depth":
        out = depth(np.load(a[0]), np.load(a[1]))
    elif cmd == "match":
        pred, gt, md = np.load(a[0]), np.load(a[1]), float(a[2])
        out = {"matched": [matching(p, g, md)[0] for p, g in zip(pred, gt)]}
    elif cmd == "edge":
        out = edge(np.load(a[0]), np.load(a[1]), float(a[2]))
    else:
        sys.exit("unknown command " + cmd)
    with open(a[-1], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
