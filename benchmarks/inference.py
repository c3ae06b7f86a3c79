"""TSM-R50 8x224 inference on this CPU: every means side by side in one run, as ratios.

    python benchmarks/inference.py [--runs 3] [--threads 1 2] [--batches 1 8] [--skip_dygraph_b8]
                                   [--out DIR] [--smoke]

Compares dygraph, the PaddleVideo-equivalent export (Paddle Inference fp32, BatchNorm as exported
by paddle.jit.save), our export (BN folded) in fp32 and bf16, and ONNX Runtime fp32 and int8
(post-training quantization calibrated on clips of the real videos, paddlevideo/deploy/quant.py)
when installed; on 1 thread and on all threads; batch 1 and 8. ONNX Runtime also runs the same
model as paddle2onnx's default Polygraphy folding would have written it (when polygraphy and
onnx_graphsurgeon are importable here; nothing is installed), to show that folding with ONNX
Runtime instead loses nothing. Then the online per-frame step. Each
variant's answers are compared with the fp32 export: max logit difference on random clips and
top-1 agreement on the real videos in ../shared/videos (random seeded weights: no trained weights
offline; agreement of the rankings is what precision changes). Writes inference.{json,md} to --out
(benchmarks/results). --smoke runs every step (exports, ONNX, int8, online) on TSM-R18 4x32, one
run, 1 thread, batches 1 and 2, calibrating on random clips when the real videos are absent: it
checks that the script works end to end, and its figures are meaningless.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
HERE = os.path.dirname(os.path.abspath(__file__))
VIDEOS = os.path.join(HERE, "..", "..", "shared", "videos")
RESULTS = os.path.join(HERE, "results")
# The full run and --smoke: model (depth, segments, input size) and default --runs/--batches/--threads.
FULL = {"label": "TSM-R50 8x224", "depth": 50, "num_seg": 8, "size": 224, "runs": 3,
        "batches": [1, 8], "threads": None}
SMOKE = {"label": "TSM-R18 4x32 (smoke)", "depth": 18, "num_seg": 4, "size": 32, "runs": 1,
         "batches": [1, 2], "threads": [1]}


def build(mode="bidirectional", sizes=FULL):
    import paddle
    from paddlevideo.modeling.builder import build_model
    paddle.seed(0)
    cfg = {"framework": "Recognizer2D",
           "backbone": {"name": "ResNetTSM", "depth": sizes["depth"], "num_seg": sizes["num_seg"],
                        "shift_mode": mode},
           "head": {"name": "TSMHead", "num_classes": 400,
                    "in_channels": 2048 if sizes["depth"] >= 50 else 512}}
    model = build_model(cfg, load_pretrained=False)
    rng = np.random.RandomState(0)
    for name, buf in model.named_buffers():            # realistic BN statistics
        if name.endswith("_variance"):
            buf.set_value(rng.uniform(0.5, 2.0, buf.shape).astype("float32"))
    fc = model.head.fc.weight
    fc.set_value(rng.normal(0, 0.02, fc.shape).astype("float32"))
    model.eval()
    return model


def timed(fn, x, runs):
    """Median ms of fn(x) over `runs` calls after a warm-up."""
    from paddlevideo.utils.timing import time_calls
    return 1000.0 * float(np.median(time_calls(lambda: fn(x), runs)))


def interleaved(fns, x, rounds):
    """Median ms of each fn(x), timed in alternation (A, B, A, B, ...) after one warm-up each, so
    that a shared machine's load drift falls on all of them alike."""
    import time
    for fn in fns:
        fn(x)
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn(x)
            out.append(time.perf_counter() - start)
    return [1000.0 * float(np.median(t)) for t in times]


def video_clips(seeds=None, sizes=FULL):
    """The test pipeline's clip of each real video; with `seeds`, one clip per seed and video
    with the training-style random frame offsets (int8 calibration data)."""
    try:
        from paddlevideo.loader import Compose
    except Exception:
        return []
    pipe = {"decode": {"name": "VideoDecoder", "backend": "decord"},
            "sample": {"name": "Sampler", "num_seg": sizes["num_seg"], "valid_mode": seeds is None,
                       "select_left": True},
            "transform": [{"Scale": {"short_size": sizes["size"] * 8 // 7, "fixed_ratio": False}},
                          {"CenterCrop": {"target_size": sizes["size"]}}, {"Image2Array": None},
                          {"Normalization": {"mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225]}}]}
    out = []
    if os.path.isdir(VIDEOS):
        compose = Compose(pipe)
        for f in sorted(os.listdir(VIDEOS)):
            for seed in seeds or [0]:
                try:
                    out.append(compose({"filename": os.path.join(VIDEOS, f),
                                        "rng": np.random.default_rng(seed)})["imgs"])
                except Exception as e:
                    print(f"skip {f}: {e}")
                    break
    return out


def quantize_int8(onnx_file, infer_config, clips):
    """NAME.int8.onnx calibrated on `clips`, kept whatever its agreement (it is reported, not
    gated, here); returns the check record."""
    from paddlevideo.deploy.export import record_check
    from paddlevideo.deploy.quant import quantize_onnx
    record = quantize_onnx(onnx_file, np.stack(clips), min_agreement=0.0, speed_runs=0)
    record_check(infer_config, "int8_check", record)
    return record


def polygraphy_copy(ours, folder):
    """A copy of export `ours` whose TSM.onnx is paddle2onnx's default output (Polygraphy's
    constant folding), for the side-by-side timing; None when polygraphy or onnx_graphsurgeon is
    not importable here (nothing is installed: the autoinstall switch stays off)."""
    import importlib.util
    if any(importlib.util.find_spec(m) is None for m in ("polygraphy", "onnx_graphsurgeon")):
        return None
    import onnx
    import paddle2onnx
    from polygraphy.backend.onnx import fold_constants
    from paddlevideo.deploy.export import record_check
    from paddlevideo.deploy.runtime import file_digest
    os.environ.pop("POLYGRAPHY_AUTOINSTALL_DEPS", None)
    shutil.copytree(ours, folder)
    raw = paddle2onnx.export(os.path.join(folder, "TSM.json"), os.path.join(folder, "TSM.pdiparams"),
                             None, opset_version=13, optimize_tool="None")
    onnx.save(fold_constants(onnx.load_from_string(raw)), os.path.join(folder, "TSM.onnx"))
    record_check(os.path.join(folder, "TSM.infer.yaml"), "onnx_check",
                 {"file": "TSM.onnx", "sha256": file_digest(os.path.join(folder, "TSM.onnx")),
                  "passed": True, "note": "benchmark copy, checked by the agreement table"})
    return folder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=None, help="timed runs per variant (3; 1 with --smoke)")
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="thread counts (1 and all cores; 1 with --smoke)")
    ap.add_argument("--batches", type=int, nargs="*", default=None,
                    help="batch sizes (1 8; 1 2 with --smoke)")
    ap.add_argument("--skip_dygraph_b8", action="store_true")
    ap.add_argument("--markdown_from", metavar="JSON", help="only rewrite inference.md from a results file")
    ap.add_argument("--out", default=RESULTS, metavar="DIR",
                    help="folder for inference.{json,md} (default benchmarks/results)")
    ap.add_argument("--smoke", action="store_true",
                    help="TSM-R18 4x32, one run, every step kept: checks that the script runs end to "
                         "end; its figures are meaningless")
    args = ap.parse_args()
    if args.markdown_from:
        with open(args.markdown_from) as f:
            write_markdown(json.load(f), args.out)
        return
    tmp = tempfile.mkdtemp(prefix="bench_")
    try:
        measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args, tmp):
    """Export into `tmp`, time and compare every variant, write the results to args.out."""
    import paddle
    from paddlevideo.deploy.errors import DeployError
    from paddlevideo.deploy.export import export_model, record_check
    from paddlevideo.deploy.online import OnlineStepEngine, export_online
    from paddlevideo.deploy.quant import MIN_CALIB_CLIPS
    from paddlevideo.deploy.runtime import InferenceEngine, cpu_has_bf16
    from paddlevideo.utils.env import available_cores as cpu_count

    sizes = SMOKE if args.smoke else FULL
    runs = sizes["runs"] if args.runs is None else args.runs
    batches = args.batches or sizes["batches"]
    threads = args.threads or sizes["threads"] or sorted({1, cpu_count()})
    seg, size = sizes["num_seg"], sizes["size"]
    model = build(sizes=sizes)
    export_model(model, os.path.join(tmp, "pv"), "TSM", seg, size, fold_bn=False)
    export_model(model, os.path.join(tmp, "ours"), "TSM", seg, size)
    onnx_ok, folded_by_polygraphy = False, None
    try:
        from paddlevideo.deploy.onnx_export import export_onnx
        ours = os.path.join(tmp, "ours")
        check = export_onnx(os.path.join(ours, "TSM.json"), os.path.join(ours, "TSM.pdiparams"),
                            [-1, seg, 3, size, size])
        record_check(os.path.join(ours, "TSM.infer.yaml"), "onnx_check", check)
        onnx_ok = True
    except Exception as e:
        print(f"ONNX Runtime variant skipped: {e}")
    if onnx_ok:
        try:
            folded_by_polygraphy = polygraphy_copy(ours, os.path.join(tmp, "polygraphy"))
        except Exception as e:
            print(f"Polygraphy-folded variant skipped: {e}")
    int8_check = None
    if onnx_ok:
        try:
            calib, source = video_clips(seeds=range(8), sizes=sizes), "real"
            if args.smoke and len(calib) < MIN_CALIB_CLIPS:     # no real videos here
                print(f"smoke: {VIDEOS} gave {len(calib)} clips; int8 calibrates on random ones")
                calib = list(np.random.RandomState(2).standard_normal(
                    (MIN_CALIB_CLIPS, seg, 3, size, size)).astype("float32"))
                source = "random"
            int8_check = quantize_int8(os.path.join(tmp, "ours", "TSM.onnx"),
                                       os.path.join(tmp, "ours", "TSM.infer.yaml"), calib)
            print(f"int8 calibrated on {len(calib)} {source} clips: top-1 agreement with fp32 "
                  f"{int8_check['agree']}/{int8_check['clips']}, max logit difference "
                  f"{int8_check['rel_diff']:.1%} of the logit scale")
        except Exception as e:
            print(f"ONNX Runtime int8 variant skipped: {e}")

    rng = np.random.RandomState(1)
    results = {"machine": {"cpus": cpu_count(), "bf16_native": cpu_has_bf16()},
               "model": sizes["label"], "smoke": args.smoke,
               "latency_ms": {}, "agreement": {}, "int8_check": int8_check}
    clips_real = video_clips(sizes=sizes)
    for t in threads:
        os.environ["OMP_NUM_THREADS"] = str(t)
        variants = {
            "PaddleVideo-style export fp32": InferenceEngine(os.path.join(tmp, "pv"), backend="paddle",
                                                             precision="fp32", cpu_threads=t),
            "ours fp32 (BN folded)": InferenceEngine(os.path.join(tmp, "ours"), backend="paddle",
                                                     precision="fp32", cpu_threads=t),
        }
        if cpu_has_bf16():
            variants["ours bf16"] = InferenceEngine(os.path.join(tmp, "ours"), backend="paddle",
                                                    precision="bf16", cpu_threads=t)
        if onnx_ok:
            variants["ONNX Runtime fp32"] = InferenceEngine(os.path.join(tmp, "ours"), precision="fp32",
                                                            cpu_threads=t, backend="onnxruntime")
        if folded_by_polygraphy:
            variants["ONNX Runtime fp32, Polygraphy-folded file"] = InferenceEngine(
                folded_by_polygraphy, precision="fp32", cpu_threads=t, backend="onnxruntime")
        if int8_check:
            variants["ONNX Runtime int8"] = InferenceEngine(os.path.join(tmp, "ours"), precision="int8",
                                                            cpu_threads=t, backend="onnxruntime")
        for b in batches:
            x = rng.standard_normal((b, seg, 3, size, size)).astype("float32")
            row = {}
            if not (b > 1 and args.skip_dygraph_b8):
                def dyg(v):
                    with paddle.no_grad():
                        return model(paddle.to_tensor(v)).numpy()
                row["dygraph"] = timed(dyg, x, max(1, runs if b == 1 else 1))
            for name, eng in variants.items():
                row[name] = timed(eng, x, runs)
            results["latency_ms"][f"{t} thread(s), batch {b}"] = row
            base = row["PaddleVideo-style export fp32"]
            print(f"\n== {t} thread(s), batch {b}: latency ms (ratio to PaddleVideo-style export), "
                  f"throughput clips/s")
            for name, ms in row.items():
                print(f"  {name:32s} {ms:9.1f}  x{ms / base:5.2f}  {1000.0 * b / ms:7.2f}")
        if t == threads[-1]:
            ref_eng = variants["ours fp32 (BN folded)"]
            xr = rng.standard_normal((4, seg, 3, size, size)).astype("float32")
            ref = ref_eng(xr)
            ref_real = [ref_eng(c[None])[0] for c in clips_real]
            for name, eng in variants.items():
                got = eng(xr)
                real = [eng(c[None])[0] for c in clips_real]
                agree = [int(a.argmax() == r.argmax()) for a, r in zip(real, ref_real)]
                results["agreement"][name] = {
                    "max_abs_logit_diff_random": float(np.abs(got - ref).max()),
                    "logit_scale": float(np.abs(ref).max()),
                    "top1_agree_random": f"{int((got.argmax(1) == ref.argmax(1)).sum())}/{len(ref)}",
                    "top1_agree_real_videos": f"{sum(agree)}/{len(agree)}"}
            with paddle.no_grad():
                dy = model(paddle.to_tensor(xr)).numpy()
            results["agreement"]["dygraph"] = {"max_abs_logit_diff_random": float(np.abs(dy - ref).max()),
                                               "logit_scale": float(np.abs(ref).max())}
    if folded_by_polygraphy:             # our ONNX file against paddle2onnx's default one, A/B
        t = threads[-1]
        ours_eng = InferenceEngine(os.path.join(tmp, "ours"), backend="onnxruntime",
                                   precision="fp32", cpu_threads=t)
        poly_eng = InferenceEngine(folded_by_polygraphy, backend="onnxruntime", precision="fp32",
                                   cpu_threads=t)
        x = rng.standard_normal((1, seg, 3, size, size)).astype("float32")
        ours_ms, poly_ms = interleaved([ours_eng, poly_eng], x, max(runs * 4, 2))
        diff = float(np.abs(ours_eng(x) - poly_eng(x)).max())
        results["onnx_folding"] = {"threads": t, "batch": 1, "rounds": max(runs * 4, 2),
                                   "onnx_runtime_folded_ms": ours_ms,
                                   "polygraphy_folded_ms": poly_ms, "ratio": ours_ms / poly_ms,
                                   "max_abs_logit_diff": diff}
        print(f"\n== ONNX file folded by ONNX Runtime vs by Polygraphy, {t} thread(s), batch 1, "
              f"interleaved: {ours_ms:.1f} vs {poly_ms:.1f} ms (ratio {ours_ms / poly_ms:.3f}), "
              f"max logit difference {diff:.3g}")
    # online per-frame step
    uni = build("unidirectional", sizes)
    t = threads[-1]
    export_model(uni, os.path.join(tmp, "uni"), "TSM", seg, size)
    export_online(uni, os.path.join(tmp, "online"), "TSM_online", size)
    frame = rng.standard_normal((1, 3, size, size)).astype("float32")
    clip = rng.standard_normal((1, seg, 3, size, size)).astype("float32")
    online = {}
    for prec in (["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]):
        step = OnlineStepEngine(os.path.join(tmp, "online"), precision=prec, cpu_threads=t)
        bufs = step.init_buffers()
        clip_eng = InferenceEngine(os.path.join(tmp, "uni"), backend="paddle", precision=prec,
                                   cpu_threads=t)
        frame_ms = timed(lambda f: step(f, bufs), frame, runs * 3)
        try:
            clip_ms = timed(clip_eng, clip, runs)
        except DeployError as e:            # Paddle's bf16 passes fail on the online clip model
            online[prec] = {"frame_ms": frame_ms, "clip_error": str(e)}
            print(f"\n== online step {prec}, {t} thread(s): {frame_ms:.1f} ms per frame; the clip "
                  f"model failed in {prec}: {e}")
            continue
        online[prec] = {"frame_ms": frame_ms, "clip_ms": clip_ms, "ratio": frame_ms / clip_ms}
        print(f"\n== online step {prec}, {t} thread(s): {frame_ms:.1f} ms per frame vs "
              f"{clip_ms:.1f} ms per {seg}-frame clip: ratio {frame_ms / clip_ms:.3f} "
              f"(target <= {1 / seg:.3g})")
    results["online"] = online
    print("\n== agreement with our fp32 export")
    for name, a in results["agreement"].items():
        print(f"  {name:32s} {a}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "inference.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(results, args.out)
    print(f"wrote {os.path.join(args.out, 'inference')}.{{json,md}}")


def write_markdown(results, out=RESULTS):
    """OUT/inference.md from the results dict (also: --markdown_from JSON)."""
    int8_check, online = results.get("int8_check"), results.get("online", {})
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "inference.md"), "w") as f:
        f.write(f"# {results.get('model', FULL['label'])} inference (benchmarks/inference.py)\n\n")
        if results.get("smoke"):
            f.write("Smoke run (--smoke): tiny model, one run; the figures are meaningless.\n\n")
        for key, row in results["latency_ms"].items():
            base = row["PaddleVideo-style export fp32"]
            f.write(f"\n## {key}\n\n| variant | ms | ratio | clips/s |\n|---|---|---|---|\n")
            b = int(key.split("batch ")[1])
            for name, ms in row.items():
                f.write(f"| {name} | {ms:.1f} | {ms / base:.2f} | {1000.0 * b / ms:.2f} |\n")
        f.write("\n## Online per-frame step\n\n| precision | ms/frame | ms/clip | ratio |\n|---|---|---|---|\n")
        for prec, o in online.items():
            if "clip_ms" in o:
                f.write(f"| {prec} | {o['frame_ms']:.1f} | {o['clip_ms']:.1f} | {o['ratio']:.3f} |\n")
            else:
                f.write(f"| {prec} | {o['frame_ms']:.1f} | failed: {o['clip_error']} | |\n")
        folding = results.get("onnx_folding")
        if folding:
            f.write(f"\n## ONNX file folded by ONNX Runtime (ours) vs by Polygraphy (paddle2onnx's "
                    f"default)\n\n{folding['threads']} thread(s), batch 1, {folding['rounds']} "
                    f"interleaved rounds: {folding['onnx_runtime_folded_ms']:.1f} vs "
                    f"{folding['polygraphy_folded_ms']:.1f} ms (ratio {folding['ratio']:.3f}); max "
                    f"logit difference {folding['max_abs_logit_diff']:.3g}\n")
        f.write("\n## Agreement with our fp32 export\n\n")
        for name, a in results["agreement"].items():
            f.write(f"- {name}: {a}\n")
        if int8_check:
            f.write(f"\nint8 calibration (the real videos' clips at 8 frame offsets; the agreement on "
                    f"them above is not held out): top-1 {int8_check['agree']}/{int8_check['clips']}, "
                    f"max logit difference {int8_check['rel_diff']:.1%} of the logit scale\n")


if __name__ == "__main__":
    main()
