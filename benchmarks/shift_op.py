"""Fused `temporal_shift` against the same shift composed of pad/slice/concat.

Forward and backward time (medians of interleaved runs, so both see the same machine load) and
peak memory (extra memory at the peak of one forward+backward, from Paddle's allocator
statistics), at
PaddleVideo's shapes ([32,16,32,32] and [128,64,128,128], 2 segments) and at the shapes of
TSM-R50's shifted activations for one 8-frame 224px clip.

    python benchmarks/shift_op.py [--repeats 20] [--device cpu|gpu] [--out DIR] [--smoke]

Prints a table and writes shift_op.{json,md} to --out (benchmarks/results). --smoke runs the same
code on two small shapes with one repeat, only to check that the script still works (CI).
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

# (label, shape [N*T, C, H, W], segments)
CASES = [
    ("PaddleVideo small", [32, 16, 32, 32], 2),
    ("PaddleVideo large", [128, 64, 128, 128], 2),
    ("R50 res2a in", [8, 64, 56, 56], 8),
    ("R50 res2 in", [8, 256, 56, 56], 8),
    ("R50 res3 in", [8, 512, 28, 28], 8),
    ("R50 res4 in", [8, 1024, 14, 14], 8),
    ("R50 res5 in", [8, 2048, 7, 7], 8),
]
SMOKE_CASES = [            # --smoke: a few hundred KB each, milliseconds
    ("smoke, 2 segments", [8, 32, 16, 16], 2),
    ("smoke, 4 segments", [8, 64, 8, 8], 4),
]
RATIO = 0.125


def composed_shift(x, num_seg, ratio):
    """The bidirectional shift written with pad/slice/concat, as toolkits without the op do."""
    import paddle
    import paddle.nn.functional as F
    nt, c, h, w = x.shape
    fold = int(c * ratio)
    clip = paddle.reshape(x, [nt // num_seg, num_seg, c, h, w])
    padded = F.pad(clip, [0, 0, 1, 1, 0, 0, 0, 0, 0, 0])      # one zero frame at each end of T
    past = padded[:, :num_seg, :fold]                  # frame t takes t-1
    future = padded[:, 2:, fold:2 * fold]              # frame t takes t+1
    out = paddle.concat([past, future, clip[:, :, 2 * fold:]], axis=2)
    return paddle.reshape(out, [nt, c, h, w])


def fused_shift(x, num_seg, ratio):
    import paddle.nn.functional as F
    return F.temporal_shift(x, seg_num=num_seg, shift_ratio=ratio)


IMPLS = {"fused": fused_shift, "composed": composed_shift}


def _sync(paddle):
    if paddle.device.get_device().startswith("gpu"):
        paddle.device.synchronize()


def time_case(shape, num_seg, repeats):
    """Median forward and backward ms of each implementation, interleaved."""
    import paddle
    x = paddle.randn(shape)
    x.stop_gradient = False
    grad = paddle.randn(shape)
    times = {name: {"forward": [], "backward": []} for name in IMPLS}
    for _ in range(2):                                  # warm-up
        for fn in IMPLS.values():
            fn(x, num_seg, RATIO).backward(grad)
    for _ in range(repeats):
        for name, fn in IMPLS.items():
            _sync(paddle)
            t0 = time.perf_counter()
            out = fn(x, num_seg, RATIO)
            _sync(paddle)
            t1 = time.perf_counter()
            out.backward(grad)
            _sync(paddle)
            t2 = time.perf_counter()
            times[name]["forward"].append((t1 - t0) * 1e3)
            times[name]["backward"].append((t2 - t1) * 1e3)
            x.clear_gradient()
    return {name: {k: float(np.median(v)) for k, v in t.items()} for name, t in times.items()}


def peak_memory(impl, shape, num_seg, device):
    """Extra memory (MB) at the peak of one forward+backward: Paddle's allocator statistics."""
    import paddle
    from paddle.base import core
    fn = IMPLS[impl]
    x = paddle.randn(shape)
    x.stop_gradient = False
    grad = paddle.randn(shape)
    if device.startswith("gpu"):
        paddle.device.synchronize()
        paddle.device.cuda.reset_max_memory_allocated()
        base = paddle.device.cuda.memory_allocated()
        fn(x, num_seg, RATIO).backward(grad)
        peak = paddle.device.cuda.max_memory_allocated()
    else:
        core.host_memory_stat_reset_peak_value("Allocated", 0)
        base = core.host_memory_stat_current_value("Allocated", 0)
        fn(x, num_seg, RATIO).backward(grad)
        peak = core.host_memory_stat_peak_value("Allocated", 0)
    return (peak - base) / 2 ** 20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per case (20; 1 with --smoke)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=RESULTS, metavar="DIR",
                        help="folder for shift_op.{json,md} (default benchmarks/results)")
    parser.add_argument("--smoke", action="store_true",
                        help="two small shapes, one repeat: checks that the script runs end to end; "
                             "its figures are meaningless")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 20
    import paddle
    paddle.set_device(args.device)
    rows = []
    for label, shape, num_seg in SMOKE_CASES if args.smoke else CASES:
        t = time_case(shape, num_seg, args.repeats)
        mem = {impl: peak_memory(impl, shape, num_seg, args.device) for impl in IMPLS}
        row = {"case": label, "shape": shape, "num_seg": num_seg,
               **{f"{impl}_{k}_ms": round(v, 3) for impl in IMPLS for k, v in t[impl].items()},
               **{f"{impl}_peak_mb": round(m, 1) for impl, m in mem.items()}}
        row["forward_speedup"] = round(t["composed"]["forward"] / t["fused"]["forward"], 2)
        row["backward_speedup"] = round(t["composed"]["backward"] / t["fused"]["backward"], 2)
        row["memory_ratio"] = round(mem["composed"] / max(mem["fused"], 1e-9), 2)
        rows.append(row)
        print(f"{label:<18} {str(shape):<20} fwd {t['fused']['forward']:8.3f} vs {t['composed']['forward']:8.3f} ms "
              f"(x{row['forward_speedup']})  bwd {t['fused']['backward']:8.3f} vs {t['composed']['backward']:8.3f} ms "
              f"(x{row['backward_speedup']})  peak {mem['fused']:7.1f} vs {mem['composed']:7.1f} MB", flush=True)
    meta = {"command": "python benchmarks/shift_op.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"), "device": args.device,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "paddle": paddle.__version__, "threads": os.environ.get("OMP_NUM_THREADS"),
            "repeats": args.repeats, "shift_ratio": RATIO, "smoke": args.smoke}
    os.makedirs(args.out, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"
    with open(os.path.join(args.out, f"shift_op{suffix}.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [f"`{meta['command']}` ({meta['date']}, {meta['device']}, {meta['machine']}, "
             f"Paddle {meta['paddle']}, OMP_NUM_THREADS={meta['threads']})", "",
             "| case | shape (segments) | fwd fused / composed ms | bwd fused / composed ms | "
             "fwd speed-up | bwd speed-up | peak MB fused / composed |",
             "|---|---|---|---|---|---|---|"]
    if args.smoke:
        lines[1:1] = ["", "Smoke run (--smoke): tiny shapes, one repeat; the figures are meaningless."]
    for r in rows:
        lines.append(f"| {r['case']} | {r['shape']} ({r['num_seg']}) | {r['fused_forward_ms']:.3f} / "
                     f"{r['composed_forward_ms']:.3f} | {r['fused_backward_ms']:.3f} / {r['composed_backward_ms']:.3f} | "
                     f"{r['forward_speedup']}x | {r['backward_speedup']}x | {r['fused_peak_mb']:.0f} / "
                     f"{r['composed_peak_mb']:.0f} |")
    with open(os.path.join(args.out, f"shift_op{suffix}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
