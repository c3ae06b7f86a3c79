"""The timeline tool's speed against its two limits and against the naive loop.

For each model, on one video, in one run:
- tool: run_timeline (each frame decoded and preprocessed once, windows batched) in windows/s;
- decode limit: decoding the video once, sequentially, and nothing else, as windows/s (the
  tool's windows divided by that time);
- inference limit: the engine alone on ready clips, at the best of the batch sizes tried;
- naive loop: each window on its own as a user would write it: seek to the window, decode its
  frames, sample and preprocess them, predict at batch 1.
Goal (issue 22): the tool reaches 0.9 of the slower of its two limits; the ratio to the loop is
reported.

    python benchmarks/timeline.py [--video ../shared/videos/demo.mp4] [--seconds 4]
                                  [--out DIR] [--smoke]

Models: the demo config's TSM-R18 (8 x 32 px) and TSM-R50 (8 x 224 px), random weights (speed
does not depend on them), served by Paddle Inference fp32 (InferenceEngine.from_model). Writes
timeline.{json,md} to --out (benchmarks/results). --smoke: the demo model only, on a short
synthetic video, batch sizes 1-2; the figures are meaningless.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
RESULTS = os.path.join(HERE, "results")
VIDEO = os.path.join(os.path.dirname(REPO), "shared", "videos", "demo.mp4")
WINDOW_S, STRIDE_S = 2.0, 1.0


def model_and_pipeline(name):
    from paddlevideo.config_check import load_and_check_config
    from paddlevideo.modeling.builder import model_from_config
    from paddlevideo.utils.config import to_plain
    overrides = ["MODEL.backbone.pretrained=null"]
    path = {"demo": "configs/recognition/tsm/tsm_demo.yaml",
            "r50": "configs/recognition/tsm/tsm_k400_videos.yaml"}[name]
    cfg = load_and_check_config(os.path.join(REPO, path), overrides)
    return model_from_config(cfg), to_plain(cfg["PIPELINE"]["test"])


def synthetic_video(path, frames=60, size=(96, 80)):
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    rng = np.random.RandomState(0)
    for _ in range(frames):
        writer.write(rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def bench(name, video, seconds, batches):
    from paddlevideo.deploy.export import pipeline_input_size
    from paddlevideo.deploy.online import frame_preprocessor
    from paddlevideo.deploy.runtime import InferenceEngine
    from paddlevideo.deploy.timeline import WindowPlan, read_frames, run_timeline
    model, pipeline = model_and_pipeline(name)
    num_seg, size = pipeline_input_size(pipeline)
    engine = InferenceEngine.from_model(model, num_seg, size, backend="paddle", precision="fp32",
                                        max_batch_size=max(batches))
    prep = frame_preprocessor(pipeline)
    fps, _, _ = read_frames(video)
    plan = WindowPlan.from_pipeline(pipeline, fps, WINDOW_S, STRIDE_S)
    limit = int(seconds * fps) if seconds else None

    # decode limit
    start = time.perf_counter()
    frames = sum(1 for _ in read_frames(video, limit)[2])
    decode_s = time.perf_counter() - start
    windows = max(1, (frames - plan.window) // plan.stride + 1)

    # inference limit at the best batch
    clips = np.random.RandomState(0).standard_normal(
        (max(batches), num_seg, 3, size, size)).astype("float32")
    engine(clips[:1])                                                  # warm-up
    per_batch = {}
    for b in batches:
        start = time.perf_counter()
        engine(clips[:b])
        per_batch[b] = b / (time.perf_counter() - start)
    best_batch = max(per_batch, key=per_batch.get)

    # the tool
    start = time.perf_counter()
    record, _ = run_timeline(read_frames(video, limit)[2], plan, engine, prep,
                             batch_size=best_batch)
    tool_s = time.perf_counter() - start
    assert len(record["windows"]) == windows, (len(record["windows"]), windows)

    # the naive loop: every window on its own, batch 1
    import cv2
    start = time.perf_counter()
    for w in record["windows"]:
        cap = cv2.VideoCapture(video)
        cap.set(cv2.CAP_PROP_POS_FRAMES, w["start_frame"])
        got = []
        for _ in range(w["end_frame"] - w["start_frame"]):
            ok, frame = cap.read()
            if not ok:
                break
            got.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        cap.release()
        idx = plan.sample(len(got))
        engine(np.stack([prep(got[i]) for i in idx])[None])
    loop_s = time.perf_counter() - start

    row = {"model": name, "clip": f"{num_seg} x {size} px", "frames": frames,
           "windows": windows, "best_batch": best_batch,
           "tool_windows_per_s": windows / tool_s,
           "decode_limit_windows_per_s": windows / decode_s,
           "inference_limit_windows_per_s": per_batch[best_batch],
           "inference_windows_per_s_by_batch": per_batch,
           "loop_windows_per_s": windows / loop_s}
    row["ratio_to_slower_limit"] = row["tool_windows_per_s"] / min(
        row["decode_limit_windows_per_s"], row["inference_limit_windows_per_s"])
    row["ratio_to_loop"] = row["tool_windows_per_s"] / row["loop_windows_per_s"]
    engine.close()
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", default=VIDEO)
    p.add_argument("--seconds", type=float, default=4.0,
                   help="use the video's first SECONDS (0: all of it)")
    p.add_argument("--models", default="demo,r50")
    p.add_argument("--out", default=RESULTS)
    p.add_argument("--smoke", action="store_true",
                   help="demo model, short synthetic video: checks the script runs; figures "
                        "meaningless")
    args = p.parse_args(argv)
    from paddlevideo.utils import quiet
    from paddlevideo.utils.env import available_cores
    quiet.install()
    with tempfile.TemporaryDirectory() as tmp:
        video = synthetic_video(os.path.join(tmp, "v.avi")) if args.smoke else args.video
        models = ["demo"] if args.smoke else args.models.split(",")
        batches = [1, 2] if args.smoke else [1, 2, 4, 8]
        rows = []
        for name in models:
            rows.append(bench(name, video, 0 if args.smoke else args.seconds,
                              batches if name == "demo" else [1, 2, 3]))
            r = rows[-1]
            print(f"{name}: tool {r['tool_windows_per_s']:.2f} windows/s; limits: decode "
                  f"{r['decode_limit_windows_per_s']:.2f}, inference "
                  f"{r['inference_limit_windows_per_s']:.2f} (batch {r['best_batch']}); loop "
                  f"{r['loop_windows_per_s']:.2f}; ratio to the slower limit "
                  f"{r['ratio_to_slower_limit']:.2f}, to the loop {r['ratio_to_loop']:.2f}",
                  flush=True)
    load = os.getloadavg()[0]
    result = {"machine": {"cpu_cores": available_cores(), "load_average_1min": load},
              "video": "synthetic" if args.smoke else os.path.basename(args.video),
              "seconds": args.seconds, "window_s": WINDOW_S, "stride_s": STRIDE_S,
              "smoke": args.smoke, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "timeline.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = ["# Timeline speed (CPU)", ""]
    if args.smoke:
        lines += ["Smoke run (--smoke): a short synthetic video; the figures are meaningless.", ""]
    lines += [f"`python benchmarks/timeline.py --seconds {args.seconds:g}` on "
              f"{available_cores()} CPU cores (load average {load:.1f}: other jobs share the "
              f"machine), {WINDOW_S:g} s windows every {STRIDE_S:g} s of "
              f"{result['video']}, Paddle Inference fp32, random weights. Windows per second.",
              "", "| model | clip | windows | tool | decode limit | inference limit (batch) | "
              "naive loop | tool / slower limit | tool / loop |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['clip']} | {r['windows']} | {r['tool_windows_per_s']:.2f} | "
              f"{r['decode_limit_windows_per_s']:.2f} | "
              f"{r['inference_limit_windows_per_s']:.2f} ({r['best_batch']}) | "
              f"{r['loop_windows_per_s']:.2f} | {r['ratio_to_slower_limit']:.2f} | "
              f"{r['ratio_to_loop']:.2f} |" for r in rows]
    with open(os.path.join(args.out, "timeline.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
