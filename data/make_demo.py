#!/usr/bin/env python
"""Generate the embedded demo set: short videos whose class is the direction of time.

Every class has a time-reversed twin (left-to-right / right-to-left, growing / shrinking,
clockwise / counter-clockwise, approaching / receding, fading in / fading out). A video of the odd
class of a pair is rendered exactly like one of the even class and then played backwards, so both
classes have the same distribution of frame *sets*: a model that ignores frame order cannot tell
twins apart better than chance, a model of time (TSM) can. Backgrounds, colours, shapes, sizes,
speeds, textures and noise vary from video to video.

    python data/make_demo.py                      # data/demo/: 300 train, 100 val, 100 test videos
    python data/make_demo.py --per-class 100 --size 112 --frames 48 --hard --out data/demo_big

Output (under --out): videos/<split>/<class>_<k>.avi (MJPG, read by decord, OpenCV and PyAV),
train.list / val.list / test.list (`videos/<split>/<file> LABEL`, paths relative to --out, so the
config's data_prefix is --out), label_list.txt (`INDEX NAME`) and meta.json (the settings). The same
seed gives the same files byte for byte.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import progress  # noqa: E402

PAIRS = [("moving_left_to_right", "moving_right_to_left"),
         ("growing", "shrinking"),
         ("rotating_clockwise", "rotating_counter_clockwise"),
         ("approaching", "receding"),
         ("fading_in", "fading_out")]
CLASSES = [name for pair in PAIRS for name in pair]
SPLITS = {"train": 0, "val": 1, "test": 2}


def _cv2():
    import cv2
    return cv2


# ----- scene pieces ---------------------------------------------------------------------------
def background(rng, h, w, hard=False):
    """A random textured background, uint8 [h, w, 3]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if not hard:                                    # low-contrast texture: the object stands out
        c2 = c1 + (c2 - c1) * rng.uniform(0.2, 0.45)
    kind = rng.integers(0, 4)
    if kind == 0:                                   # linear gradient at a random angle
        a = rng.uniform(0, 2 * math.pi)
        t = (np.cos(a) * xx + np.sin(a) * yy) / max(h, w)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    elif kind == 1:                                 # soft stripes
        a, f = rng.uniform(0, math.pi), rng.uniform(2, 8 if not hard else 14)
        t = 0.5 + 0.5 * np.sin((np.cos(a) * xx + np.sin(a) * yy) / max(h, w) * 2 * math.pi * f)
    elif kind == 2:                                 # checker board
        s = rng.integers(6, 20)
        t = ((xx // s + yy // s) % 2).astype(np.float32) * rng.uniform(0.3, 1.0)
    else:                                           # smooth random blobs
        small = rng.uniform(0, 1, (4 + rng.integers(0, 5), 4 + rng.integers(0, 5))).astype(np.float32)
        t = _cv2().resize(small, (w, h), interpolation=_cv2().INTER_CUBIC)
        t = np.clip(t, 0, 1)
    img = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def shape_points(kind, cx, cy, r, angle):
    """Polygon (float [K, 2]) of a shape of radius r centred at (cx, cy), rotated by angle."""
    if kind == "triangle":
        base = [(0, -1), (0.87, 0.5), (-0.87, 0.5)]
    elif kind == "arrow":
        base = [(0, -1), (0.6, -0.2), (0.22, -0.2), (0.22, 1), (-0.22, 1), (-0.22, -0.2), (-0.6, -0.2)]
    elif kind == "bar":
        base = [(-0.2, -1), (0.2, -1), (0.2, 1), (-0.2, 1)]
    elif kind == "kite":
        base = [(0, -1), (0.5, 0), (0, 0.5), (-0.5, 0)]
    elif kind == "square":
        base = [(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)]
    else:   # "disc": a polygon with many sides
        base = [(math.cos(t), math.sin(t)) for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)]
    c, s = math.cos(angle), math.sin(angle)
    pts = np.array([(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in base])
    return pts


def paint(img, pts, colour, texture, alpha=1.0):
    """Draw a filled polygon (anti-aliased, sub-pixel) of a colour or a two-colour texture."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    m = (mask.astype(np.float32) / 255.0 * alpha)[..., None]
    if texture is None:
        fill = np.array(colour, np.float32)[None, None, :]
    else:
        fill = texture
    out = img.astype(np.float32) * (1 - m) + fill * m
    return np.clip(out, 0, 255).astype(np.uint8)


def object_texture(rng, h, w, colour):
    """None (solid colour) or a striped texture in the object's colour and another one."""
    if rng.random() < 0.5:
        return None
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    other = rng.uniform(0, 255, 3)
    a, f = rng.uniform(0, math.pi), rng.uniform(0.15, 0.5)
    t = (np.sin((np.cos(a) * xx + np.sin(a) * yy) * f) > 0).astype(np.float32)[..., None]
    return np.array(colour, np.float32) * (1 - t) + other * t


def _ease(rng, T):
    """Progress 0 -> 1 over T frames at a random speed profile (linear, ease-in or ease-out)."""
    t = np.linspace(0.0, 1.0, T)
    p = rng.uniform(0.6, 1.6)
    return t ** p


# ----- one clip -------------------------------------------------------------------------------
def render_forward(pair, rng, size, frames, hard=False):
    """Frames [T, H, W, 3] uint8 of the first class of PAIRS[pair]; reverse them for its twin."""
    cv2 = _cv2()
    H = W = size
    T = frames
    prog = _ease(rng, T)
    kind = ["disc", "square", "triangle", "arrow", "kite", "bar"][rng.integers(0, 6)]
    if pair == 2 and kind in ("disc", "square"):
        kind = ["triangle", "arrow", "kite", "bar"][rng.integers(0, 4)]
    bg = background(rng, H, W, hard)
    colour = rng.uniform(0, 255, 3)
    if not hard:        # a colour far from the background's mean (a few draws at most)
        for _ in range(20):
            if np.linalg.norm(colour - bg.reshape(-1, 3).mean(0)) > 120:
                break
            colour = rng.uniform(0, 255, 3)
    tex = object_texture(rng, H, W, colour)
    r = (rng.uniform(0.1, 0.2) if hard else rng.uniform(0.16, 0.26)) * size
    cx, cy = rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H
    angle0 = rng.uniform(0, 2 * math.pi)
    drift = rng.uniform(-0.1, 0.1, 2) * size
    noise = rng.uniform(0, 10 if hard else 5)
    span = rng.uniform(0.45, 0.8) * W               # left-to-right distance
    turn = rng.uniform(0.5, 1.5) * math.pi          # clockwise angle
    out = np.empty((T, H, W, 3), np.uint8)
    if pair == 3:      # approaching: the whole scene (background and object) zooms in
        big = 2 * size
        scene = cv2.resize(bg, (big, big), interpolation=cv2.INTER_LINEAR)
        scene = paint(scene, shape_points(kind, big / 2 + rng.uniform(-0.1, 0.1) * big,
                                          big / 2 + rng.uniform(-0.1, 0.1) * big, 2 * r, angle0),
                      colour, object_texture(rng, big, big, colour))
        z1 = rng.uniform(1.5, 2.3)
        fx, fy = big / 2 + rng.uniform(-0.15, 0.15) * big, big / 2 + rng.uniform(-0.15, 0.15) * big
    for i in range(T):
        p = prog[i]
        if pair == 0:          # left to right
            x = W * 0.5 - span / 2 + span * p + (cx - W / 2) * 0.3
            pts = shape_points(kind, x, cy + drift[1] * p, r, angle0)
            frame = paint(bg, pts, colour, tex)
        elif pair == 1:        # growing
            rr = r * (0.45 + 1.25 * p)
            frame = paint(bg, shape_points(kind, cx + drift[0] * p, cy + drift[1] * p, rr, angle0),
                          colour, tex)
        elif pair == 2:        # clockwise (image y points down, so a growing angle turns clockwise)
            a = angle0 + p * turn
            frame = paint(bg, shape_points(kind, cx, cy, r * 1.3, a), colour, tex)
        elif pair == 3:        # approaching
            z = z1 ** p        # zoom factor, exponential like a steady approach
            s = 1.0 / z        # source pixels per output pixel, over the 2x scene
            m = np.array([[2 * s, 0, fx - s * W], [0, 2 * s, fy - s * H]], np.float64)
            frame = cv2.warpAffine(scene, m, (W, H), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT)
        else:                  # fading in
            frame = paint(bg, shape_points(kind, cx, cy, r * 1.2, angle0), colour, tex,
                          alpha=min(1.0, 0.05 + 0.95 * p))
        if noise > 0:
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        out[i] = frame
    return out


def render_clip(label, rng, size, frames, hard=False):
    """Frames of one clip of class `label`: the even class renders forward, the odd one reversed."""
    clip = render_forward(label // 2, rng, size, frames, hard)
    return clip[::-1].copy() if label % 2 else clip


def write_avi(path, frames, fps=16, quality=90):
    """Write RGB frames as an MJPG .avi (every frame a key frame: order leaves no codec trace)."""
    cv2 = _cv2()
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not vw.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG video to {path}; is opencv-python installed "
                           f"with its video I/O (FFmpeg) support?")
    vw.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def make_demo(out, seed=0, per_class=30, val_per_class=10, test_per_class=10, size=80, frames=32,
              hard=False, pairs=None, fps=16, quiet=False):
    """Write the demo set to `out`; returns meta (counts, classes, seconds)."""
    t0 = time.time()
    pairs = list(range(len(PAIRS))) if pairs is None else list(pairs)
    classes = [c for p in pairs for c in PAIRS[p]]
    counts = {"train": per_class, "val": val_per_class, "test": test_per_class}
    jobs = [(split, new_label, 2 * p + twin, k) for split, n in counts.items()
            for new_label, (p, twin) in enumerate((p, t) for p in pairs for t in (0, 1))
            for k in range(n)]
    bar = progress(len(jobs), "demo videos", quiet)
    lists = {s: [] for s in counts}
    for split, label, orig, k in jobs:
        folder = os.path.join(out, "videos", split)
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng([seed, SPLITS[split], orig, k])
        clip = render_clip(orig, rng, size, frames, hard)
        name = f"{CLASSES[orig]}_{k:04d}.avi"
        write_avi(os.path.join(folder, name), clip, fps)
        lists[split].append(f"videos/{split}/{name} {label}")
        bar.update()
    bar.close()
    for split, lines in lists.items():
        with open(os.path.join(out, f"{split}.list"), "w") as f:
            f.write("\n".join(lines) + ("\n" if lines else ""))
    with open(os.path.join(out, "label_list.txt"), "w") as f:
        f.write("".join(f"{i} {c}\n" for i, c in enumerate(classes)))
    meta = {"seed": seed, "size": size, "frames": frames, "fps": fps, "hard": hard,
            "classes": classes, "counts": {s: n * len(classes) for s, n in counts.items()},
            "seconds": round(time.time() - t0, 2)}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({k: v for k, v in meta.items() if k != "seconds"}, f, indent=1)
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo"),
                    help="output folder (default: data/demo next to this script)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--per-class", type=int, default=30, help="training videos per class (30)")
    ap.add_argument("--val-per-class", type=int, default=10, help="validation videos per class (10)")
    ap.add_argument("--test-per-class", type=int, default=10, help="test videos per class (10)")
    ap.add_argument("--size", type=int, default=80, help="frame width and height in pixels (80)")
    ap.add_argument("--frames", type=int, default=32, help="frames per video (32)")
    ap.add_argument("--fps", type=int, default=16, help="frame rate written to the files (16)")
    ap.add_argument("--hard", action="store_true", help="full-contrast textured backgrounds, any "
                    "object colour, smaller objects, more noise")
    ap.add_argument("--pairs", default=None,
                    help="comma-separated pair numbers to keep, of: " +
                    ", ".join(f"{i}={a}/{b}" for i, (a, b) in enumerate(PAIRS)))
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    if a.size < 16 or a.frames < 2:
        ap.error("--size must be at least 16 and --frames at least 2")
    pairs = None if a.pairs is None else [int(x) for x in a.pairs.split(",")]
    if pairs is not None and any(not 0 <= p < len(PAIRS) for p in pairs):
        ap.error(f"--pairs takes numbers 0..{len(PAIRS) - 1}")
    meta = make_demo(a.out, a.seed, a.per_class, a.val_per_class, a.test_per_class, a.size,
                     a.frames, a.hard, pairs, a.fps, a.quiet)
    print(f"wrote {sum(meta['counts'].values())} videos ({meta['counts']}) of {len(meta['classes'])} "
          f"classes, {a.size}x{a.size}, {a.frames} frames, to {a.out} in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
