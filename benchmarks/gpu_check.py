"""What only a GPU shows: TSM-R50 8x224 training speed and memory in fp32, AMP O1 and O2 (float16
and bfloat16), NCHW and NHWC; how far each precision's answers are from fp32's; then export and
Paddle Inference on the GPU.

    python benchmarks/gpu_check.py [--iters 12] [--batch 8] [--variants ...] [--weights W]
                                   [--tensorrt] [--out DIR] [--smoke]

Each variant trains in its own process through the real training loop (tasks/train.py, with its
AMP and NHWC handling) on random clips held in memory, so the figures are the network's, not the
decoder's. Per variant:
- images/s: frames (clips x num_seg) per second of training, the first two steps left out;
- peak memory: the GPU allocator's maximum (on CPU, the process's maximum resident set);
- agreement with fp32: the same weights (seeded, or --weights) run forward under the variant's
  precision on 16 fixed clips; top-1 agreement and the largest logit difference relative to the
  fp32 logits' scale. Random weights give small logit margins, so their agreement is a lower
  bound; pass trained weights (e.g. TSM_k400 copied to the machine) for the real figure.
Then the fp32 model is exported (checked against dygraph as every export is) and run by Paddle
Inference on the GPU in fp32 and fp16 (and TensorRT fp16 with --tensorrt), each compared with
dygraph fp32.

--smoke runs on the CPU with TSM-R18 4x32 for three steps: AMP variants are recorded as skipped
(Paddle's automatic mixed precision does not act on CPU), so it checks that the script runs end
to end; its figures are meaningless. Writes gpu_check.{json,md} to --out (benchmarks/results).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
RESULTS = os.path.join(HERE, "results")
CONFIG = os.path.join(REPO, "configs", "recognition", "tsm", "tsm_k400_videos.yaml")

# name -> (amp level or None, amp dtype or None, data_format)
VARIANTS = {
    "fp32_nchw": (None, None, "NCHW"),
    "fp32_nhwc": (None, None, "NHWC"),
    "o1_fp16_nchw": ("O1", "float16", "NCHW"),
    "o1_fp16_nhwc": ("O1", "float16", "NHWC"),
    "o2_fp16_nchw": ("O2", "float16", "NCHW"),
    "o2_fp16_nhwc": ("O2", "float16", "NHWC"),
    "o1_bf16_nchw": ("O1", "bfloat16", "NCHW"),
    "o1_bf16_nhwc": ("O1", "bfloat16", "NHWC"),
    "o2_bf16_nchw": ("O2", "bfloat16", "NCHW"),
    "o2_bf16_nhwc": ("O2", "bfloat16", "NHWC"),
}
FULL = {"label": "TSM-R50 8x224", "iters": 12, "batch": 8, "num_seg": 8, "size": 224,
        "overrides": []}
SMOKE = {"label": "TSM-R18 4x32 (smoke)", "iters": 3, "batch": 2, "num_seg": 4, "size": 32,
         "overrides": ["MODEL.backbone.depth=18", "MODEL.head.in_channels=512",
                       "PIPELINE.valid.sample.num_seg=4", "PIPELINE.test.sample.num_seg=4",
                       "PIPELINE.test.transform.1.CenterCrop.target_size=32"]}
SMOKE_VARIANTS = ["fp32_nchw", "fp32_nhwc", "o2_fp16_nhwc"]   # one AMP variant: the skip path
AGREEMENT_CLIPS = 16


def _sizes(args):
    return SMOKE if args.smoke else FULL


def _register_random_clips():
    """DATASET format `RandomClips`: normalised random clips from a small fixed pool, so loading
    costs a copy and the GPU, not the decoder, sets the pace."""
    from paddlevideo.loader.registry import DATASETS

    if "RandomClips" in DATASETS:
        return

    @DATASETS.register("RandomClips")
    class RandomClips:
        def __init__(self, pipeline=None, mode: str = "train", num_samples: int = 64,
                     num_seg: int = 8, size: int = 224, num_classes: int = 400):
            self.n, self.num_classes, self.num_views = int(num_samples), int(num_classes), 1
            rng = np.random.default_rng(0)
            self.pool = rng.standard_normal((8, num_seg, 3, size, size)).astype(np.float32)

        def __len__(self):
            return self.n

        def path(self, i):
            return f"random://{i}"

        def label(self, i):
            return i % self.num_classes

        def failure_reason(self, i):
            return ""

        def load(self, i, rng=None):
            return self.pool[i % len(self.pool)].copy(), np.int64(self.label(i))

        def __getitem__(self, i):
            return self.load(i)


def _config(args, data_format):
    from paddlevideo.utils.config import get_config
    sizes = _sizes(args)
    seg, size = sizes["num_seg"], sizes["size"]
    data = (f"{{format: RandomClips, num_samples: {args.batch * (args.iters + 1)}, "
            f"num_seg: {seg}, size: {size}}}")
    overrides = sizes["overrides"] + [
        "MODEL.backbone.pretrained=null", f"MODEL.backbone.num_seg={seg}",
        f"MODEL.backbone.data_format={data_format}", f"DATASET.train={data}",
        f"DATASET.batch_size={args.batch}", "DATASET.num_workers=0", "PIPELINE.train={}",
        "epochs=1", "log_interval=1000"]
    return get_config(CONFIG, overrides)


def _device():
    import paddle
    return "gpu" if (paddle.device.is_compiled_with_cuda()
                     and paddle.device.cuda.device_count() > 0) else "cpu"


def _peak_memory_mb(device):
    import paddle
    if device == "gpu":
        return paddle.device.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB on Linux


def _fixed_clips(args):
    sizes = _sizes(args)
    rng = np.random.default_rng(1)
    shape = (AGREEMENT_CLIPS, sizes["num_seg"], 3, sizes["size"], sizes["size"])
    return rng.standard_normal(shape).astype(np.float32)


def _reference_model(args, data_format):
    """The weights every variant is compared on: seeded initialisation, or --weights."""
    import paddle
    from paddlevideo.modeling import build_model, load_weights
    cfg = _config(args, data_format)
    paddle.seed(0)
    model = build_model(cfg.MODEL, load_pretrained=False)
    if args.weights:
        load_weights(model, args.weights, require_head=True)
    model.eval()
    return model


def _logits(model, clips, level, dtype):
    """Logits of `clips` under the given AMP level/dtype (None: fp32), as float32 numpy."""
    import paddle
    out = []
    with paddle.no_grad():
        for start in range(0, len(clips), 4):
            x = paddle.to_tensor(clips[start:start + 4])
            if level:
                with paddle.amp.auto_cast(level=level, dtype=dtype):
                    y = model(x)
            else:
                y = model(x)
            out.append(y.astype("float32").numpy())
    return np.concatenate(out)


def child(args):
    """One variant in this process: train, then logits on the fixed clips."""
    import paddle
    from paddlevideo.tasks.train import train_model
    _register_random_clips()
    level, dtype, data_format = VARIANTS[args.child]
    device = _device()
    if level and device != "gpu":
        return {"skipped": "AMP needs a GPU (Paddle's auto_cast does not act on CPU)"}
    cfg = _config(args, data_format)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as out:
        result = train_model(cfg, amp=bool(level), amp_level=level, amp_dtype=dtype,
                             max_iters=args.iters, output_dir=out, seed=0)
    steps = result["step_times"][2:]
    seg = _sizes(args)["num_seg"]
    frames = sum(s[0] for s in steps) * seg
    seconds = sum(s[1] for s in steps)
    record = {"device": device, "steps_timed": len(steps),
              "images_per_sec": frames / seconds if seconds else None,
              "sec_per_step": seconds / len(steps) if steps else None,
              "peak_memory_mb": _peak_memory_mb(device)}
    model = _reference_model(args, data_format)
    if level == "O2":
        model = paddle.amp.decorate(models=model, level="O2", dtype=dtype)
    np.save(os.path.join(args.scratch, f"{args.child}.npy"),
            _logits(model, _fixed_clips(args), level, dtype))
    return record


def _agreement(reference, logits):
    scale = float(np.abs(reference).max()) or 1e-6
    return {"top1_agreement": float(np.mean(reference.argmax(1) == logits.argmax(1))),
            "max_rel_logit_diff": float(np.abs(reference - logits).max() / scale)}


def export_check(args):
    """Export the fp32 NCHW reference model and run it with Paddle Inference on this device."""
    from paddlevideo.deploy import InferenceEngine, export_model
    sizes = _sizes(args)
    model = _reference_model(args, "NCHW")
    clips = _fixed_clips(args)
    reference = _logits(model, clips, None, None)
    device = _device()
    runs = [("fp32", False), ("fp16", False)] if device == "gpu" else [("fp32", False)]
    if args.tensorrt and device == "gpu":
        runs.append(("fp16", True))
    records = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_export_") as out:
        start = time.time()
        result = export_model(model, out, "TSM", num_seg=sizes["num_seg"],
                              target_size=sizes["size"])
        records["export"] = {"seconds": time.time() - start,
                             "check_max_abs_diff": result.max_abs_diff,
                             "check_logit_scale": result.logit_scale}
        for precision, trt in runs:
            name = f"inference_{device}_{precision}" + ("_tensorrt" if trt else "")
            try:
                engine = InferenceEngine(out, device=device, precision=precision,
                                         use_tensorrt=trt, max_batch_size=4)
                got = np.concatenate([engine(clips[i:i + 4]) for i in range(0, len(clips), 4)])
                engine(clips[:4])
                start = time.perf_counter()
                engine(clips[:4])
                records[name] = dict(_agreement(reference, got),
                                     ms_per_batch_of_4=1000 * (time.perf_counter() - start))
                engine.close()
            except Exception as e:         # recorded, so one unsupported mode does not hide others
                records[name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    return records


def run_child(name, args, scratch):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--scratch", scratch,
           "--iters", str(args.iters), "--batch", str(args.batch)]
    cmd += ["--smoke"] if args.smoke else []
    cmd += ["--weights", args.weights] if args.weights else []
    cmd += ["--tensorrt"] if args.tensorrt else []
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-1500:]}
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_sec"] = round(time.time() - start, 1)
    return result


def _markdown(results, variants):
    def fmt(value, spec):
        return "—" if value is None else format(value, spec)

    lines = ["| variant | images/s | s/step | peak memory (MB) | top-1 agreement with fp32 | "
             "max logit difference / scale |", "|---|---|---|---|---|---|"]
    for name in variants:
        r = results["variants"][name]
        if "skipped" in r or "error" in r:
            why = r.get("skipped") or "failed: " + r["error"].strip().splitlines()[-1][:120]
            lines.append(f"| {name} | {why} | | | | |")
            continue
        lines.append(f"| {name} | {fmt(r['images_per_sec'], '.1f')} | "
                     f"{fmt(r['sec_per_step'], '.3f')} | {fmt(r['peak_memory_mb'], '.0f')} | "
                     f"{fmt(r.get('top1_agreement'), '.3f')} | "
                     f"{fmt(r.get('max_rel_logit_diff'), '.2e')} |")
    lines += ["", "| export and Paddle Inference | result |", "|---|---|"]
    for name, r in results.get("export", {}).items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:160]} |")
        elif name == "export":
            lines.append(f"| export (checked against dygraph) | {r['seconds']:.1f} s, max abs "
                         f"diff {r['check_max_abs_diff']:.2e} (scale {r['check_logit_scale']:.2e}) |")
        else:
            lines.append(f"| {name} vs dygraph fp32 | top-1 agreement {r['top1_agreement']:.3f}, "
                         f"max diff / scale {r['max_rel_logit_diff']:.2e}, "
                         f"{r['ms_per_batch_of_4']:.1f} ms per batch of 4 |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=None,
                    help="training steps per variant, first two not timed (12; 3 with --smoke)")
    ap.add_argument("--batch", type=int, default=None, help="clips per step (8; 2 with --smoke)")
    ap.add_argument("--variants", nargs="*", default=None, choices=list(VARIANTS),
                    help="default: all (--smoke: fp32_nchw fp32_nhwc o2_fp16_nhwc)")
    ap.add_argument("--weights", default=None,
                    help="trained weights for the agreement figures (default: seeded random)")
    ap.add_argument("--tensorrt", action="store_true", help="also run TensorRT fp16")
    ap.add_argument("--out", default=RESULTS, metavar="DIR",
                    help="folder for gpu_check.{json,md} (default benchmarks/results)")
    ap.add_argument("--smoke", action="store_true",
                    help="CPU, TSM-R18 4x32, three steps: checks that the script runs; the "
                         "figures are meaningless")
    ap.add_argument("--child", choices=list(VARIANTS) + ["export"], help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = _sizes(args)
    args.iters = args.iters or sizes["iters"]
    args.batch = args.batch or sizes["batch"]
    if args.child:
        result = export_check(args) if args.child == "export" else child(args)
        print("RESULT " + json.dumps(result))
        return
    variants = list(args.variants or (SMOKE_VARIANTS if args.smoke else VARIANTS))
    if "fp32_nchw" not in variants:
        variants.insert(0, "fp32_nchw")           # the reference of every agreement figure
    results = {"command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:]),
               "machine": {"cpu": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
               "model": sizes["label"], "batch": args.batch, "iters": args.iters,
               "smoke": args.smoke, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="gpu_check_logits_") as scratch:
        for name in variants:
            print(f"running {name} ...", flush=True)
            results["variants"][name] = run_child(name, args, scratch)
        ref_path = os.path.join(scratch, "fp32_nchw.npy")
        if os.path.isfile(ref_path):
            reference = np.load(ref_path)
            for name in variants:
                path = os.path.join(scratch, f"{name}.npy")
                if os.path.isfile(path):
                    results["variants"][name].update(_agreement(reference, np.load(path)))
        print("running export ...", flush=True)
        export = run_child("export", args, scratch)
        results["export_wall_sec"] = export.pop("wall_sec", None)
        results["export"] = {"export": export} if isinstance(export.get("error"), str) else export
    table = _markdown(results, variants)
    print(table)
    smoke = ("Smoke run (--smoke): CPU, tiny model, three steps; the figures are meaningless.\n\n"
             if args.smoke else "")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(f"# GPU check\n\n`{results['command']}`, {results['model']}, batch "
                f"{args.batch}.\n\n{smoke}{table}\n")
    failed = [n for n, r in results["variants"].items() if "error" in r]
    failed += [n for n, r in results["export"].items() if "error" in r]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
