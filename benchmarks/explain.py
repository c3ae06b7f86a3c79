"""Grad-CAM's cost against one forward pass of the same clip, on CPU.

The goal (issue 22): paddlevideo.explain.grad_cam takes at most 3x one forward pass. Both are
timed in dygraph, eval mode, on one clip (medians of interleaved runs, so both see the same
machine load); the forward pass runs under no_grad, as prediction does.

    python benchmarks/explain.py [--repeats 5] [--out DIR] [--smoke]

Models: TSM-R18 and TSM-R50 at 8 x 224 px (random weights: the cost does not depend on them).
Prints a table and writes explain.{json,md} to --out (benchmarks/results). --smoke runs the same
code on a tiny model with one repeat, only to check that the script still works (CI); its
figures are meaningless.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")

CASES = [("TSM-R18", 18, 8, 224), ("TSM-R50", 50, 8, 224)]
SMOKE_CASES = [("smoke: TSM-R18 4 x 32 px", 18, 4, 32)]
GOAL = 3.0


def build(depth, num_seg, classes=400):
    import paddle
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import AttrDict
    paddle.seed(0)
    model = build_model(AttrDict(framework="Recognizer2D",
                                 backbone=AttrDict(name="ResNetTSM", depth=depth,
                                                   num_seg=num_seg),
                                 head=AttrDict(name="TSMHead", num_classes=classes,
                                               in_channels=512 if depth < 50 else 2048)),
                        load_pretrained=False)
    model.eval()
    return model


def measure(model, clip, repeats):
    import paddle
    from paddlevideo.explain import grad_cam

    def forward():
        with paddle.no_grad():
            model(paddle.to_tensor(clip[None])).numpy()

    def cam():
        grad_cam(model, clip)
    forward()
    cam()                                                    # warm-up
    times = {"forward": [], "grad_cam": []}
    for _ in range(repeats):
        for name, fn in (("forward", forward), ("grad_cam", cam)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: 1000 * float(np.median(v)) for k, v in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=RESULTS)
    p.add_argument("--smoke", action="store_true",
                   help="tiny model, one repeat: checks the script runs; figures meaningless")
    args = p.parse_args(argv)
    from paddlevideo.utils.env import available_cores
    cases = SMOKE_CASES if args.smoke else CASES
    repeats = 1 if args.smoke else args.repeats
    rows = []
    for label, depth, num_seg, size in cases:
        model = build(depth, num_seg)
        clip = np.random.RandomState(0).standard_normal((num_seg, 3, size, size)).astype("f4")
        t = measure(model, clip, repeats)
        rows.append({"model": label, "clip": f"{num_seg} x {size} px", **t,
                     "ratio": t["grad_cam"] / t["forward"]})
        print(f"{label}: forward {t['forward']:.0f} ms, grad_cam {t['grad_cam']:.0f} ms, "
              f"ratio {rows[-1]['ratio']:.2f} (goal <= {GOAL})", flush=True)
    load = os.getloadavg()[0]
    result = {"machine": {"cpu_cores": available_cores(), "python": platform.python_version(),
                          "load_average_1min": load},
              "repeats": repeats, "goal_ratio": GOAL, "smoke": args.smoke, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "explain.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = ["# Grad-CAM against one forward pass (CPU)", ""]
    if args.smoke:
        lines += ["Smoke run (--smoke): a tiny model and one repeat; the figures are "
                  "meaningless.", ""]
    lines += [f"`python benchmarks/explain.py` on {available_cores()} CPU cores, medians of "
              f"{repeats} interleaved runs, one clip, dygraph, random weights; the machine's load "
              f"average was {load:.1f} (other jobs share it: absolute times are slow, the "
              f"ratio is what this measures). Goal: Grad-CAM <= {GOAL:g} x forward.", "",
              "| model | clip | forward (ms) | grad_cam (ms) | ratio |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['clip']} | {r['forward']:.0f} | {r['grad_cam']:.0f} | "
              f"{r['ratio']:.2f} |" for r in rows]
    with open(os.path.join(args.out, "explain.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
