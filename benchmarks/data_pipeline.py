#!/usr/bin/env python
"""Per-clip time of the TSM train and test pipelines, per decoder, and DataLoader throughput.

    python benchmarks/data_pipeline.py                 # writes benchmarks/results/data_pipeline.{json,md}
    python benchmarks/data_pipeline.py --repeat 40 --videos ../shared/videos --demo data/demo
    python benchmarks/data_pipeline.py --smoke --out /tmp/bench   # tiny and fast, for CI

Measures, on the real videos (../shared/videos), on a 1080p clip made here (example.avi's
frames upscaled, MPEG-4), and on the demo set (made in a temporary folder when --demo does not
exist):
  * the TSM test pipeline (8 segments, Scale 256, CenterCrop 224, Normalization) and the train
    pipeline (MultiScaleCrop 224, RandomFlip) per clip, for decord, OpenCV and PyAV (the 1080p
    clip: the test pipeline, where Scale shrinks 4.2x with PIL's antialiasing filter);
  * a PaddleVideo-style reference of the test pipeline, re-implemented here from its documented
    behaviour (decord batch read, PIL bilinear resize and crop, stack, transpose, normalise), timed
    in the same rounds so that machine load affects both alike, and each test pipeline's time as a
    ratio of it;
  * the resize alone, 8 frames to a short side of 256: the pipeline's (PIL's filter, computed
    with NumPy/OpenCV) against PIL's own, from 720p, 1080p and 4K;
  * clips per second through build_dataloader with 0 and 2 workers.
Timings interleave the configurations round by round and report the median and the minimum.
--smoke runs the same code at tiny sizes (4 segments, 32 px, one round, a tiny demo set made in a
temporary folder, a tiny stand-in for the real videos when they are absent): it checks that the
script works end to end, and its figures are meaningless.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RESULTS = os.path.join(REPO, "benchmarks", "results")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Sizes of the full run and of --smoke: clip (segments, crop, short side), demo pipelines, the
# DataLoader lists, and the default --repeat / --demo-clips.
FULL = {"num_seg": 8, "size": 224, "short": 256, "demo_size": 64, "demo_short": 72, "copies": 32,
        "batch": 8, "demo_batch": 16, "repeat": 20, "demo_clips": 20, "demo_rounds": 3,
        "hd": (1920, 1080, 64), "resize": ((1280, 720), (1920, 1080), (3840, 2160))}
SMOKE = {"num_seg": 4, "size": 32, "short": 36, "demo_size": 32, "demo_short": 36, "copies": 4,
         "batch": 2, "demo_batch": 4, "repeat": 1, "demo_clips": 2, "demo_rounds": 1,
         "hd": (192, 108, 8), "resize": ((128, 72),)}
REFERENCE = "test/paddlevideo-style reference (decord+PIL)"


def tsm_pipeline(mode, backend, size=224, short=256, num_seg=8):
    sample = {"name": "Sampler", "num_seg": num_seg, "seg_len": 1, "valid_mode": mode != "train",
              "select_left": True}
    if mode == "train":
        transform = [{"MultiScaleCrop": {"target_size": size, "allow_duplication": True}},
                     {"RandomFlip": None}]
    else:
        transform = [{"Scale": {"short_size": short, "fixed_ratio": False}},
                     {"CenterCrop": {"target_size": size}}]
    transform += [{"Image2Array": None}, {"Normalization": {"mean": MEAN, "std": STD}}]
    return {"decode": {"name": "VideoDecoder", "backend": backend}, "sample": sample,
            "transform": transform}


def demo_pipeline(mode, backend, sizes=FULL):
    p = tsm_pipeline(mode, backend, sizes["demo_size"], sizes["demo_short"], sizes["num_seg"])
    if mode == "train":      # no RandomFlip: direction is the class in the demo set
        p["transform"] = [t for t in p["transform"] if "RandomFlip" not in t]
    return p


def reference_test(path, num_seg=8, size=224, short=256):
    """PaddleVideo-style TSM test pipeline: decord + PIL, as its code is documented to work."""
    import decord
    from PIL import Image
    vr = decord.VideoReader(path)
    n = len(vr)
    tick = n / num_seg
    idx = [int(tick / 2 + tick * i) for i in range(num_seg)] if n > num_seg else [0] * num_seg
    frames = vr.get_batch(idx).asnumpy()
    imgs = [Image.fromarray(f, mode="RGB") for f in frames]
    w, h = imgs[0].size
    if w < h:
        ow, oh = short, int(h * short / w)
    else:
        ow, oh = int(w * short / h), short
    imgs = [im.resize((ow, oh), Image.BILINEAR) for im in imgs]
    x1, y1 = int(round((ow - size) / 2.0)), int(round((oh - size) / 2.0))
    imgs = [im.crop((x1, y1, x1 + size, y1 + size)) for im in imgs]
    arr = np.stack([np.asarray(im) for im in imgs]).astype("float32").transpose(0, 3, 1, 2)
    arr = arr / 255.0
    arr -= np.array(MEAN, np.float32).reshape(3, 1, 1)
    arr /= np.array(STD, np.float32).reshape(3, 1, 1)
    return arr


def make_hd_clip(src, path, width, height, frames):
    """A `width` x `height` MPEG-4 clip of `frames` frames: `src`'s frames upscaled (cubic), so
    the pipelines have a large source to shrink, as 1080p Kinetics clips are."""
    import cv2
    cap = cv2.VideoCapture(src)
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for _ in range(frames):
        ok, f = cap.read()
        if not ok:
            break
        vw.write(cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC))
    vw.release()
    return path


def resize_cases(src, sizes, short, num):
    """{'WxH: ours' / 'WxH: PIL': fn} resizing `num` frames of `src`, upscaled to each size, to a
    short side of `short`."""
    import cv2
    from PIL import Image
    from paddlevideo.loader.pipelines.resample import resize_frames
    cap = cv2.VideoCapture(src)
    base = [cap.read()[1] for _ in range(num)]
    cases = {}
    for w, h in sizes:
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in base])
        ow, oh = int(w * short / h), short
        cases[f"{w}x{h}: ours"] = (lambda f=frames, ow=ow, oh=oh: resize_frames(f, ow, oh))
        cases[f"{w}x{h}: PIL"] = (lambda f=frames, ow=ow, oh=oh: [
            np.asarray(Image.fromarray(x).resize((ow, oh), Image.BILINEAR)) for x in f])
    return cases


def ratios(rows):
    """{case: {median, min}}: each test pipeline's time over the reference's, same rounds."""
    ref = rows.get(REFERENCE)
    if not ref:
        return {}
    return {k: {"median": round(v["median_ms"] / ref["median_ms"], 2),
                "min": round(v["min_ms"] / ref["min_ms"], 2)}
            for k, v in rows.items() if k.startswith("test/") and k != REFERENCE}


def interleaved(cases, repeat):
    """{name: [seconds, ...]} running each case once per round, `repeat` rounds after a warm-up."""
    times = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(repeat):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def summary(ts):
    return {"median_ms": round(statistics.median(ts) * 1e3, 2), "min_ms": round(min(ts) * 1e3, 2),
            "n": len(ts)}


def loader_rate(list_path, prefix, pipeline, workers, batch_size, epochs=1):
    from paddlevideo.loader import VideoDataset, build_dataloader
    ds = VideoDataset(list_path, pipeline, "train", data_prefix=prefix)
    loader = build_dataloader(ds, batch_size, num_workers=workers, shuffle=True, seed=0)
    n = 0
    t = time.perf_counter()
    for e in range(epochs):
        loader.set_epoch(e)
        for imgs, labels, ids, failed in loader:
            n += int(imgs.shape[0]) + int(failed.shape[0])
    dt = time.perf_counter() - t
    return {"clips": n, "seconds": round(dt, 2), "clips_per_s": round(n / dt, 1)}


def out_prefix(out):
    """--out: a folder (existing, or written with a trailing /) gets data_pipeline.{json,md}; any
    other path is a file prefix, as --out was before it took folders."""
    if out is None:
        out = RESULTS
    if os.path.isdir(out) or out.endswith(("/", os.sep)):
        return os.path.join(out, "data_pipeline")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=os.path.join(os.path.dirname(REPO), "shared", "videos"))
    ap.add_argument("--demo", default=None,
                    help="demo set (default data/demo, made in a temporary folder when absent; "
                         "--smoke makes a tiny one there)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed rounds per case (20; 1 with --smoke)")
    ap.add_argument("--demo-clips", type=int, default=None,
                    help="demo videos timed per case (20; 2 with --smoke)")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="folder for data_pipeline.{json,md} (default benchmarks/results); a path "
                         "that is not a folder is a file prefix (PREFIX.json, PREFIX.md)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, one round: checks that the script runs end to end; its "
                         "figures are meaningless")
    a = ap.parse_args(argv)
    sizes = SMOKE if a.smoke else FULL
    a.repeat = sizes["repeat"] if a.repeat is None else a.repeat
    a.demo_clips = sizes["demo_clips"] if a.demo_clips is None else a.demo_clips
    from paddlevideo.loader import Compose
    backends = ["decord", "cv2", "pyav"]
    clip = (sizes["size"], sizes["short"], sizes["num_seg"])
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(),
                           "load_before": [round(x, 2) for x in os.getloadavg()]},
               "smoke": a.smoke, "per_clip": {}, "ratio_to_reference": {}, "resize": {},
               "dataloader": {}}
    tmp = tempfile.mkdtemp(prefix="bench_")
    try:
        # ---- the demo set (data/demo, else made here) ---------------------------------------
        demo = a.demo or os.path.join(REPO, "data", "demo")
        if (a.smoke and a.demo is None) or not os.path.isfile(os.path.join(demo, "val.list")):
            from demo_set import make_demo_set
            demo = make_demo_set(os.path.join(tmp, "demo"), tiny=a.smoke)
        with open(os.path.join(demo, "train.list")) as f:
            demo_files = [os.path.join(demo, line.split()[0]) for line in f if line.strip()]
        videos = a.videos
        names = ("example.avi", "demo.mp4")
        if a.smoke and not any(os.path.isfile(os.path.join(videos, n)) for n in names):
            videos = os.path.join(tmp, "videos")
            os.makedirs(videos)
            shutil.copy(demo_files[0], os.path.join(videos, "example.avi"))
            print(f"smoke: no real videos in {a.videos}; a tiny demo video stands in for example.avi")

        # ---- real videos, and a large one made from example.avi ---------------------------
        clips = [(name, os.path.join(videos, name), ("test", "train")) for name in names]
        w, h, n = sizes["hd"]
        if os.path.isfile(os.path.join(videos, "example.avi")):
            hd = make_hd_clip(os.path.join(videos, "example.avi"), os.path.join(tmp, "hd.mp4"), w, h, n)
            clips.append((f"{w}x{h} clip ({n} frames, example.avi upscaled, MPEG-4)", hd, ("test",)))
        for name, path, modes in clips:
            if not os.path.isfile(path):
                print(f"skipping {path}: not found")
                continue
            cases = {}
            for mode in modes:
                for b in backends:
                    c = Compose(tsm_pipeline(mode, b, *clip))
                    cases[f"{mode}/{b}"] = (lambda c=c, path=path: c({"filename": path}))
            cases[REFERENCE] = (lambda path=path: reference_test(path, sizes["num_seg"], sizes["size"],
                                                                 sizes["short"]))
            times = interleaved(cases, a.repeat)
            results["per_clip"][name] = {k: summary(v) for k, v in times.items()}
            results["ratio_to_reference"][name] = ratios(results["per_clip"][name])

        # ---- the resize alone -------------------------------------------------------------
        if os.path.isfile(os.path.join(videos, "example.avi")):
            times = interleaved(resize_cases(os.path.join(videos, "example.avi"), sizes["resize"],
                                             sizes["short"], sizes["num_seg"]), a.repeat)
            for w, h in sizes["resize"]:
                ours, pil = summary(times[f"{w}x{h}: ours"]), summary(times[f"{w}x{h}: PIL"])
                results["resize"][f"{w}x{h}"] = {
                    "ours": ours, "pil": pil,
                    "ratio_median": round(ours["median_ms"] / pil["median_ms"], 2),
                    "ratio_min": round(ours["min_ms"] / pil["min_ms"], 2)}

        # ---- demo set ---------------------------------------------------------------------
        picks = demo_files[:: max(1, len(demo_files) // a.demo_clips)][:a.demo_clips]
        cases = {}
        for mode in ("test", "train"):
            for b in backends:
                c = Compose(demo_pipeline(mode, b, sizes))
                cases[f"{mode}/{b}"] = (lambda c=c: [c({"filename": p}) for p in picks])
        times = interleaved(cases, max(sizes["demo_rounds"], a.repeat // 4))
        meta = {"size": 80, "frames": 32}
        if os.path.isfile(os.path.join(demo, "meta.json")):
            with open(os.path.join(demo, "meta.json")) as f:
                meta = json.load(f)
        results["per_clip"][f"demo set ({meta['size']}x{meta['size']}, {meta['frames']} frames)"] = {
            k: summary([t / len(picks) for t in v]) for k, v in times.items()}

        # ---- DataLoader -------------------------------------------------------------------
        ex = os.path.join(videos, "example.avi")
        lists = {}
        if os.path.isfile(ex):
            lp = os.path.join(tmp, "example.list")
            with open(lp, "w") as f:
                f.write("".join(f"{ex} 5\n" for _ in range(sizes["copies"])))
            lists[f"example.avi x{sizes['copies']}, TSM test pipeline, batch {sizes['batch']}"] = (
                lp, "", tsm_pipeline("test", "decord", *clip), sizes["batch"], 1)
        lists[f"demo train set, demo train pipeline, batch {sizes['demo_batch']}"] = (
            os.path.join(demo, "train.list"), demo, demo_pipeline("train", "decord", sizes),
            sizes["demo_batch"], 1)
        for what, (lp, prefix, pipe, bs, epochs) in lists.items():
            results["dataloader"][what] = {f"{w} workers": loader_rate(lp, prefix, pipe, w, bs, epochs)
                                           for w in (0, 2)}
        results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # ---- report ---------------------------------------------------------------------------
    lines = ["# Data pipeline benchmark", "",
             f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}; load "
             f"average before/after {results['machine']['load_before'][0]} / "
             f"{results['machine']['load_after'][0]}.", "",
             f"Command: `python benchmarks/data_pipeline.py --repeat {a.repeat}"
             f"{' --smoke' if a.smoke else ''}`", ""]
    if a.smoke:
        lines += ["Smoke run (--smoke): tiny clips and videos, one round; the figures are "
                  "meaningless.", ""]
    lines += ["## Per clip (ms, median / min)", "", "| video | pipeline/decoder | median | min |",
              "|---|---|---|---|"]
    for video, rows in results["per_clip"].items():
        for k, v in rows.items():
            lines.append(f"| {video} | {k} | {v['median_ms']} | {v['min_ms']} |")
    lines += ["", "## Test pipeline time / PaddleVideo-style reference time, same rounds", "",
              "| video | pipeline/decoder | by median | by min |", "|---|---|---|---|"]
    for video, rows in results["ratio_to_reference"].items():
        for k, v in rows.items():
            lines.append(f"| {video} | {k} | {v['median']} | {v['min']} |")
    lines += ["", f"## Resize alone, {sizes['num_seg']} frames to a short side of {sizes['short']} "
              f"(ms, median / min)", "",
              "| source | ours (PIL's filter, NumPy/OpenCV) | PIL | ours / PIL by median | by min |",
              "|---|---|---|---|---|"]
    for size, r in results["resize"].items():
        lines.append(f"| {size} | {r['ours']['median_ms']} / {r['ours']['min_ms']} | "
                     f"{r['pil']['median_ms']} / {r['pil']['min_ms']} | {r['ratio_median']} | "
                     f"{r['ratio_min']} |")
    lines += ["", "## DataLoader (clips per second)", "", "| data | workers | clips | s | clips/s |",
              "|---|---|---|---|---|"]
    for what, rows in results["dataloader"].items():
        for k, v in rows.items():
            lines.append(f"| {what} | {k} | {v['clips']} | {v['seconds']} | {v['clips_per_s']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = out_prefix(a.out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(text)
    print(f"wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
