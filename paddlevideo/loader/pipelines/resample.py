"""Frame resizing that gives PIL's bilinear result, fast enough for the data pipeline.

PaddleVideo and the original TSM code resize with PIL's `Image.BILINEAR`. When PIL shrinks an
axis by a factor s > 1 its triangle filter widens to a half-width of s input pixels, so every
input pixel contributes (antialiasing); `cv2.resize(INTER_LINEAR)` always reads 2 pixels, which
aliases on large sources (a 1080p frame to 256 lines gave a mean of 1 grey level off on real
clips, tens of levels on fine stripes). Models trained with PIL's frames expect PIL's frames.

What PIL computes, per axis (separable, horizontal pass first, rounded to uint8 in between):
output pixel o of n_out, from n_in input pixels, scale s = n_in / n_out, support r = max(s, 1),
centre c = (o + 0.5) * s; input pixel j gets weight max(0, 1 - |j + 0.5 - c| / r) for 0 <= j < n_in,
normalised to sum 1, stored as 22-bit fixed point; the sum is rounded half up and clipped to
0..255. `resize_frames` applies exactly these weights: per axis a band of dense weight blocks
(a few output rows each, over the input rows they touch) multiplied with BLAS, so the cost is a
few dense matrix products instead of a loop over taps. It matches PIL to within one grey level
(float vs fixed-point rounding; almost every pixel is equal; two where one axis shrinks and the
other grows) in 0.56-0.73 of PIL's time (benchmarks/data_pipeline.py, 720p to 4K).

When no axis shrinks (upsampling, e.g. 320x240 to 341x256) the triangle is the plain 2-tap
bilinear filter, and `cv2.resize(INTER_LINEAR)` gives it faster (within 1-2 levels of PIL:
OpenCV rounds its 11-bit weights differently).
"""
import functools

import numpy as np

__all__ = ["resize_frames", "resample_weights"]

_cv2 = None
_FRACTION_BITS = 22     # PIL keeps 8-bit resampling weights as fixed point with 22 fraction bits
_SPAN = 24              # input rows per weight block, about; bounds the zeros multiplied


def _cv():
    global _cv2
    if _cv2 is None:
        import cv2
        _cv2 = cv2
    return _cv2


def resample_weights(n_in, n_out):
    """float64 [n_out, n_in]: PIL's bilinear weights for resizing one axis from n_in to n_out."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    pos = np.arange(n_in, dtype=np.float64) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(pos[None, :] - centre[:, None]) / support)
    w /= w.sum(axis=1, keepdims=True)
    unit = float(1 << _FRACTION_BITS)
    return np.floor(w * unit + 0.5) / unit


@functools.lru_cache(maxsize=256)
def _blocks(n_in, n_out):
    """[(out_lo, out_hi, in_lo, in_hi, float32 weights [out_hi-out_lo, in_hi-in_lo])], the
    non-zero band of the weight matrix cut into blocks of a few output rows."""
    w = resample_weights(n_in, n_out)
    nz = w > 0
    first = nz.argmax(axis=1)
    last = n_in - nz[:, ::-1].argmax(axis=1)          # one past the last non-zero weight
    rows = max(1, int(_SPAN / max(n_in / n_out, 1.0)))
    blocks = []
    for lo in range(0, n_out, rows):
        hi = min(lo + rows, n_out)
        a, b = int(first[lo:hi].min()), int(last[lo:hi].max())
        blocks.append((lo, hi, a, b, np.ascontiguousarray(w[lo:hi, a:b], dtype=np.float32)))
    return tuple(blocks)


def _resample_rows(x, n_out):
    """uint8 [n_in, C] -> uint8 [n_out, C], resampling along the first axis as PIL does."""
    out = np.empty((n_out, x.shape[1]), np.float32)
    for lo, hi, a, b, w in _blocks(x.shape[0], n_out):
        # converting each block's rows here, while they are in cache, is faster than converting
        # the whole frame first, although neighbouring blocks share a few rows
        np.matmul(w, x[a:b].astype(np.float32), out=out[lo:hi])
    out += 0.5                                          # round half up, as PIL's fixed point
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)


def _resample_frame(img, out_w, out_h):
    """One uint8 frame [H, W, C] (C <= 4) or [H, W] to [out_h, out_w, ...], PIL's way."""
    cv2 = _cv()
    h, w = img.shape[:2]
    tail = img.shape[2:]
    if out_w != w:                                      # horizontal pass first, as PIL
        cols = cv2.transpose(img)                       # [W, H, C]
        cols = _resample_rows(cols.reshape(w, -1), out_w).reshape((out_w, h) + tail)
        img = cv2.transpose(cols)
    if out_h != h:
        img = _resample_rows(img.reshape(h, -1), out_h).reshape((out_h, out_w) + tail)
    return img


def resize_frames(frames, out_w, out_h):
    """uint8 frames [N, H, W, C] to [N, out_h, out_w, C] with PIL's bilinear filter.

    A view (a crop) is fine as input; the result is a new contiguous array.
    """
    n, h, w = frames.shape[:3]
    if (w, h) == (out_w, out_h):
        return np.ascontiguousarray(frames)
    out = np.empty((n, out_h, out_w) + frames.shape[3:], dtype=np.uint8)
    if out_w >= w and out_h >= h:                       # nothing shrinks: 2-tap bilinear
        cv2 = _cv()
        for i in range(n):
            cv2.resize(frames[i], (out_w, out_h), dst=out[i], interpolation=cv2.INTER_LINEAR)
        return out
    for i in range(n):
        out[i] = _resample_frame(frames[i], out_w, out_h)
    return out
