#!/usr/bin/env python
"""Per-clip time of the TSM train and test pipelines, per decoder, and DataLoader throughput.

    python benchmarks/data_pipeline.py                 # writes benchmarks/results/data_pipeline.{json,md}
    python benchmarks/data_pipeline.py --repeat 40 --videos ../shared/videos --demo data/demo

Measures, on the real videos (../shared/videos) and on the demo set (made in a temporary folder
when --demo does not exist):
  * the TSM test pipeline (8 segments, Scale 256, CenterCrop 224, Normalization) and the train
    pipeline (MultiScaleCrop 224, RandomFlip) per clip, for decord, OpenCV and PyAV;
  * a PaddleVideo-style reference of the test pipeline, re-implemented here from its documented
    behaviour (decord batch read, PIL bilinear resize and crop, stack, transpose, normalise), timed
    in the same rounds so that machine load affects both alike;
  * clips per second through build_dataloader with 0 and 2 workers.
Timings interleave the configurations round by round and report the median and the minimum.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def tsm_pipeline(mode, backend, size=224, short=256):
    sample = {"name": "Sampler", "num_seg": 8, "seg_len": 1, "valid_mode": mode != "train",
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


def demo_pipeline(mode, backend):
    p = tsm_pipeline(mode, backend, size=64, short=72)
    if mode == "train":      # no RandomFlip: direction is the class in the demo set
        p["transform"] = [t for t in p["transform"] if "RandomFlip" not in t]
    return p


def reference_test(path):
    """PaddleVideo-style TSM test pipeline: decord + PIL, as its code is documented to work."""
    import decord
    from PIL import Image
    vr = decord.VideoReader(path)
    n = len(vr)
    tick = n / 8
    idx = [int(tick / 2 + tick * i) for i in range(8)] if n > 8 else [0] * 8
    frames = vr.get_batch(idx).asnumpy()
    imgs = [Image.fromarray(f, mode="RGB") for f in frames]
    w, h = imgs[0].size
    if w < h:
        ow, oh = 256, int(h * 256 / w)
    else:
        ow, oh = int(w * 256 / h), 256
    imgs = [im.resize((ow, oh), Image.BILINEAR) for im in imgs]
    x1, y1 = int(round((ow - 224) / 2.0)), int(round((oh - 224) / 2.0))
    imgs = [im.crop((x1, y1, x1 + 224, y1 + 224)) for im in imgs]
    arr = np.stack([np.asarray(im) for im in imgs]).astype("float32").transpose(0, 3, 1, 2)
    arr = arr / 255.0
    arr -= np.array(MEAN, np.float32).reshape(3, 1, 1)
    arr /= np.array(STD, np.float32).reshape(3, 1, 1)
    return arr


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=os.path.join(os.path.dirname(REPO), "shared", "videos"))
    ap.add_argument("--demo", default=os.path.join(REPO, "data", "demo"))
    ap.add_argument("--repeat", type=int, default=20, help="timed rounds per case (20)")
    ap.add_argument("--demo-clips", type=int, default=20, help="demo videos timed per case (20)")
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "data_pipeline"))
    a = ap.parse_args(argv)
    from paddlevideo.loader import Compose
    backends = ["decord", "cv2", "pyav"]
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(),
                           "load_before": [round(x, 2) for x in os.getloadavg()]},
               "per_clip": {}, "dataloader": {}}

    # ---- real videos ----------------------------------------------------------------------
    for name in ("example.avi", "demo.mp4"):
        path = os.path.join(a.videos, name)
        if not os.path.isfile(path):
            print(f"skipping {path}: not found")
            continue
        cases = {}
        for mode in ("test", "train"):
            for b in backends:
                c = Compose(tsm_pipeline(mode, b))
                cases[f"{mode}/{b}"] = (lambda c=c: c({"filename": path}))
        cases["test/paddlevideo-style reference (decord+PIL)"] = lambda: reference_test(path)
        times = interleaved(cases, a.repeat)
        results["per_clip"][name] = {k: summary(v) for k, v in times.items()}

    # ---- demo set -------------------------------------------------------------------------
    demo = a.demo
    tmp = None
    if not os.path.isfile(os.path.join(demo, "val.list")):
        tmp = tempfile.mkdtemp(prefix="demo_")
        sys.path.insert(0, os.path.join(REPO, "data"))
        import make_demo
        make_demo.make_demo(tmp, quiet=True)
        demo = tmp
    with open(os.path.join(demo, "train.list")) as f:
        demo_files = [os.path.join(demo, line.split()[0]) for line in f if line.strip()]
    picks = demo_files[:: max(1, len(demo_files) // a.demo_clips)][:a.demo_clips]
    cases = {}
    for mode in ("test", "train"):
        for b in backends:
            c = Compose(demo_pipeline(mode, b))
            cases[f"{mode}/{b}"] = (lambda c=c: [c({"filename": p}) for p in picks])
    times = interleaved(cases, max(3, a.repeat // 4))
    results["per_clip"]["demo set (80x80, 32 frames)"] = {
        k: summary([t / len(picks) for t in v]) for k, v in times.items()}

    # ---- DataLoader -----------------------------------------------------------------------
    ex = os.path.join(a.videos, "example.avi")
    lists = {}
    if os.path.isfile(ex):
        lp = os.path.join(tempfile.mkdtemp(prefix="bench_"), "example16.list")
        with open(lp, "w") as f:
            f.write("".join(f"{ex} 5\n" for _ in range(32)))
        lists["example.avi x32, TSM test pipeline, batch 8"] = (lp, "", tsm_pipeline("test", "decord"), 8, 1)
    lists["demo train set, demo train pipeline, batch 16"] = (
        os.path.join(demo, "train.list"), demo, demo_pipeline("train", "decord"), 16, 1)
    for what, (lp, prefix, pipe, bs, epochs) in lists.items():
        results["dataloader"][what] = {f"{w} workers": loader_rate(lp, prefix, pipe, w, bs, epochs)
                                       for w in (0, 2)}
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]

    # ---- report ---------------------------------------------------------------------------
    lines = ["# Data pipeline benchmark", "",
             f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}; load "
             f"average before/after {results['machine']['load_before'][0]} / "
             f"{results['machine']['load_after'][0]}.", "",
             f"Command: `python benchmarks/data_pipeline.py --repeat {a.repeat}`", "",
             "## Per clip (ms, median / min)", "", "| video | pipeline/decoder | median | min |",
             "|---|---|---|---|"]
    for video, rows in results["per_clip"].items():
        for k, v in rows.items():
            lines.append(f"| {video} | {k} | {v['median_ms']} | {v['min_ms']} |")
    lines += ["", "## DataLoader (clips per second)", "", "| data | workers | clips | s | clips/s |",
              "|---|---|---|---|---|"]
    for what, rows in results["dataloader"].items():
        for k, v in rows.items():
            lines.append(f"| {what} | {k} | {v['clips']} | {v['seconds']} | {v['clips_per_s']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    with open(a.out + ".md", "w") as f:
        f.write(text)
    print(f"wrote {a.out}.json and {a.out}.md")
    if tmp:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
