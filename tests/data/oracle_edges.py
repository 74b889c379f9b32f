"""Oracle for data/edge_maps: edge = thin(|Laplacian(L)| > 0) written with scipy.ndimage.

Usage: oracle_edges.py <labels.npy> <out.npy> [thin]
With "thin", the input is taken as a binary map (non-zero = foreground) and only thinned.
The Laplacian is a correlation with the four-neighbour kernel in scipy's 'mirror' mode (reflection
about the edge pixel, OpenCV's BORDER_REFLECT_101). The thinning follows Guo & Hall's two
subiterations as scikit-image describes them (conditions G1, G2, G3 / G3'), evaluated here with
scipy.ndimage.correlate on the neighbourhood weights [[8, 4, 2], [16, 0, 1], [32, 64, 128]].
"""
import sys

import numpy as np
from scipy import ndimage


def bits(n):
    return [(n >> i) & 1 for i in range(8)]


def deletable(n, second):
    b = bits(n)
    crossings = sum(1 for i in (0, 2, 4, 6) if not b[i] and (b[i + 1] or b[(i + 2) % 8]))
    n1 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[k - 1])
    n2 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[(k + 1) % 8])
    if second:
        side = not ((b[5] or b[6] or not b[3]) and b[4])
    else:
        side = not ((b[1] or b[2] or not b[7]) and b[0])
    return crossings == 1 and min(n1, n2) in (2, 3) and side


LUTS = [np.array([deletable(n, s) for n in range(256)]) for s in (False, True)]
WEIGHTS = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]])


def thin(mask):
    skel = mask.astype(np.int64)
    while True:
        before = skel.sum()
        for lut in LUTS:
            code = ndimage.correlate(skel, WEIGHTS, mode="constant", cval=0)
            skel[lut[code] & (skel == 1)] = 0
        if skel.sum() == before:
            return skel


def main():
    labels = np.load(sys.argv[1]).astype(np.float64)
    if len(sys.argv) > 3 and sys.argv[3] == "thin":
        np.save(sys.argv[2], thin(labels != 0).astype(np.float32))
        return
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    lap = ndimage.correlate(labels, kernel, mode="mirror")
    np.save(sys.argv[2], thin(np.abs(lap) > 0).astype(np.float32))


if __name__ == "__main__":
    main()
