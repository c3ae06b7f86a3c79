"""A TSM converted from PyTorch weights costs nothing at run time: same graph, same speed.

The conversion (paddlevideo/modeling/torch_tsm.py) is a pure weight permutation, so a converted
model should export to exactly the program of a native model of the same config and run as fast.
This measures it: for each depth, a native model (random weights) and a converted one (weights
from the original TSM code's checkpoint format) are exported; their programs are compared op for
op (parameter names aside), and Paddle Inference fp32 latency at batch 1 is timed side by side
(interleaved runs, the order alternating, medians) and given as a ratio.

With --reference DIR (files written by real PyTorch from the original network: rD_mhl_legacy.pth,
rD_mm_zip.pth, rD_input.npy, rD_logits.npy for each depth D), it also checks that the converted
model gives PyTorch's logits in dygraph, in Paddle Inference and in ONNX Runtime.

    python benchmarks/converted_weights.py [--depths 50 101] [--repeats 10] [--threads 2]
        [--reference DIR] [--out DIR] [--smoke]

Writes converted_weights.{json,md} to --out (benchmarks/results). --smoke runs the same code on a
ResNet-18 at 32 px with one repeat, only to check that the script works; its figures are
meaningless.
"""
import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")
PARAM_NAME = re.compile(r'"[A-Za-z_][\w.]*\.(?:w|b|w_\d|b_\d)[\w]*"')
LAYER_INSTANCE = re.compile(r"(/[A-Za-z][A-Za-z0-9]*)_\d+(?=/)")      # /Recognizer2D_1/ -> /Recognizer2D/


def model_config(depth, classes, num_seg):
    from paddlevideo.utils.config import AttrDict
    return AttrDict(framework="Recognizer2D",
                    backbone=AttrDict(name="ResNetTSM", depth=depth, num_seg=num_seg),
                    head=AttrDict(name="TSMHead", num_classes=classes,
                                  in_channels=512 if depth < 50 else 2048))


def original_names(state, backbone):
    """Our state dict under the original TSM code's key names (the inverse of the conversion's
    renaming; the weights are not permuted, which changes nothing about cost)."""
    from paddlevideo.modeling.backbones.resnet_tsm import STAGES, block_name
    depth = backbone.depth
    kind, blocks = STAGES[depth]
    torch_bn = {"weight": "weight", "bias": "bias", "_mean": "running_mean",
                "_variance": "running_var"}
    names = {"backbone.conv": ("conv1", "bn1")}
    flat = 0
    for stage, count in enumerate(blocks):
        for i in range(count):
            ours = "backbone." + block_name(depth, stage, i)
            theirs = f"layer{stage + 1}.{i}"
            shifted = backbone.blocks[flat].shift is not None
            flat += 1
            for k in range(3 if kind == "bottleneck" else 2):
                conv = f"{theirs}.conv{k + 1}" + (".net" if k == 0 and shifted else "")
                names[f"{ours}.conv{k}"] = (conv, f"{theirs}.bn{k + 1}")
            names[f"{ours}.short"] = (f"{theirs}.downsample.0", f"{theirs}.downsample.1")
    out = {}
    for key, value in state.items():
        value = np.asarray(value)
        if key.startswith("head.fc."):
            param = key.rsplit(".", 1)[1]
            out[f"module.new_fc.{param}"] = value.T if param == "weight" else value
            continue
        unit, part = key.split("._", 1)
        conv, bn = names[unit]
        if part == "conv.weight":
            out[f"module.base_model.{conv}.weight"] = value
        else:
            out[f"module.base_model.{bn}.{torch_bn[part.split('.', 1)[1]]}"] = value
    return out


def graph_signature(model_file):
    """The exported program's text with parameter names replaced by their order of appearance
    and layer instance numbers (a second model in one process is `Recognizer2D_1`) dropped."""
    text = LAYER_INSTANCE.sub(r"\1", open(model_file).read())
    seen = {}
    return PARAM_NAME.sub(lambda m: f'"P{seen.setdefault(m.group(0), len(seen))}"', text)


def time_interleaved(engines, clip, repeats):
    from paddlevideo.utils.timing import time_calls
    times = {name: [] for name in engines}
    for engine in engines.values():
        engine(clip)                                        # warm-up: oneDNN builds kernels
    order = list(engines)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:      # alternate who goes first
            times[name] += time_calls(lambda: engines[name](clip), 1)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def check_reference(depth, folder, num_seg, size, threads, scratch):
    """Max |diff| / logit std of the converted model vs PyTorch, per engine and file."""
    import paddle
    from paddlevideo.deploy import InferenceEngine, export_model
    from paddlevideo.deploy.onnx_export import export_onnx
    from paddlevideo.deploy.runtime import onnx_path, ort_session
    from paddlevideo.modeling import build_model
    from paddlevideo.modeling.weights import load_weights
    clips = np.load(os.path.join(folder, f"r{depth}_input.npy"))
    want = np.load(os.path.join(folder, f"r{depth}_logits.npy"))
    rows = {}
    for name in (f"r{depth}_mhl_legacy.pth", f"r{depth}_mm_zip.pth"):
        model = build_model(model_config(depth, want.shape[1], num_seg), load_pretrained=False)
        load_weights(model, os.path.join(folder, name), require_head=True)
        model.eval()
        with paddle.no_grad():
            got = {"dygraph": model(paddle.to_tensor(clips)).numpy()}
        out = os.path.join(scratch, f"ref_{depth}")
        result = export_model(model, out, "TSM", num_seg=num_seg, target_size=size)
        got["paddle_inference"] = InferenceEngine(out, precision="fp32",
                                                  cpu_threads=threads)(clips)
        export_onnx(result.model_file, result.params_file, input_shape=[-1, num_seg, 3, size, size], threads=threads)
        session = ort_session(onnx_path(result.model_file), threads)
        got["onnxruntime"] = session.run(None, {session.get_inputs()[0].name: clips})[0]
        rows[name] = {engine: {"max_abs_diff": float(np.abs(v - want).max()),
                               "rel_to_std": float(np.abs(v - want).max() / want.std()),
                               "same_top1": bool((v.argmax(-1) == want.argmax(-1)).all())}
                      for engine, v in got.items()}
        shutil.rmtree(out, ignore_errors=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=None,
                        help="ResNet depths (default 50 101; 18 with --smoke)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per model (10; 1 with --smoke)")
    parser.add_argument("--threads", type=int, default=2, help="Paddle Inference CPU threads")
    parser.add_argument("--reference", default=None, metavar="DIR",
                        help="PyTorch-written files and logits to check exactness against")
    parser.add_argument("--out", default=RESULTS, metavar="DIR",
                        help="folder for converted_weights.{json,md} (default benchmarks/results)")
    parser.add_argument("--smoke", action="store_true",
                        help="ResNet-18 at 32 px, one repeat: checks that the script runs end to "
                             "end; its figures are meaningless")
    args = parser.parse_args()
    depths = args.depths or ([18] if args.smoke else [50, 101])
    repeats = args.repeats or (1 if args.smoke else 10)
    num_seg, size = (4, 32) if args.smoke else (8, 224)

    import paddle
    from paddlevideo.deploy import InferenceEngine, export_model
    from paddlevideo.modeling import build_model
    from paddlevideo.modeling.torch_tsm import convert_torch_checkpoint
    scratch = tempfile.mkdtemp(prefix="converted_weights_")
    rows = []
    try:
        for depth in depths:
            paddle.seed(depth)
            native = build_model(model_config(depth, 400, num_seg), load_pretrained=False)
            converted = build_model(model_config(depth, 400, num_seg), load_pretrained=False)
            source = {"arch": f"resnet{depth}",
                      "state_dict": original_names(native.state_dict(), native.backbone)}
            conversion = convert_torch_checkpoint(source, "in-memory checkpoint")
            converted.set_state_dict(conversion.state)
            files, engines = {}, {}
            for name, model in (("native", native), ("converted", converted)):
                out = os.path.join(scratch, f"{name}_{depth}")
                files[name] = export_model(model, out, "TSM", num_seg=num_seg,
                                           target_size=size).model_file
                engines[name] = InferenceEngine(out, precision="fp32", cpu_threads=args.threads)
            same_graph = graph_signature(files["native"]) == graph_signature(files["converted"])
            clip = np.random.default_rng(0).standard_normal(
                (1, num_seg, 3, size, size)).astype("float32")
            ms = time_interleaved(engines, clip, repeats)
            row = {"depth": depth, "input": f"1 x {num_seg} x 3 x {size} x {size}",
                   "same_graph": same_graph, "permuted_tensors": conversion.permuted,
                   "native_ms": round(ms["native"], 2), "converted_ms": round(ms["converted"], 2),
                   "ratio": round(ms["converted"] / ms["native"], 3)}
            if args.reference:
                row["reference"] = check_reference(depth, args.reference, num_seg, size,
                                                   args.threads, scratch)
            rows.append(row)
            print(f"ResNet-{depth}: same graph {same_graph}; Paddle Inference fp32 batch 1 "
                  f"native {row['native_ms']} ms, converted {row['converted_ms']} ms "
                  f"(ratio {row['ratio']})", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    meta = {"command": "python benchmarks/converted_weights.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "paddle": paddle.__version__, "threads": args.threads, "repeats": repeats,
            "smoke": args.smoke}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "converted_weights.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [f"`{meta['command']}` ({meta['date']}, {meta['machine']}, Paddle {meta['paddle']}, "
             f"{args.threads} threads, medians of {repeats} interleaved runs)", "",
             "| model | input | same exported graph | native ms | converted ms | converted / native |",
             "|---|---|---|---|---|---|"]
    if args.smoke:
        lines[1:1] = ["", "Smoke run (--smoke): ResNet-18 at 32 px, one repeat; the figures are "
                      "meaningless."]
    for r in rows:
        lines.append(f"| TSM-R{r['depth']} | {r['input']} | {'yes' if r['same_graph'] else 'NO'} "
                     f"| {r['native_ms']} | {r['converted_ms']} | {r['ratio']} |")
    refs = [r for r in rows if "reference" in r]
    if refs:
        lines += ["", "Converted vs PyTorch's logits (max |diff| / logit std, same top-1):", "",
                  "| model | file | dygraph | Paddle Inference | ONNX Runtime |", "|---|---|---|---|---|"]
        for r in refs:
            for name, engines in r["reference"].items():
                cells = [f"{e['rel_to_std']:.1e} ({'same' if e['same_top1'] else 'OTHER'} top-1)"
                         for e in engines.values()]
                lines.append(f"| TSM-R{r['depth']} | {name} | " + " | ".join(cells) + " |")
    with open(os.path.join(args.out, "converted_weights.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["same_graph"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
